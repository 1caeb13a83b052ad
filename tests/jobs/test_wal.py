"""SQLite's WAL stays small (issue 31 item 10): every connection caps what a checkpoint
leaves of it (`journal_size_limit`), and the queue's watchdog truncates it every
`checkpoint_interval` (`Database.checkpoint`), which SQLite's own passive checkpoints do not."""

from __future__ import annotations

import time
from pathlib import Path

from cinegen.jobs.queue import InProcessQueue
from cinegen.store.db import WAL_SIZE_LIMIT, Database
from tests.support.app import InProcessServer, job_context

WRITES = 300


def _write_a_lot(db: Database) -> None:
    """Writes that leave WAL frames behind: each key row goes through the log."""
    for index in range(WRITES):
        db.insert_key(f"k{index}", f"{index:0128d}", "x" * 100)


def _wal(app: InProcessServer) -> Path:
    return Path(app.db.url.removeprefix("sqlite:///") + "-wal")


def test_every_connection_caps_the_wal_a_checkpoint_leaves(app: InProcessServer) -> None:
    with app.db.engine.connect() as conn:
        limit = conn.exec_driver_sql("PRAGMA journal_size_limit").scalar_one()
    assert limit == WAL_SIZE_LIMIT


def test_a_checkpoint_truncates_the_wal(app: InProcessServer) -> None:
    _write_a_lot(app.db)
    assert _wal(app).stat().st_size > 0
    assert app.db.checkpoint() is True
    assert _wal(app).stat().st_size == 0
    assert app.db.count_keys() == WRITES  # nothing lost: the frames are in the database


def test_the_queues_watchdog_checkpoints_the_wal(app: InProcessServer) -> None:
    queue = InProcessQueue(workers=1, max_attempts=1, poll_interval=0.02, checkpoint_interval=0.05)
    _write_a_lot(app.db)
    assert _wal(app).stat().st_size > 0
    queue.start(job_context(app.app))
    try:
        deadline = time.monotonic() + 30
        while _wal(app).stat().st_size > 0 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        queue.stop()
    assert _wal(app).stat().st_size == 0
