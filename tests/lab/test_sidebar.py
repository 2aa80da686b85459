"""The sidebar in real Chromium (Debian's ``chromium``, driven by Playwright), real ``jupyter lab``.

Skipped with one line where ``/usr/bin/chromium`` or Playwright is missing,
except in CI (``CI`` set), where ``.ci/run`` installs Chromium and a missing one
fails. Screenshots go to ``$JUPYTER_REMOTE_TEST_ARTIFACTS`` (default: the test's
temporary directory).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_proc import Jupyter, running_jupyter

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
VALUES = ("Chr0mium-s3cret-USER-value", "Chr0mium-s3cret-PASSWORD-value")
TIMEOUT_MS = 30_000


def _need_browser() -> Any:
    missing = None
    if not os.path.exists(CHROMIUM):
        missing = f"no {CHROMIUM} (apt-get install chromium)"
    try:
        from playwright import sync_api
    except ImportError:
        missing = missing or "no Playwright for Python (pip install -e '.[test]')"
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}: .ci/run installs it in CI")
        pytest.skip(f"needs real Chromium: {missing}")
    return sync_api


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Jupyter]:
    _need_browser()
    with running_jupyter(tmp_path_factory.mktemp("lab"), app="lab") as server:
        yield server


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    where = Path(os.environ.get("JUPYTER_REMOTE_TEST_ARTIFACTS", tmp_path))
    where.mkdir(parents=True, exist_ok=True)
    return where


@pytest.fixture
def page(lab: Jupyter) -> Iterator[Any]:
    sync_api = _need_browser()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            viewport = {"width": 1400, "height": 900}
            context = browser.new_context(accept_downloads=True, viewport=viewport)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            # ?reset: a fresh workspace, so that the sidebar is closed as for a new user
            page.goto(f"{lab.url}lab?reset&token={lab.token}")
            page.locator('.lm-TabBar-tab[data-id="jupyter-remote-sidebar"]').click()
            page.locator(".jr-Sidebar").wait_for(state="visible")
            yield page
        finally:
            browser.close()


def _accept_dialog(page: Any) -> None:
    dialog = page.locator(".jp-Dialog")
    dialog.locator(".jp-mod-accept").click()
    dialog.wait_for(state="detached")


def test_a_volume_upload_download_delete(page: Any, lab: Jupyter, artifacts: Path) -> None:
    volumes = page.locator(".jr-Section-volumes")
    page.locator('.jr-Backend[data-backend="local"]').wait_for()
    running = page.locator(".jr-Section-running .jr-Message")
    assert "child processes of the kernel" in running.inner_text()

    volumes.get_by_title("New volume").click()
    page.locator(".jp-Dialog input").fill("sidebar-vol")
    _accept_dialog(page)
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
    _accept_dialog(page)
    entry.wait_for(state="detached")
    assert not (stored / "hello.txt").exists()

    row.get_by_title("Delete volume sidebar-vol").click()
    _accept_dialog(page)
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
    _accept_dialog(page)

    row = secrets.locator('.jr-SecretRowItem[data-secret="sidebar-db"]')
    row.wait_for()
    assert row.locator(".jr-Key").all_inner_texts() == ["PASSWORD", "USER"]
    page.screenshot(path=str(artifacts / "sidebar-secret.png"))

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
    _accept_dialog(page)
    row.wait_for(state="detached")
    stored = lab.home / "xdg-config" / "jupyter_remote" / "secrets.json"
    assert "sidebar-db" not in stored.read_text()


def test_the_sidebar_polls_only_while_it_is_shown(page: Any) -> None:
    calls: list[str] = []
    page.on("request", lambda r: calls.append(r.url) if "/jupyter-remote/api/" in r.url else None)
    page.wait_for_timeout(6_000)  # shown: one refresh of the 4 sections every 5 s, no more
    assert 4 <= len(calls) <= 8, calls
    page.locator('.lm-TabBar-tab[data-id="jupyter-remote-sidebar"]').click()
    page.locator(".jr-Sidebar").wait_for(state="hidden")
    calls.clear()
    page.wait_for_timeout(11_000)  # hidden: nothing
    assert calls == []
