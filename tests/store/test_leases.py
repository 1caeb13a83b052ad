"""The lease guards in SQL (store/db.py): each write matches only the state and lease it
expects, so two processes on one database cannot both write a running operation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from cinegen.core.operation import State
from cinegen.store.db import Database, utcnow
from tests.helpers import insert_queued


def _database(url: str) -> Database:
    db = Database(url)
    db.migrate()
    return db


def test_only_the_lease_owner_writes_a_running_operation(database_url: str) -> None:
    db = _database(database_url)
    insert_queued(db, "op1")
    assert db.claim_operation("op1", "w1", 60) is not None
    assert db.renew_lease("op1", "w1", 60, progress=10.0) is True
    assert db.renew_lease("op1", "w2", 60, progress=20.0) is False
    assert db.finish_operation("op1", State.FAILED, lease_owner="w2") is False
    assert db.finish_operation("op1", State.CANCELLED, expect=State.QUEUED) is False
    op = db.get_operation("op1")
    assert op is not None and (op.state, op.progress) == (State.RUNNING, 10.0)
    assert db.finish_operation("op1", State.SUCCEEDED, lease_owner="w1", progress=100.0)
    assert db.renew_lease("op1", "w1", 60, progress=98.4) is False
    op = db.get_operation("op1")
    assert op is not None and (op.state, op.progress) == (State.SUCCEEDED, 100.0)
    assert db.lease_of("op1") == (None, None)


def test_only_an_expired_lease_is_recovered_and_then_its_owner_is_locked_out(
    database_url: str,
) -> None:
    db = _database(database_url)
    insert_queued(db, "op2")
    db.claim_operation("op2", "w1", 60)
    now = utcnow()
    assert [op.id for op in db.expired_leases(now)] == []
    assert db.requeue_expired("op2", now) is False
    assert db.fail_expired("op2", now, [], 14, "gone") is False

    later = now + timedelta(seconds=61)
    assert [op.id for op in db.expired_leases(later)] == ["op2"]
    assert db.requeue_expired("op2", later) is True
    assert db.requeue_expired("op2", later) is False  # a second recoverer finds nothing
    assert db.claim_operation("op2", "w2", 60) is not None
    assert db.renew_lease("op2", "w1", 60) is False  # the first worker has lost it
    assert db.finish_operation("op2", State.SUCCEEDED, lease_owner="w1") is False
    assert db.lease_of("op2")[0] == "w2"


def test_a_live_lease_of_a_dead_owner_is_recovered(database_url: str) -> None:
    db = _database(database_url)
    insert_queued(db, "op3")
    db.claim_operation("op3", "dead", 3600)
    now = utcnow()
    assert db.lease_owners() == ["dead"]
    assert db.requeue_expired("op3", now, ["someone-else"]) is False
    assert [op.id for op in db.expired_leases(now, ["dead"])] == ["op3"]
    assert db.requeue_expired("op3", now, ["dead"]) is True


def test_a_running_row_from_before_leases_counts_as_expired(empty_database_url: str) -> None:
    url = empty_database_url
    config = Config()
    config.set_main_option(
        "script_location", str(Path(__file__).parents[2] / "cinegen" / "store" / "migrations")
    )
    engine = create_engine(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
        connection.execute(
            text(
                "INSERT INTO operations (id, model, dialect, state, progress, seed, request, "
                "samples, rai_filtered_count, rai_filtered_reasons, notes, resource_prefix, "
                "attempts, cancel_requested, create_time, update_time) VALUES ('old', 'm', "
                "'gemini', 'running', 50, 1, '{}', '[]', 0, '[]', '{}', '', 1, FALSE, "
                "'2026-12-01 00:00:00', '2026-12-01 00:00:00')"
            )
        )
    engine.dispose()
    db = Database(url)
    db.migrate()
    assert db.lease_of("old") == (None, None)
    assert [op.id for op in db.expired_leases(utcnow())] == ["old"]
