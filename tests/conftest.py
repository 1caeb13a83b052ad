"""Shared fixtures: a real cinegen server process on loopback with its own data directory
(tests/support/server.py), and the app in this process (tests/support/app.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.support.server import ServerProcess

# PostgreSQL fixtures: `postgres`, `pg_url`, `database_url` (SQLite and PostgreSQL).
pytest_plugins = ["tests.support.postgres"]

if TYPE_CHECKING:  # the app's imports (FastAPI, the engines) only where a test uses it
    from tests.support.app import InProcessServer
    from tests.support.postgres import PostgresServer


@pytest.fixture(scope="session", autouse=True)
def no_key_in_server_logs() -> Iterator[None]:
    """No API key the tests made (`create_key`) is in any server's log, at the session's end."""
    yield
    from tests.support.server import CREATED_KEYS, SERVER_LOGS

    logs = {path: path.read_text(errors="replace") for path in SERVER_LOGS if path.exists()}
    leaked = [
        (str(path), key[:6]) for path, text in logs.items() for key in CREATED_KEYS if key in text
    ]
    assert not leaked, f"API keys in server logs: {leaked}"


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One shared server for tests that only need a working endpoint."""
    proc = ServerProcess(tmp_path_factory.mktemp("server"), env_extra={"CINEGEN_WORKERS": "2"})
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of the test's own, for tests that change keys or kill it."""
    proc = ServerProcess(tmp_path / "server")
    yield proc
    proc.stop()


def app_database(request: pytest.FixtureRequest) -> dict[str, str]:
    """The `database_url` setting of an in-process app: none (SQLite under its data dir), or,
    for a fixture parametrized indirectly with "postgresql", a fresh database of the session's
    PostgreSQL server (`@pytest.mark.parametrize("fresh_app", ["postgresql"], indirect=True)`)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        return {}
    server = request.getfixturevalue("postgres")
    url = server.create_database()
    request.addfinalizer(lambda: server.drop_database(url) if server.alive else None)
    return {"database_url": url}


@pytest.fixture(scope="module")
def app_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessServer]:
    """Like `server`, in this process (tests/support/app.py): one app for the module's tests,
    two worker threads, no subprocess."""
    from tests.support.app import in_process

    with in_process(tmp_path_factory.mktemp("app"), workers=2, **app_database(request)) as app:
        yield app


@pytest.fixture
def fresh_app(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[InProcessServer]:
    """Like `fresh_server`, in this process, and with no worker threads: an operation stays
    queued until the test runs it (`fresh_app.run(op_id)`)."""
    from tests.support.app import in_process

    with in_process(tmp_path / "app", workers=0, **app_database(request)) as app:
        yield app


@pytest.fixture(scope="module")
def pg_app(
    postgres: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[InProcessServer]:
    """`app_server` on a fresh PostgreSQL database: one app for the module, two workers."""
    from tests.support.app import in_process

    url = postgres.create_database()
    with in_process(tmp_path_factory.mktemp("pg-app"), workers=2, database_url=url) as app:
        yield app
