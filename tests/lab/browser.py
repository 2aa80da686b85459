"""Debian's Chromium driven by Playwright for Python, on a ``jupyter lab`` with the sidebar open.

``need_browser()`` skips the calling test with one line where ``/usr/bin/chromium``
or Playwright is missing, except in CI (``CI`` set), where ``.ci/run``
installs Chromium and a missing one fails. Playwright never downloads a browser
here: it is given Chromium's path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from jupyter_proc import Jupyter

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
TIMEOUT_MS = 30_000


def need_browser() -> Any:
    """Playwright's sync API; skips (or fails in CI) without Chromium or Playwright."""
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


@contextlib.contextmanager
def sidebar_page(lab: Jupyter) -> Iterator[Any]:
    """A page of ``lab`` in a fresh workspace, with the jupyter_remote sidebar opened."""
    sync_api = need_browser()
    with (
        tempfile.TemporaryDirectory(prefix="jr-chromium-") as home,
        sync_api.sync_playwright() as playwright,
    ):
        # Chromium writes crash reports and caches under XDG_*: keep them out of the tests' dirs.
        env = {**os.environ, "HOME": home, "XDG_CONFIG_HOME": home, "XDG_CACHE_HOME": home}
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, env=env)
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


def accept_dialog(page: Any) -> None:
    dialog = page.locator(".jp-Dialog")
    dialog.locator(".jp-mod-accept").click()
    dialog.wait_for(state="detached")
