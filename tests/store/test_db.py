"""The hot-path reads (driver-level, see `PreparedRead`) agree with SQLAlchemy's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cinegen.core.operation import Operation, Sample, State
from cinegen.store.db import Database, FileRecord, files, operations


def _database(url: str) -> Database:
    db = Database(url)
    db.migrate()
    return db


def _operation(op_id: str) -> Operation:
    now = datetime(2026, 11, 21, 12, 30, 15, 123456, tzinfo=UTC)
    return Operation(
        id=op_id,
        model="veo-3.1-generate-preview",
        dialect="gemini",
        owner="k1",
        state=State.QUEUED,
        create_time=now,
        update_time=now,
        request={"prompt": "a fox in snow", "nested": {"list": [1, 2.5, None]}},
        seed=1234567890123,
        notes={"engine": "preview"},
    )


def test_operation_read_matches_sqlalchemy(database_url: str) -> None:
    db = _database(database_url)
    db.insert_operation(_operation("op1"))
    db.update_operation(
        "op1",
        samples=[Sample(file_id="f1", seed=7, size_bytes=10, duration_seconds=8.0)],
        rai_filtered_reasons=["reason"],
        progress=42.5,
    )
    fast = db.get_operation("op1")
    with db.engine.connect() as conn:
        row = conn.execute(operations.select().where(operations.c.id == "op1")).one()
    assert fast is not None
    assert (
        fast.request
        == row.request
        == {"prompt": "a fox in snow", "nested": {"list": [1, 2.5, None]}}
    )
    assert fast.samples == [Sample(file_id="f1", seed=7, size_bytes=10, duration_seconds=8.0)]
    assert fast.rai_filtered_reasons == ["reason"]
    assert fast.progress == 42.5 and fast.seed == 1234567890123
    assert fast.create_time == datetime(2026, 11, 21, 12, 30, 15, 123456, tzinfo=UTC)
    assert fast.update_time.tzinfo is not None and fast.update_time > fast.create_time
    assert db.get_operation("missing") is None


def test_reads_see_commits_from_another_connection(database_url: str) -> None:
    """A poller must never be stuck in an old read snapshot."""
    reader, writer = _database(database_url), _database(database_url)
    writer.insert_operation(_operation("op2"))
    assert reader.get_operation("op2").state == State.QUEUED  # type: ignore[union-attr]
    assert reader.cancel_requested("op2") is False
    writer.claim_operation("op2", "worker-1", 60)
    writer.request_cancel("op2")
    assert reader.get_operation("op2").state == State.RUNNING  # type: ignore[union-attr]
    assert reader.cancel_requested("op2") is True
    assert reader.cancel_requested("gone") is True  # a deleted operation stops its job


def test_file_and_key_reads(database_url: str) -> None:
    db = _database(database_url)
    created = datetime(2026, 11, 21, tzinfo=UTC)
    record = FileRecord(
        id="f9",
        operation_id="op9",
        owner=None,
        blob_key="ab/f9.mp4",
        mime_type="video/mp4",
        size_bytes=123,
        create_time=created,
        expire_time=created + timedelta(hours=48),
        deleted=False,
    )
    db.insert_file(record)
    assert db.get_file("f9") == record
    with db.engine.connect() as conn:
        assert conn.execute(files.select()).one().blob_key == "ab/f9.mp4"
    db.insert_key("kid", "hash-1", "laptop")
    assert db.key_by_hash("hash-1").id == "kid"  # type: ignore[union-attr]
    assert db.key_by_hash("hash-2") is None
