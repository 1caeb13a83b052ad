"""The playground under a real browser: Debian's Chromium, headless, driven by Playwright.

Playwright's own browser download cannot run here, so the system `chromium` (installed by
`.ci/run`) is launched by path. The fixtures (`studio`, `browser`, `page`) are
tests/web/conftest.py's; this module holds what they and the tests share.
"""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from playwright.sync_api import Browser, BrowserContext, Page

from tests.support.server import REPO, ServerProcess

CHROMIUM = os.environ.get("CINEGEN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "artifacts" / "screenshots"
DESKTOP = {"width": 1440, "height": 1000}


class Studio:
    """The server, its key, and an API client with that key (to check what the page shows)."""

    def __init__(self, server: ServerProcess, key: str) -> None:
        self.server = server
        self.key = key
        self.url = server.url
        self.api = httpx.Client(base_url=server.url, headers={"x-goog-api-key": key}, timeout=60)


def new_context(browser: Browser, studio: Studio, *, key: bool = True, **options) -> BrowserContext:
    context = browser.new_context(
        viewport=options.pop("viewport", DESKTOP),
        accept_downloads=True,
        permissions=["clipboard-read", "clipboard-write"],
        **options,
    )
    if key:
        # What the key dialog stores; the dialog itself is tested in test_api_key_*.
        context.add_init_script(
            f"if (!localStorage.getItem('cinegen.apiKey')) "
            f"localStorage.setItem('cinegen.apiKey', {studio.key!r});"
        )
    return context


class Errors(list):
    """JavaScript exceptions the page raised; a test fails if there are any."""


def save_screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar belongs at the top
    page.screenshot(path=str(path), full_page=True)
    return path


def open_studio(page: Page, studio: Studio) -> None:
    page.goto(studio.url + "/")
    page.wait_for_selector("#server-status.ok")
