"""The app in this process with no worker threads and a `ScriptedEngine` serving the Veo
models: a job runs when the test calls `app.run(op_id)`, in the test's thread."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.app import InProcessServer, in_process
from tests.support.engines import ScriptedEngine


@pytest.fixture
def engine() -> ScriptedEngine:
    return ScriptedEngine()


@pytest.fixture
def app(tmp_path: Path, engine: ScriptedEngine) -> Iterator[InProcessServer]:
    with in_process(tmp_path / "data", workers=0, engines={"preview": engine}) as server:
        yield server


@pytest.fixture
def client(app: InProcessServer) -> Iterator[httpx.Client]:
    with app.client() as c:
        yield c
