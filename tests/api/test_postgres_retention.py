"""Retention on PostgreSQL (issue 25): tests/service/test_retention.py's tests (expired files
found by time, swept, answered 404; an extension input's file touched) run again here, their
`app` on a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.test_retention import (
    RETENTION_HOURS,
    Clock,
    clock,
    test_expired_videos_answer_404_and_leave_the_disk,
    test_extension_input_restarts_its_retention_clock,
)
from tests.support.app import InProcessServer, in_process

# Collected here too, on this module's `app` (PostgreSQL).
__all__ = [
    "clock",
    "test_expired_videos_answer_404_and_leave_the_disk",
    "test_extension_input_restarts_its_retention_clock",
]


@pytest.fixture
def app(tmp_path: Path, clock: Clock, pg_url: str) -> Iterator[InProcessServer]:
    """test_retention.py's `app` (jobs run when the test says, a 50 ms sweeper) on PostgreSQL."""
    with in_process(
        tmp_path / "data",
        workers=0,
        retention_hours=RETENTION_HOURS,
        sweep_interval_seconds=0.05,
        database_url=pg_url,
    ) as server:
        yield server
