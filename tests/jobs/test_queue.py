"""The queue's guarantees, in this process: an operation is claimed once, each run counts as an
attempt, and at start-up the queue recovers what a dead process left, once its lease expired
(jobs/queue.py). Leases between live processes: tests/jobs/test_lease.py.

Jobs run on a `ScriptedEngine` (tests/support/engines.py) in place of the preview engine, so
a run costs milliseconds; operations are made through the Gemini API routes.
"""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from cinegen.core.operation import State
from tests.helpers import operation, sample_uris, submit, text_request, wait_done
from tests.jobs.leases import expire_lease
from tests.support.app import InProcessServer, in_process, op_id
from tests.support.engines import ScriptedEngine


def test_a_queued_operation_is_claimed_once(app: InProcessServer, client: httpx.Client) -> None:
    op = op_id(submit(client, text_request("a queue of paper boats")))
    assert app.db.get_operation(op).state == State.QUEUED
    claimed = app.db.claim_operation(op, "worker-1", 60)
    assert claimed is not None
    assert (claimed.id, claimed.state, claimed.attempts) == (op, State.RUNNING, 1)
    assert app.db.lease_of(op)[0] == "worker-1"
    assert app.db.claim_operation(op, "worker-2", 60) is None
    assert app.db.lease_of(op)[0] == "worker-1"
    assert app.db.get_operation(op).attempts == 1  # the refused claim counted nothing


def test_concurrent_claims_give_the_operation_to_one(
    app: InProcessServer, client: httpx.Client
) -> None:
    op = op_id(submit(client, text_request("a queue of paper boats")))
    claimers = 8
    start = threading.Barrier(claimers)
    results: list[object] = []

    def claim() -> None:
        start.wait()
        results.append(app.db.claim_operation(op, threading.current_thread().name, 60))

    threads = [threading.Thread(target=claim) for _ in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == claimers
    assert sum(result is not None for result in results) == 1
    assert app.db.get_operation(op).attempts == 1


def test_an_ended_operation_is_not_claimed_or_run(
    app: InProcessServer, client: httpx.Client, engine: ScriptedEngine
) -> None:
    name = submit(client, text_request("a queue of paper boats"))
    app.run(op_id(name))
    assert "response" in operation(client, name)
    assert app.db.claim_operation(op_id(name), "worker-2", 60) is None
    app.run(op_id(name))  # a duplicate delivery of the same job
    assert engine.renders == 1
    assert app.db.get_operation(op_id(name)).attempts == 1


def test_attempts_count_runs_not_successes(
    app: InProcessServer, client: httpx.Client, engine: ScriptedEngine
) -> None:
    once = submit(client, text_request("run once"))
    app.run(op_id(once))
    assert app.db.get_operation(op_id(once)).attempts == 1

    again = submit(client, text_request("interrupted, then run again"))
    assert app.db.claim_operation(op_id(again), "dead", 60) is not None  # a worker took it...
    expire_lease(app, op_id(again))  # ... and died
    assert app.runtime.service.recover_expired(max_attempts=2) == [op_id(again)]
    app.run(op_id(again))
    op = app.db.get_operation(op_id(again))
    assert (op.state, op.attempts) == (State.SUCCEEDED, 2)
    assert engine.renders == 2  # the interrupted attempt never reached the engine


def test_start_up_recovers_what_a_dead_process_left(tmp_path: Path) -> None:
    data = tmp_path / "data"
    before = ScriptedEngine()
    with in_process(data, workers=0, engines={"preview": before}) as dead:
        with dead.client() as client:
            queued = submit(client, text_request("still queued"))
            running = submit(client, text_request("running once when the process died"))
            spent = submit(client, text_request("running for the second time when it died"))
        assert dead.db.claim_operation(op_id(running), "dead", 60) is not None
        assert dead.db.claim_operation(op_id(spent), "dead", 60) is not None
        expire_lease(dead, op_id(spent))
        assert dead.runtime.service.recover_expired(max_attempts=3) == [op_id(spent)]
        assert dead.db.claim_operation(op_id(spent), "dead", 60).attempts == 2
        # the process dies; its leases run out
        expire_lease(dead, op_id(running))
        expire_lease(dead, op_id(spent))
    assert before.renders == 0

    after = ScriptedEngine()
    with (
        in_process(data, workers=1, max_attempts=2, engines={"preview": after}) as restarted,
        restarted.client() as client,
    ):
        for name in (queued, running):
            op = wait_done(client, name, timeout=60)
            assert len(sample_uris(op)) == 1, op
            assert client.get(sample_uris(op)[0]).content[4:8] == b"ftyp"
        failed = wait_done(client, spent, timeout=60)
        assert "response" not in failed
        assert failed["error"]["code"] == 14  # UNAVAILABLE
        assert "stopped while generating this video, 2 time(s)" in failed["error"]["message"]
        attempts = {n: restarted.db.get_operation(op_id(n)).attempts for n in (queued, running)}
    assert attempts == {queued: 1, running: 2}
    assert after.renders == 2  # the spent one was not run again
