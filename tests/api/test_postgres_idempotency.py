"""Idempotency keys on PostgreSQL (issue 25): the tests of tests/api/test_idempotency.py
that depend on the database (one stored key per owner, a concurrent insert losing to another,
a deleted operation freeing its key) run again here on a fresh PostgreSQL database each."""

from __future__ import annotations

import pytest

from tests.api.test_idempotency import (
    client,
    test_a_deleted_operation_frees_its_key,
    test_a_refused_create_stores_no_key,
    test_concurrent_creates_with_one_key_are_one_operation,
    test_keys_are_per_api_key,
    test_same_key_other_body_is_refused,
    test_same_key_twice_is_one_operation,
    test_the_replayed_operation_is_the_first_one,
    test_videos_create_replays_the_first_video,
)

# Collected here too, with tests/conftest.py's `fresh_app` on PostgreSQL (`pytestmark`).
__all__ = [
    "client",
    "test_a_deleted_operation_frees_its_key",
    "test_a_refused_create_stores_no_key",
    "test_concurrent_creates_with_one_key_are_one_operation",
    "test_keys_are_per_api_key",
    "test_same_key_other_body_is_refused",
    "test_same_key_twice_is_one_operation",
    "test_the_replayed_operation_is_the_first_one",
    "test_videos_create_replays_the_first_video",
]

pytestmark = pytest.mark.parametrize("fresh_app", ["postgresql"], indirect=True)
