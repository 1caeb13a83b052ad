"""The reconciler: the database is the truth, the broker only a delivery service.

An operation is written `queued` before its message is sent; the message can still be lost
(Redis restarted without its data, a send that failed while the broker was down). Every pass
finds the operations that have been `queued` for longer than `reconcile_grace_seconds` without
a worker claiming them and sends them to the broker again. That is safe: a claim is atomic, so
a message delivered twice runs its job once. An operation whose message is still waiting in
its queue (a long queue behind busy workers) is not sent again, where the broker's queues can
be read (Redis: `CeleryQueue.waiting`).

It runs in every worker, idempotently: before re-sending, a pass moves the row's `update_time`
forward with an update guarded by the old time, so across all the workers of a cluster one
(and only one) of them re-sends a given operation per grace period. Nothing else reads a queued
row's `update_time`: a claim, a cancel and the fair order go by state and `create_time`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from cinegen.store.db import Database, utcnow

log = logging.getLogger("cinegen.reconcile")

BATCH = 500  # operations looked at per pass; the next pass takes the rest

Send = Callable[[str, str], None]  # (operation id, model)
Waiting = Callable[[set[str]], set[str] | None]  # models -> ids with a message waiting


def stale_queued(db: Database, grace_seconds: float, limit: int = BATCH) -> list[tuple[str, str]]:
    """(id, model) of operations queued and untouched for longer than `grace_seconds`,
    oldest first."""
    return db.queued_before(utcnow() - timedelta(seconds=grace_seconds), limit)


def take_turn(db: Database, op_id: str, grace_seconds: float) -> bool:
    """Mark a stale queued operation as re-sent now; False when it is no longer stale (a
    worker claimed it, it was cancelled, or another worker's reconciler took this turn)."""
    now = utcnow()
    return db.touch_queued(op_id, now - timedelta(seconds=grace_seconds), now)


def reconcile(
    db: Database, grace_seconds: float, send: Send, waiting: Waiting | None = None
) -> list[str]:
    """One pass: every stale queued operation whose turn this process took is sent again,
    unless `waiting` (the ids with a message in the broker's queues of the given models)
    says the broker still has it (None from it: unknown, all are sent). The ids sent; a send
    that fails waits for the next grace period; a `waiting` that raises ends the pass."""
    stale = stale_queued(db, grace_seconds)
    known: set[str] | None = set()
    if stale and waiting is not None:
        known = waiting({model for _, model in stale})
    sent = []
    for op_id, model in stale:
        if known is not None and op_id in known:
            continue  # still waiting in its queue behind other jobs: not lost
        if not take_turn(db, op_id, grace_seconds):
            continue
        try:
            send(op_id, model)
        except Exception:
            log.warning("operation %s: re-sending it to the broker failed", op_id, exc_info=True)
            continue
        log.info("operation %s was queued but not claimed; sent to the broker again", op_id)
        sent.append(op_id)
    return sent
