"""A PostgreSQL 15 server for the tests (deploy/cluster.py's `Postgres`): initdb in a temp
dir, on 127.0.0.1 and a free port.

PostgreSQL refuses to run as root, so as root the server commands run as the `postgres` user
(`runuser`), on a directory chowned to it. One server per pytest process (each xdist worker
starts its own, so workers never share databases); each test or module takes a fresh database
(`create_database`), copied from a migrated template unless it asks for an empty one.

Fixtures (registered by tests/conftest.py): `postgres` (the session's server), `pg_url` (a
fresh migrated database for one test), `database_url` (parametrized: SQLite, then PostgreSQL)
and `empty_database_url` (the same, never migrated).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.cluster import Postgres


class PostgresServer(Postgres):
    """deploy/cluster.py's `Postgres` in a new temp dir, with no database of its own:
    `create_database()` makes each test's; `close()` removes it all."""

    def __init__(self) -> None:
        base = Path(tempfile.mkdtemp(prefix="cinegen-pg-"))
        super().__init__("postgres", base / "server.log", workdir=base, database="")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """This pytest process's PostgreSQL server (one per xdist worker)."""
    server = PostgresServer()
    server.start()
    yield server
    server.close()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for one test."""
    url = postgres.create_database()
    yield url
    if postgres.alive:
        postgres.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of either kind, for tests that must pass on both (a PostgreSQL one
    is already migrated, a SQLite one not yet: `Database.migrate()` is needed either way)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cinegen.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.create_database()
    yield url
    if server.alive:
        server.drop_database(url)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database of either kind that no migration has touched."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cinegen.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.create_database(migrated=False)
    yield url
    if server.alive:
        server.drop_database(url)
