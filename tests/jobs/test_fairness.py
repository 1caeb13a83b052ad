"""Fair scheduling between keys (issue 31 item 4): a worker takes the queued operation whose
turn comes first, owners taking turns (jobs/queue.py, `Database.fair_next_queued`), so one
key's long queue does not hold back another key's single job; within one key, oldest first.

The order asserted is the order of the claims the database granted, recorded by wrapping
`Database.claim_operation`; no timing is measured.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest

from cinegen.core.operation import Operation, State
from cinegen.store.db import Database, utcnow
from tests.helpers import insert_queued, submit, text_request, wait_done
from tests.support.app import InProcessServer, in_process, op_id
from tests.support.engines import ScriptedEngine


class Gate:
    """Holds the first render until the test opens it, so that every job the test submits
    meanwhile is queued when the worker next chooses."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.open = threading.Event()

    def __call__(self, _step: int) -> None:
        self.started.set()
        assert self.open.wait(30), "the test never opened the gate"


@contextmanager
def one_worker(tmp_path: Path, gate: Gate) -> Iterator[tuple[InProcessServer, list[str]]]:
    """A server with one worker thread; yields it and the ids of its claims, in order."""
    with in_process(
        tmp_path / "data", workers=1, engines={"preview": ScriptedEngine(before_step=gate)}
    ) as app:
        claims: list[str] = []
        claim = app.db.claim_operation

        def recorded(op: str, owner: str, lease_seconds: float) -> Operation | None:
            claimed = claim(op, owner, lease_seconds)
            if claimed is not None:
                claims.append(op)
            return claimed

        app.db.claim_operation = recorded
        yield app, claims


def test_another_keys_single_job_does_not_wait_for_a_long_queue(tmp_path: Path) -> None:
    gate = Gate()
    with one_worker(tmp_path, gate) as (app, claims):
        alice, bob = app.add_key("alice"), app.add_key("bob")
        with (
            app.client(headers={"x-goog-api-key": alice}) as a,
            app.client(headers={"x-goog-api-key": bob}) as b,
        ):
            many = [submit(a, text_request("alice's first"))]
            assert gate.started.wait(30)  # the worker runs alice's first job
            many += [submit(a, text_request(f"alice's job {i}")) for i in range(2, 9)]
            single = submit(b, text_request("bob's only job"))
            gate.open.set()
            for name in many:
                wait_done(a, name, timeout=60)
            wait_done(b, single, timeout=60)
    ids = [op_id(name) for name in many]
    # Alice was served last (her first job), Bob never: Bob's job goes next, though Alice's
    # second is older; then the rest of Alice's, in her order. FIFO would run Bob's last.
    assert claims == [ids[0], op_id(single), *ids[1:]]


def test_one_keys_jobs_run_in_the_order_they_were_submitted(tmp_path: Path) -> None:
    gate = Gate()
    with one_worker(tmp_path, gate) as (app, claims), app.client() as anonymous:
        names = [submit(anonymous, text_request("first"))]
        assert gate.started.wait(30)
        names += [submit(anonymous, text_request(f"job {i}")) for i in range(2, 7)]
        gate.open.set()
        for name in names:
            wait_done(anonymous, name, timeout=60)
    assert claims == [op_id(name) for name in names]


# The choice itself, on rows written straight to the database ----------------------------


def _queue(db: Database, owners: list[str | None], *, minute: int = 0) -> list[str]:
    """One queued operation per entry, created a second apart in that order, the first
    `minute` minutes into the test's hour; their ids."""
    start = utcnow() - timedelta(hours=1) + timedelta(minutes=minute)
    ids = []
    for index, owner in enumerate(owners):
        op_id = f"op-{minute}-{index}-{owner}"
        insert_queued(db, op_id, owner, start + timedelta(seconds=index))
        ids.append(op_id)
    return ids


def _claim_all(db: Database, *, finish: bool) -> list[str]:
    """Claim the fair next operation until none is queued; `finish`: end each before the
    next claim (one worker), else keep them all running (as many workers)."""
    order = []
    while (op := db.fair_next_queued()) is not None:
        assert db.claim_operation(op, "worker", 60) is not None
        if finish:
            assert db.finish_operation(op, State.SUCCEEDED, lease_owner="worker")
        order.append(op)
    return order


@pytest.mark.parametrize("finish", [True, False], ids=["one-worker", "all-running"])
def test_owners_take_turns_and_the_anonymous_caller_is_one_owner(
    app: InProcessServer, finish: bool
) -> None:
    a1, a2, a3, a4, n1, n2, b1 = _queue(app.db, ["a", "a", "a", "a", None, None, "b"])
    assert _claim_all(app.db, finish=finish) == [a1, n1, b1, a2, n2, a3, a4]


def test_an_owner_with_running_jobs_waits_behind_one_with_none(app: InProcessServer) -> None:
    a1, a2, a3 = _queue(app.db, ["a", "a", "a"])
    for op in (a1, a2):  # two workers run two of a's jobs
        assert app.db.claim_operation(op, "worker", 60) is not None
    b1, b2 = _queue(app.db, ["b", "b"], minute=1)
    # a3 is older and first in a's queue, but a already runs two jobs and b none.
    assert _claim_all(app.db, finish=False) == [b1, b2, a3]


def test_a_claimed_or_cancelled_operation_is_not_chosen(app: InProcessServer) -> None:
    a1, a2, b1 = _queue(app.db, ["a", "a", "b"])
    assert app.db.fair_next_queued() == a1
    assert app.db.claim_operation(a1, "another worker", 60) is not None  # it lost the race
    assert app.db.fair_next_queued() == b1  # asked again: b's turn, a runs one already
    assert app.db.finish_operation(b1, State.CANCELLED, expect=State.QUEUED)
    assert app.db.fair_next_queued() == a2
