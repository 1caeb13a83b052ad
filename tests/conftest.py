"""Shared fixtures: a real cinegen server process on loopback with its own data directory
(tests/support/server.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import ServerProcess


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
