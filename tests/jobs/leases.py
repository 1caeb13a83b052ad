"""Helpers for lease tests: what a dead worker's lease looks like once it has run out."""

from __future__ import annotations

from datetime import timedelta

from cinegen.store.db import utcnow
from tests.support.app import InProcessServer


def expire_lease(app: InProcessServer, op_id: str) -> None:
    """Make the operation's lease one that ran out a minute ago (its worker is gone)."""
    app.db.update_operation(op_id, lease_expires=utcnow() - timedelta(minutes=1))


def lease_owner(app: InProcessServer, op_id: str) -> str | None:
    return app.db.lease_of(op_id)[0]


def worker_id(app: InProcessServer) -> str:
    """The owner of the leases this app's workers take."""
    return app.runtime.service.worker_id
