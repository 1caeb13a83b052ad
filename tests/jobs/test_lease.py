"""Leases: a running job belongs to the worker that claimed it while its lease lasts.

Two apps on one data directory stand for two processes on one database (each runtime has a
worker id of its own). Start-up and the watchdog recover only expired leases; every write of a
job is guarded by its state and its lease, so a write that comes late (after finish, or after
another worker took the job over) changes nothing and stops the worker that made it; and a
worker takes queued jobs from the database, not only from its own queue.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.exc import OperationalError

from cinegen.core.errors import Internal
from cinegen.core.operation import State
from cinegen.service import workers
from tests.helpers import sample_uris, submit, text_request, wait_done
from tests.jobs.leases import expire_lease, lease_owner, worker_id
from tests.support.app import InProcessServer, in_process, op_id
from tests.support.engines import ScriptedEngine

FAST_POLL = {"poll_interval_seconds": 0.05}
WAIT = 30.0  # seconds before a poll loop gives up (a deadline, not an expected duration)


@pytest.fixture
def other_engine() -> ScriptedEngine:
    return ScriptedEngine()


@pytest.fixture
def worker_node(tmp_path: Path, other_engine: ScriptedEngine) -> Iterator[InProcessServer]:
    """A second process on the same database, with one worker thread."""
    with in_process(
        tmp_path / "data", workers=1, engines={"preview": other_engine}, **FAST_POLL
    ) as server:
        yield server


def stored_videos(app: InProcessServer) -> set[str]:
    return {p.stem for p in app.settings.resolved_blob_dir.rglob("*.mp4")}


def test_a_second_process_does_not_touch_a_running_job(
    tmp_path: Path, app: InProcessServer, client: httpx.Client, engine: ScriptedEngine
) -> None:
    name = submit(client, text_request("rendered by the first process"))
    op = op_id(name)
    started, release = threading.Event(), threading.Event()

    def hold_the_first_step(step: int) -> None:
        if step == 0:
            started.set()
            assert release.wait(WAIT)

    engine.before_step = hold_the_first_step
    job = threading.Thread(target=app.run, args=(op,))
    job.start()
    try:
        assert started.wait(WAIT)
        second = ScriptedEngine()
        with in_process(
            tmp_path / "data", workers=1, engines={"preview": second}, **FAST_POLL
        ) as other:
            # Its start-up recovered nothing: the job is still the first process's.
            running = other.db.get_operation(op)
            assert (running.state, running.attempts) == (State.RUNNING, 1)
            assert lease_owner(other, op) == worker_id(app) != worker_id(other)
            assert other.runtime.service.recover_expired(max_attempts=2) == []
            assert other.db.get_operation(op).state == State.RUNNING
            release.set()
            job.join(WAIT)
            with other.client() as other_client:
                done = wait_done(other_client, name, timeout=WAIT)
            assert len(sample_uris(done)) == 1
            assert second.renders == 0
    finally:
        release.set()
        job.join(WAIT)
    finished = app.db.get_operation(op)
    assert (finished.state, finished.attempts, engine.renders) == (State.SUCCEEDED, 1, 1)


def test_a_progress_write_after_finish_does_not_change_the_operation(
    app: InProcessServer, client: httpx.Client
) -> None:
    op = op_id(submit(client, text_request("finished, then a late progress write")))
    app.run(op)
    service = app.runtime.service
    finished = app.db.get_operation(op)
    assert (finished.state, finished.progress) == (State.SUCCEEDED, 100.0)
    assert lease_owner(app, op) is None  # finishing ends the lease

    assert service.report_progress(op, 98.4) is False
    assert service.renew(op) is False
    assert service.finish_failed(op, Internal("too late")) is False
    assert service.finish_cancelled(op) is False
    after = app.db.get_operation(op)
    assert (after.state, after.progress, after.samples) == (
        State.SUCCEEDED,
        100.0,
        finished.samples,
    )
    assert after.error_code is None


def test_progress_writes_renew_the_lease(
    app: InProcessServer, client: httpx.Client, engine: ScriptedEngine
) -> None:
    op = op_id(submit(client, text_request("a long render")))
    expiries = []
    service = app.runtime.service

    def look(step: int) -> None:
        expiries.append(app.db.lease_of(op)[1])
        if step == 1:
            expire_lease(app, op)  # as if the engine had been silent for a long time
        if step == 2:  # the progress write of step 1 renewed it: nothing to recover
            assert service.recover_expired(max_attempts=2) == []

    # pause > the 0.25 s between progress writes, so that each report writes
    engine.steps, engine.pause, engine.before_step = 3, 0.3, look
    app.run(op)
    assert app.db.get_operation(op).state == State.SUCCEEDED
    assert expiries[0] is not None and expiries[2] > expiries[0]


def test_an_expired_lease_is_recovered_by_a_live_worker_without_restart(
    app: InProcessServer,
    client: httpx.Client,
    engine: ScriptedEngine,
    worker_node: InProcessServer,
    other_engine: ScriptedEngine,
) -> None:
    name = submit(client, text_request("its worker died"))
    op = op_id(name)
    claimed = app.db.claim_operation(op, "a-worker-that-dies", 3600)
    assert claimed is not None and claimed.attempts == 1
    assert worker_node.runtime.service.recover_expired(max_attempts=2) == []  # live: left alone
    assert lease_owner(worker_node, op) == "a-worker-that-dies"

    expire_lease(app, op)
    done = wait_done(client, name, timeout=WAIT)
    assert len(sample_uris(done)) == 1
    assert other_engine.renders == 1 and engine.renders == 0
    assert app.db.get_operation(op).attempts == 2


def test_a_lease_of_an_exited_process_of_this_machine_is_recovered_at_once(
    tmp_path: Path, app: InProcessServer, client: httpx.Client
) -> None:
    """A restart after SIGKILL need not wait for the dead process's leases to expire."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        dead_owner = workers.new_worker_id(child.pid)
        assert not workers.owner_is_dead(dead_owner)  # still running
    finally:
        child.kill()
        child.wait()
    assert workers.owner_is_dead(dead_owner)
    assert not workers.owner_is_dead(worker_id(app))  # this process: alive
    assert not workers.owner_is_dead("a-worker-elsewhere")  # unknown: wait for expiry

    name = submit(client, text_request("its process was killed a moment ago"))
    op = op_id(name)
    assert app.db.claim_operation(op, dead_owner, 3600) is not None
    other_engine = ScriptedEngine()
    with in_process(tmp_path / "data", workers=1, engines={"preview": other_engine}, **FAST_POLL):
        done = wait_done(client, name, timeout=WAIT)
    assert len(sample_uris(done)) == 1
    assert other_engine.renders == 1 and app.db.get_operation(op).attempts == 2


def test_an_expired_lease_with_no_attempts_left_fails_without_restart(
    tmp_path: Path, app: InProcessServer, client: httpx.Client
) -> None:
    name = submit(client, text_request("its worker died, and it was its last attempt"))
    op = op_id(name)
    assert app.db.claim_operation(op, "a-worker-that-dies", 3600) is not None
    other_engine = ScriptedEngine()
    with in_process(
        tmp_path / "data", workers=1, max_attempts=1, engines={"preview": other_engine}, **FAST_POLL
    ):
        assert app.db.get_operation(op).state == State.RUNNING
        expire_lease(app, op)
        failed = wait_done(client, name, timeout=WAIT)
    assert "response" not in failed
    assert failed["error"]["code"] == 14  # UNAVAILABLE
    assert "stopped while generating this video, 1 time(s)" in failed["error"]["message"]
    assert other_engine.renders == 0


def test_a_job_made_on_an_api_only_node_runs_on_a_worker_node_without_restart(
    app: InProcessServer,
    client: httpx.Client,
    engine: ScriptedEngine,
    worker_node: InProcessServer,
    other_engine: ScriptedEngine,
) -> None:
    # `app` has no workers; `worker_node` started before the job existed.
    names = [submit(client, text_request(f"made on the API node, {i}")) for i in range(2)]
    for name in names:
        done = wait_done(client, name, timeout=WAIT)
        assert len(sample_uris(done)) == 1
        assert client.get(sample_uris(done)[0]).content[4:8] == b"ftyp"
    assert other_engine.renders == 2 and engine.renders == 0


def test_a_worker_whose_lease_was_taken_over_stops_and_does_not_overwrite(
    tmp_path: Path, app: InProcessServer, client: httpx.Client, engine: ScriptedEngine
) -> None:
    op = op_id(submit(client, text_request("taken over mid-render", sampleCount=2)))
    second = ScriptedEngine()
    with in_process(tmp_path / "data", workers=0, engines={"preview": second}) as other:
        taken: list[str] = []

        def take_over_in_the_second_sample(step: int) -> None:
            if engine.renders == 2 and step == 1 and not taken:
                # The first worker stalled past its lease; the other process takes the job.
                expire_lease(app, op)
                assert other.runtime.service.recover_expired(max_attempts=2) == [op]
                other.run(op)
                taken.append(op)

        engine.steps, engine.before_step = 3, take_over_in_the_second_sample
        stored_before = stored_videos(app)
        app.run(op)  # the first worker: it finds the job gone at its next write, and stops

        assert taken == [op]
        assert second.renders == 2
        result = app.db.get_operation(op)
        assert (result.state, result.progress, result.attempts) == (State.SUCCEEDED, 100.0, 2)
        winners = {s.file_id for s in result.samples}
        assert len(winners) == 2
        # The first worker's stored sample was discarded; only the winner's files remain.
        assert stored_videos(app) - stored_before == winners
        for record in app.db.files_of(op):
            assert record.deleted == (record.id not in winners), record
        assert lease_owner(app, op) is None


def test_a_video_stored_by_a_run_that_died_is_deleted_when_the_job_runs_again(
    tmp_path: Path, app: InProcessServer, client: httpx.Client
) -> None:
    """A worker SIGKILLed after storing a sample but before finishing leaves a file row and
    its blob; the next run of the job deletes them, so only its own videos remain."""
    name = submit(client, text_request("its first worker died after storing a video"))
    op = op_id(name)
    assert app.db.claim_operation(op, "a-worker-that-dies", 3600) is not None
    left = tmp_path / "left.mp4"
    left.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(64))
    files = app.runtime.service.files
    stale = files.store_video(operation_id=op, owner=None, file_id="stale0", source=left)
    assert files.blobs.exists(stale.blob_key)

    expire_lease(app, op)
    assert app.runtime.service.recover_expired(max_attempts=2) == [op]
    app.run(op)
    done = wait_done(client, name, timeout=WAIT)
    kept = {uri.rsplit("/", 1)[-1].split(":")[0] for uri in sample_uris(done)}
    assert "stale0" not in kept and len(kept) == 1
    assert not files.blobs.exists(stale.blob_key)
    assert app.db.get_file("stale0").deleted
    live = [f.id for f in app.db.files_of(op) if not f.deleted]
    assert len(live) == 1 and live[0] != "stale0"


def test_a_job_cut_off_from_the_database_runs_again_instead_of_failing(
    app: InProcessServer, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A progress write that finds the database gone (PostgreSQL restarting) stops the job
    without an end written, not as `crashed`: its lease runs out and it runs again."""
    name = submit(client, text_request("the database restarts under this job"))
    op = op_id(name)
    service = app.runtime.service
    real = service.report_progress

    def database_gone(*args: object, **kwargs: object) -> bool:
        raise OperationalError("UPDATE operations ...", {}, ConnectionError("server closed"))

    monkeypatch.setattr(service, "report_progress", database_gone)
    app.run(op)
    row = app.db.get_operation(op)
    assert row.state == State.RUNNING and row.error_code is None  # nothing written: no end

    monkeypatch.setattr(service, "report_progress", real)
    expire_lease(app, op)
    assert service.recover_expired(max_attempts=2) == [op]
    app.run(op)
    done = wait_done(client, name, timeout=WAIT)
    assert "error" not in done and len(sample_uris(done)) == 1
    assert app.db.get_operation(op).attempts == 2
