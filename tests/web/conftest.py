"""The playground's fixtures: one server with an API key serves every test of this folder
(each test module marks itself `xdist_group("web")`); each test gets a fresh browser context
and leaves a screenshot in `artifacts/screenshots/`. Helpers: tests/support/web.py.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.support.server import REPO, ServerProcess
from tests.support.web import (
    CHROMIUM,
    CHROMIUM_ARGS,
    Errors,
    Studio,
    new_context,
    save_screenshot,
)


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
