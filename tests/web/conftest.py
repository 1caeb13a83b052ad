"""The playground under a real browser: Debian's Chromium, headless, driven by Playwright.

Playwright's own browser download cannot run here, so the system `chromium` (installed by
`.ci/run`) is launched by path. One server with an API key serves every test of this folder
(each test module marks itself `xdist_group("web")`); each test gets a fresh browser context and leaves a screenshot
in `artifacts/screenshots/`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from tests.conftest import REPO, ServerProcess

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


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    server = ServerProcess(tmp_path_factory.mktemp("web"), env_extra={"CINEGEN_WORKERS": "2"})
    created = subprocess.run(
        [sys.executable, "-m", "cinegen.cli", "keys", "create", "--name", "browser"],
        env=server.env(),
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    server.start(timeout=120)  # a loaded CI machine starts slowly
    studio = Studio(server, created.stdout.strip())
    yield studio
    studio.api.close()
    server.stop()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (.ci/run does)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


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


@pytest.fixture
def page_errors() -> Errors:
    return Errors()


@pytest.fixture
def page(
    browser: Browser, studio: Studio, request: pytest.FixtureRequest, page_errors: Errors
) -> Iterator[Page]:
    context = new_context(browser, studio)
    page = context.new_page()
    page.on("pageerror", lambda exc: page_errors.append(str(exc)))
    yield page
    save_screenshot(page, f"{request.node.name}-end")
    context.close()
    assert not page_errors, f"JavaScript errors on the page: {page_errors}"


def save_screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar belongs at the top
    page.screenshot(path=str(path), full_page=True)
    return path


def open_studio(page: Page, studio: Studio) -> None:
    page.goto(studio.url + "/")
    page.wait_for_selector("#server-status.ok")
