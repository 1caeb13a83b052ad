"""Usage metering on PostgreSQL (issue 25): tests/service/test_usage.py's tests that read and
write the database (the usage row written with the operation's end, the sums grouped by key,
model, day, the date filters) run again here, their `app` on a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.service.test_usage import (
    engine,
    test_a_failed_operation_is_not_metered,
    test_a_succeeded_operation_records_its_usage_in_one_row,
    test_an_admin_sees_every_key_grouped_and_as_csv,
    test_dates_filter_and_bad_ones_are_refused_in_googles_envelope,
    test_the_endpoint_sums_a_keys_own_usage_by_model,
)
from tests.support.app import InProcessServer, in_process
from tests.support.engines import ScriptedEngine

# Collected here too, on this module's `app` (PostgreSQL).
__all__ = [
    "engine",
    "test_a_failed_operation_is_not_metered",
    "test_a_succeeded_operation_records_its_usage_in_one_row",
    "test_an_admin_sees_every_key_grouped_and_as_csv",
    "test_dates_filter_and_bad_ones_are_refused_in_googles_envelope",
    "test_the_endpoint_sums_a_keys_own_usage_by_model",
]


@pytest.fixture
def app(tmp_path: Path, engine: ScriptedEngine, pg_url: str) -> Iterator[InProcessServer]:
    """test_usage.py's `app` (no worker threads, the test's engine) on PostgreSQL."""
    with in_process(
        tmp_path / "data", workers=0, engines={"preview": engine}, database_url=pg_url
    ) as server:
        yield server
