"""The write that ends a job is tried again (issue 31, item 3).

On a full disk the probe's job failed, then its failure handler's write failed too, and the
operation stayed RUNNING at 99 % until a restart. Here the service's final write raises the
database's own error (SQLite's "database or disk is full") a given number of times.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import sqlalchemy.exc

from cinegen.core.errors import EngineError
from cinegen.core.operation import State
from cinegen.jobs import worker
from tests.helpers import operation, sample_uris, submit, text_request
from tests.support.app import InProcessServer, op_id
from tests.support.engines import ScriptedEngine


@pytest.fixture(autouse=True)
def no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "FINAL_WRITE_RETRIES", (0.0, 0.0, 0.0, 0.0))


def _failing(
    monkeypatch: pytest.MonkeyPatch, app: InProcessServer, method: str, times: int
) -> list[int]:
    """`service.<method>` raises the driver's disk-full error its first `times` calls."""
    service = app.runtime.service
    real: Callable[..., bool] = getattr(service, method)
    calls: list[int] = []

    def flaky(*args: Any) -> bool:
        calls.append(1)
        if len(calls) <= times:
            raise sqlalchemy.exc.OperationalError(
                "UPDATE operations", {}, Exception("database or disk is full")
            )
        return real(*args)

    monkeypatch.setattr(service, method, flaky)
    return calls


def _blobs(app: InProcessServer) -> list:
    return sorted(app.settings.resolved_blob_dir.rglob("*.mp4"))


def test_a_success_whose_write_failed_twice_is_still_recorded(
    app: InProcessServer, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _failing(monkeypatch, app, "finish_succeeded", times=2)
    name = submit(client, text_request("written on the third try"))
    app.run(op_id(name))
    assert len(calls) == 3
    op = operation(client, name)
    assert op["done"] is True, op
    [uri] = sample_uris(op)
    file_id = uri.rsplit("/", 1)[-1].split(":", 1)[0]
    assert client.get(f"/v1beta/files/{file_id}:download?alt=media").status_code == 200
    assert len(_blobs(app)) == 1


def test_a_failure_whose_write_failed_once_still_ends_the_operation(
    app: InProcessServer,
    client: httpx.Client,
    engine: ScriptedEngine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine.error = EngineError("the engine broke")
    calls = _failing(monkeypatch, app, "finish_failed", times=1)
    name = submit(client, text_request("fails, and its failure is written on the second try"))
    app.run(op_id(name))
    assert len(calls) == 2
    assert app.db.get_operation(op_id(name)).state == State.FAILED
    assert "the engine broke" in operation(client, name)["error"]["message"]


def test_a_write_that_never_lands_leaves_the_job_to_the_lease_and_frees_its_files(
    app: InProcessServer, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _failing(monkeypatch, app, "finish_succeeded", times=99)
    name = submit(client, text_request("never written"))
    app.run(op_id(name))  # returns: no exception escapes the worker
    assert len(calls) == len(worker.FINAL_WRITE_RETRIES) + 1
    # Still RUNNING under its lease (the watchdog ends it); the videos it made are deleted.
    assert app.db.get_operation(op_id(name)).state == State.RUNNING
    assert _blobs(app) == []


def test_a_write_that_landed_and_then_raised_keeps_the_videos(
    app: InProcessServer, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next try finds the operation ended (False): the files it points at stay."""
    service = app.runtime.service
    real = service.finish_succeeded
    calls: list[bool] = []

    def landed_then_raised(*args: Any) -> bool:
        calls.append(real(*args))
        if len(calls) == 1:
            raise sqlalchemy.exc.OperationalError("COMMIT", {}, Exception("disk I/O error"))
        return calls[-1]

    monkeypatch.setattr(service, "finish_succeeded", landed_then_raised)
    name = submit(client, text_request("landed on the first try"))
    app.run(op_id(name))
    assert calls == [True, False]
    assert operation(client, name)["done"] is True
    assert len(_blobs(app)) == 1
