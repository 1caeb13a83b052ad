"""Claims on one database from many connections at once (store/db.py, store/outbox.py): each
job and each webhook event is taken by exactly one claimer, on SQLite and on PostgreSQL
(where a claim locks its row FOR UPDATE SKIP LOCKED)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

from cinegen.core.operation import State
from cinegen.store.db import Database, insert_webhook_event, utcnow
from cinegen.store.outbox import Outbox
from tests.helpers import QUEUED_AT, insert_queued

CLAIMERS = 8
T = TypeVar("T")


def _at_once(url: str, work: Callable[[Database], T]) -> list[T]:
    """`work` in CLAIMERS threads, each on a `Database` (engine, connections) of its own,
    released together by a barrier."""
    databases = [Database(url) for _ in range(CLAIMERS)]
    barrier = threading.Barrier(CLAIMERS)

    def run(db: Database) -> T:
        barrier.wait()
        return work(db)

    try:
        with ThreadPoolExecutor(CLAIMERS) as pool:
            return list(pool.map(run, databases))
    finally:
        for db in databases:
            db.engine.dispose()


def test_one_of_eight_claimers_wins_a_job(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    insert_queued(db, "op1")
    claims = _at_once(database_url, lambda mine: mine.claim_operation("op1", "w", 60))
    winners = [claim for claim in claims if claim is not None]
    assert len(winners) == 1
    op = db.get_operation("op1")
    assert op is not None and op.state == State.RUNNING and op.attempts == 1


def test_eight_workers_take_every_queued_job_once(database_url: str) -> None:
    """Each worker asks for the fair next job and claims it, as jobs/queue.py does, until
    none is left: every job runs once, and none is claimed by two."""
    db = Database(database_url)
    db.migrate()
    for i in range(24):
        insert_queued(db, f"op{i:02}", f"key{i % 3}", QUEUED_AT + timedelta(minutes=i))

    def drain(mine: Database) -> list[str]:
        taken = []
        while (op_id := mine.fair_next_queued()) is not None:
            if mine.claim_operation(op_id, f"w{threading.get_ident()}", 60) is not None:
                taken.append(op_id)
        return taken

    taken = [op_id for mine in _at_once(database_url, drain) for op_id in mine]
    assert sorted(taken) == [f"op{i:02}" for i in range(24)]
    assert all(op.attempts == 1 for op in db.list_operations("key0", limit=50))


def test_concurrent_senders_take_disjoint_webhook_events(database_url: str) -> None:
    db = Database(database_url)
    db.migrate()
    now = utcnow()
    with db._write() as conn:
        ids = [
            insert_webhook_event(
                conn,
                msg_id=f"msg_{i}",
                owner=None,
                target_uri="http://127.0.0.1:9/hook",
                kind="dynamic",
                event_type="video.generated",
                payload="{}",
                now=now - timedelta(seconds=i),
            )
            for i in range(20)
        ]
    later = now + timedelta(seconds=1)
    batches = _at_once(database_url, lambda mine: Outbox(mine).claim(later, 60, 5))
    if db.engine.dialect.name == "postgresql":  # SKIP LOCKED: a loser takes other rows
        assert sum(len(batch) for batch in batches) == len(ids)
    while rest := Outbox(db).claim(later, 60, 5):  # SQLite: the losers' rows are left
        batches.append(rest)
    taken = Counter(event.id for batch in batches for event in batch)
    assert sorted(taken) == sorted(ids) and set(taken.values()) == {1}
    assert all(event.attempts == 1 for batch in batches for event in batch)


def test_a_claim_skips_a_row_another_transaction_holds(pg_url: str) -> None:
    """PostgreSQL: while another transaction holds the job's row, a claim gives up at once
    (SKIP LOCKED) instead of waiting for it; once released, the claim succeeds."""
    db = Database(pg_url)
    insert_queued(db, "op1")
    holder = Database(pg_url)
    try:
        with holder.engine.begin() as conn:
            conn.exec_driver_sql("SELECT id FROM operations WHERE id = 'op1' FOR UPDATE")
            with ThreadPoolExecutor(1) as pool:  # a blocked claim would time out here
                assert pool.submit(db.claim_operation, "op1", "w", 60).result(10) is None
        assert db.claim_operation("op1", "w", 60) is not None
    finally:
        holder.engine.dispose()
