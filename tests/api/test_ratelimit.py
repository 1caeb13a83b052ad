"""The per-minute counters shared through the database (api/ratelimit.py), with two limiters
on one database standing for two processes, and a clock the test sets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from cinegen.api.ratelimit import RateLimiter
from cinegen.store.db import Database

T = 29_000_000 * 60 + 1.0  # one second into a minute


class CountingDatabase(Database):
    """The database, counting the upserts the limiters make."""

    upserts = 0

    def count_request(self, *args: Any, **kwargs: Any) -> int:
        self.upserts += 1
        return super().count_request(*args, **kwargs)


@pytest.fixture
def db(tmp_path: Path) -> CountingDatabase:
    database = CountingDatabase(f"sqlite:///{tmp_path / 'rates.db'}")
    database.migrate()
    return database


def allowed(limiter: RateLimiter, count: int, now: float, limit: int, owner: str = "k") -> int:
    return sum(not limiter.over(owner, "polls", limit, now) for _ in range(count))


def test_a_small_limit_is_exact_across_processes(db: CountingDatabase) -> None:
    a, b = RateLimiter(db), RateLimiter(db)
    assert allowed(a, 2, T, limit=3) == 2
    assert allowed(b, 5, T, limit=3) == 1  # b sees a's two at once
    assert allowed(a, 1, T, limit=3) == 0
    assert allowed(a, 1, T + 60, limit=3) == 1  # a new minute
    assert allowed(a, 1, T, limit=3, owner="other") == 1  # keys apart


def test_a_generous_limit_writes_once_a_second_and_is_exact_near_the_limit(
    db: CountingDatabase,
) -> None:
    a, b = RateLimiter(db), RateLimiter(db)
    assert allowed(a, 100, T, limit=200) == 100
    assert db.upserts == 1  # the first request; the other 99 wait for the next second
    assert allowed(a, 1, T + 1.5, limit=200) == 1  # a second on: a adds its 100
    assert db.upserts == 2
    # b sees a's 101 at its first request, and near the limit counts each one in the database.
    assert allowed(b, 150, T + 1.5, limit=200) == 99
    # a, far from the limit by its last sync, lets one through in the second it has not
    # synced (the lag between processes), then sees the others' count at the next sync.
    assert allowed(a, 1, T + 1.6, limit=200) == 1
    assert allowed(a, 5, T + 2.7, limit=200) == 0
    # Refusals a process already knows of cost no write.
    writes = db.upserts
    assert allowed(b, 50, T + 3, limit=200) == 0
    assert db.upserts == writes


def test_old_minutes_are_dropped(db: CountingDatabase) -> None:
    limiter = RateLimiter(db)
    allowed(limiter, 1, T, limit=3)
    allowed(limiter, 1, T + 180, limit=3)
    assert db.count_request("k", "polls", int(T // 60), 0) == 0  # gone, made anew at 0
    assert db.count_request("k", "polls", int((T + 180) // 60), 0) == 1
