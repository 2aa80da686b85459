"""The sidebar in real Chromium (Debian's ``chromium``, driven by Playwright), real ``jupyter lab``.

Skipped with one line where Chromium or Playwright is missing (``browser.py``),
except in CI. Screenshots go to ``$JUPYTER_REMOTE_TEST_ARTIFACTS`` (default: the test's
temporary directory).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import accept_dialog, need_browser, sidebar_page
from jupyter_proc import Jupyter, running_jupyter

pytestmark = pytest.mark.slow

VALUES = (
    "Chr0mium-s3cret-USER-value",
    "Chr0mium-s3cret-PASSWORD-value",
    "Chr0mium-s3cret-TOKEN-value",
)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jupyter]:
    need_browser()
    with running_jupyter(tmp_path_factory.mktemp("lab"), app="lab") as server:
        yield server


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    where = Path(os.environ.get("JUPYTER_REMOTE_TEST_ARTIFACTS", tmp_path))
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def page(lab: Jupyter) -> Iterator[Any]:
    with sidebar_page(lab) as page:
        yield page


def test_a_volume_upload_download_delete(page: Any, lab: Jupyter, artifacts: Path) -> None:
    volumes = page.locator(".jr-Section-volumes")
    page.locator('.jr-Backend[data-backend="local"]').wait_for()
    running = page.locator(".jr-Section-running .jr-Message")
    assert "child processes of the kernel" in running.inner_text()

    volumes.get_by_title("New volume").click()
    page.locator(".jp-Dialog input").fill("sidebar-vol")
    accept_dialog(page)
    row = volumes.locator('.jr-VolumeRow[data-volume="sidebar-vol"]')
    row.wait_for()
    assert (lab.home / "volumes" / "sidebar-vol").is_dir()

    # Upload by the button's file input, then by dropping a file on the volume.
    row.locator("input.jr-FileInput").set_input_files(
        files=[{"name": "hello.txt", "mimeType": "text/plain", "buffer": b"hello from chromium"}]
    )
    entry = volumes.locator('.jr-Entry[data-path="/hello.txt"]')
    entry.wait_for()
    transfer = page.evaluate_handle(
        """() => { const t = new DataTransfer();
                   t.items.add(new File(['dropped bytes'], 'dropped.txt', {type: 'text/plain'}));
                   return t; }"""
    )
    row.dispatch_event("drop", {"dataTransfer": transfer})
    volumes.locator('.jr-Entry[data-path="/dropped.txt"]').wait_for()
    stored = lab.home / "volumes" / "sidebar-vol"
    assert (stored / "hello.txt").read_bytes() == b"hello from chromium"
    assert (stored / "dropped.txt").read_bytes() == b"dropped bytes"
    page.screenshot(path=str(artifacts / "sidebar-volume.png"))

    with page.expect_download() as download:
        entry.get_by_title("Download /hello.txt").click()
    assert download.value.suggested_filename == "hello.txt"
    assert Path(download.value.path()).read_bytes() == b"hello from chromium"

    entry.get_by_title("Delete /hello.txt").click()
    assert "Delete the file /hello.txt" in page.locator(".jp-Dialog").inner_text()
    accept_dialog(page)
    entry.wait_for(state="detached")
    assert not (stored / "hello.txt").exists()

    row.get_by_title("Delete volume sidebar-vol").click()
    accept_dialog(page)
    row.wait_for(state="detached")
    assert not stored.exists()


def test_a_secret_shows_its_keys_and_never_its_values(
    page: Any, lab: Jupyter, artifacts: Path
) -> None:
    bodies: list[str] = []

    def keep(response: Any) -> None:
        if "/jupyter-remote/api/" in response.url:
            bodies.append(response.text())

    page.on("response", keep)
    secrets = page.locator(".jr-Section-secrets")
    secrets.get_by_title("New secret").click()
    dialog = page.locator(".jp-Dialog")
    dialog.locator(".jr-SecretName").fill("sidebar-db")
    dialog.locator(".jr-SecretKey").nth(0).fill("USER")
    dialog.locator(".jr-SecretValue").nth(0).fill(VALUES[0])
    dialog.get_by_title("Add a key/value row").click()
    dialog.locator(".jr-SecretKey").nth(1).fill("PASSWORD")
    dialog.locator(".jr-SecretValue").nth(1).fill(VALUES[1])
    assert dialog.locator(".jr-SecretValue").nth(1).get_attribute("type") == "password"
    page.screenshot(path=str(artifacts / "sidebar-secret-form.png"))
    accept_dialog(page)

    row = secrets.locator('.jr-SecretRowItem[data-secret="sidebar-db"]')
    row.wait_for()
    assert row.locator(".jr-Key").all_inner_texts() == ["PASSWORD", "USER"]
    page.screenshot(path=str(artifacts / "sidebar-secret.png"))

    # Update: drop USER, add TOKEN; PASSWORD is left empty, so it keeps its value.
    row.get_by_title("Update secret sidebar-db").click()
    user_row = dialog.locator(".jr-SecretRow").nth(1)  # the known keys, sorted
    assert user_row.locator(".jr-SecretKey").input_value() == "USER"
    assert user_row.locator(".jr-SecretValue").input_value() == ""  # never filled in
    user_row.locator(".jr-SecretRemove").check()
    dialog.get_by_title("Add a key/value row").click()
    dialog.locator(".jr-SecretKey").nth(2).fill("TOKEN")
    dialog.locator(".jr-SecretValue").nth(2).fill(VALUES[2])
    accept_dialog(page)
    secrets.locator(".jr-Key", has_text="TOKEN").wait_for()
    assert row.locator(".jr-Key").all_inner_texts() == ["PASSWORD", "TOKEN"]
    from jupyter_remote.state._secrets import LocalSecretStore

    stored = lab.home / "xdg-config" / "jupyter_remote" / "secrets.json"
    assert LocalSecretStore(stored).get("sidebar-db") == {"PASSWORD": VALUES[1], "TOKEN": VALUES[2]}

    # Neither the page's HTML nor any input's value nor any answer of the API holds a value.
    html = page.content()
    inputs = page.evaluate("() => Array.from(document.querySelectorAll('input'), i => i.value)")
    page.locator(".jr-Section-secrets").get_by_title("Refresh Secrets").click()
    page.wait_for_timeout(500)
    for value in VALUES:
        assert value not in html
        assert not [text for text in inputs if value in text]
        assert not [body for body in bodies if value in body]
        assert value not in lab.log()
    assert [b for b in bodies if re.search(r'"keys": \["PASSWORD", "USER"\]', b)]

    row.get_by_title("Delete secret sidebar-db").click()
    accept_dialog(page)
    row.wait_for(state="detached")
    assert "sidebar-db" not in stored.read_text()


def test_the_sidebar_polls_only_while_it_is_shown(page: Any) -> None:
    calls: list[str] = []
    page.on("request", lambda r: calls.append(r.url) if "/jupyter-remote/api/" in r.url else None)
    page.locator(".jr-Backend").wait_for()  # the first refresh has answered
    # Shown: the 4 sections again 5 s after the first refresh, then after 10 s (no change).
    page.wait_for_timeout(8_000)
    assert 4 <= len(calls) <= 8, calls
    page.locator('.lm-TabBar-tab[data-id="jupyter-remote-sidebar"]').click()
    page.locator(".jr-Sidebar").wait_for(state="hidden")
    calls.clear()
    page.wait_for_timeout(11_000)  # hidden: nothing
    assert calls == []
