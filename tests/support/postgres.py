"""A PostgreSQL 15 server for the tests: initdb in a temp dir, on 127.0.0.1 and a free port.

PostgreSQL refuses to run as root, so as root the server commands run as the `postgres` user
(`runuser`), on a directory chowned to it. One server per pytest process (each xdist worker
starts its own, so workers never share databases); each test or module takes a fresh database
(`create_database`), copied from a migrated template unless it asks for an empty one.

Fixtures (registered by tests/conftest.py): `postgres` (the session's server), `pg_url` (a
fresh migrated database for one test), `database_url` (parametrized: SQLite, then PostgreSQL)
and `empty_database_url` (the same, never migrated).
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# Durability is of no use in a test's throwaway cluster; speed is.
_SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
    "-c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB"
)
TEMPLATE = "cinegen_template"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_server_user(args: list[str]) -> list[str]:
    """The command as the `postgres` user when we are root (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return args
    return ["runuser", "-u", "postgres", "--", *args]


class PostgresServer:
    """One cluster in a temp dir; `stop()` and `start()` keep its data and port (outages)."""

    def __init__(self) -> None:
        self.base = Path(tempfile.mkdtemp(prefix="cinegen-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "server.log"
        self.port = _free_port()
        self.running = False
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.base, user.pw_uid, user.pw_gid)
        self._run(["initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"])

    def _run(self, args: list[str]) -> None:
        done = subprocess.run(_as_server_user(args), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}\n{log}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.base} {_SERVER_OPTIONS}"
        self._run(
            ["pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.log)]
            + ["-o", options]
        )
        self.running = True

    def stop(self) -> None:
        """A fast shutdown: open connections are cut, as in a real outage."""
        if self.running:
            self._run(["pg_ctl", "stop", "-w", "-t", "60", "-m", "fast", "-D", str(self.data)])
            self.running = False

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(sql)  # type: ignore[arg-type]

    def create_database(self, *, migrated: bool = True) -> str:
        """A new database's URL: a copy of the migrated template, or empty."""
        name = f"t_{uuid.uuid4().hex[:16]}"
        if migrated:
            self._ensure_template()
            self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{TEMPLATE}"')
        else:
            self._admin(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        name = url.rsplit("/", 1)[-1]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _ensure_template(self) -> None:
        """Migrate one database to head, once: copying it is faster than migrating each."""
        if getattr(self, "_template_ready", False):
            return
        from cinegen.store.db import Database

        self._admin(f'CREATE DATABASE "{TEMPLATE}"')
        db = Database(self.url(TEMPLATE))
        try:
            db.migrate()
        finally:
            db.engine.dispose()
        self._template_ready = True


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
    if postgres.running:
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
    if server.running:
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
    if server.running:
        server.drop_database(url)
