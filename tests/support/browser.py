"""Debian's Chromium, headless, driven by Playwright for Python: the flags in one place.

Playwright never downloads a browser here (no ``playwright install``): it launches
``/usr/bin/chromium``, which scripts/setup.sh installs with apt, with the background traffic a
fresh profile would start (component updates, sync, QUIC probes, first-run pages) turned off, so a
test talks to nothing but the server on 127.0.0.1 it opens.

Screenshots go to ``tmp_path`` unless ``IMPALA_TRANSFER_SCREENSHOTS`` names a directory (relative
to the repository): ``IMPALA_TRANSFER_SCREENSHOTS=docs/screenshots`` refreshes the committed ones,
so an ordinary run (CI) leaves the tree as it was.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update", "--disable-gpu",
         "--disable-quic", "--no-first-run", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 900}
SCREENSHOTS_ENV = "IMPALA_TRANSFER_SCREENSHOTS"


@contextmanager
def chromium_page(viewport: dict[str, int] = VIEWPORT, timeout_ms: int = 30_000) -> Iterator:
    """A fresh page (English, UTC, ``viewport``) in a headless Chromium that is closed afterwards;
    every Playwright action and ``expect`` on it waits at most ``timeout_ms`` unless told otherwise."""
    from playwright.sync_api import expect, sync_playwright

    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError(f"{CHROMIUM} not found: scripts/setup.sh installs Debian's chromium package")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS, timeout=60_000)
        try:
            context = browser.new_context(viewport=viewport, locale="en-US", timezone_id="UTC")
            page = context.new_page()
            page.set_default_timeout(timeout_ms)
            expect.set_options(timeout=timeout_ms)
            yield page
        finally:
            browser.close()


def screenshot_dir(default: Path) -> Path:
    """``$IMPALA_TRANSFER_SCREENSHOTS`` (relative to the repository) if set, else ``default``."""
    chosen = os.environ.get(SCREENSHOTS_ENV)
    directory = (Path(__file__).resolve().parents[2] / chosen) if chosen else Path(default)
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def sign_in(page, url: str, username: str, password: str) -> None:
    """Open ``url``; if Airflow's SimpleAuthManager sends the browser to its login form, sign in
    there and wait until the UI has taken the browser back to ``url``."""
    from playwright.sync_api import expect

    page.goto(url)
    username_field = page.get_by_label("Username")
    nav = page.get_by_test_id("nav-sidebar")
    expect(username_field.or_(nav)).to_be_visible()
    if username_field.is_visible():
        username_field.fill(username)
        page.get_by_label("Password").fill(password)
        page.get_by_role("button", name="Sign in").click()
    expect(nav).to_be_visible()
