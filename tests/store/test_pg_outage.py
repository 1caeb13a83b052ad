"""The store across a PostgreSQL restart (issue 25): while it is down a read or write raises
SQLAlchemy's OperationalError (`is_unavailable`, which the API answers 503), and once it is
back the same `Database` works again: the pool pings, a kept per-thread read connection that
died is replaced (a hot-path read tries once more on a fresh one), no restart of cinegen."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.exc import OperationalError

from cinegen.core.operation import State
from cinegen.store.db import Database, is_unavailable
from tests.helpers import insert_queued
from tests.support.postgres import PostgresServer


@pytest.fixture(scope="module")
def own_postgres() -> Iterator[PostgresServer]:
    """A server of this module's own: the session's is not restarted under other tests."""
    server = PostgresServer()
    server.start()
    yield server
    server.close()


def test_reads_and_writes_fail_typed_while_down_and_work_after(
    own_postgres: PostgresServer,
) -> None:
    db = Database(own_postgres.create_database())
    insert_queued(db, "op1", "k")
    assert db.get_operation("op1") is not None and db.count_unfinished("k") == 1
    own_postgres.stop()
    try:
        for call in (
            lambda: db.get_operation("op1"),  # the hot path, on the driver connection
            lambda: db.count_unfinished("k"),  # a read on the thread's kept connection
            lambda: db.claim_operation("op1", "w", 60),  # a write, from the pool
        ):
            with pytest.raises(OperationalError) as down:
                call()
            assert is_unavailable(down.value)
    finally:
        own_postgres.start()
    assert db.get_operation("op1") is not None
    assert db.count_unfinished("k") == 1
    assert db.claim_operation("op1", "w", 60) is not None


def test_a_restart_nobody_saw_costs_no_failed_read(own_postgres: PostgresServer) -> None:
    """PostgreSQL restarted between two requests: the kept connections are dead, yet the
    next hot-path read succeeds (one more try on a fresh connection), and that loss renews
    the thread's other kept connection before the next read uses it."""
    db = Database(own_postgres.create_database())
    insert_queued(db, "op2", "k")
    assert db.get_operation("op2") is not None and db.count_unfinished("k") == 1
    own_postgres.restart()
    op = db.get_operation("op2")
    assert op is not None and op.state == State.QUEUED
    assert db.count_unfinished("k") == 1
