"""Requests per key and minute, counted in the database so that every process and node of a
deployment shares one count (`store.db.rate_counts`), at a cost a poll can bear.

Each process counts in memory and adds its count to the shared row (one upsert): at every
request while the limit is small (≤ `EXACT_UP_TO`) or the count is near it (≥ 90 %), else
at most once every `SYNC_SECONDS`. So one process is exact, several see each other's
requests within a second while far from the limit and at once near it; a client polling
every second costs one write a second, not one a poll. A request over a limit this process
already knows of is refused without touching the database.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from cinegen.store.db import Database

EXACT_UP_TO = 100
NEAR = 0.9
SYNC_SECONDS = 1.0


@dataclass
class _Window:
    minute: int
    shared: int = 0  # the database's count at the last sync (every process's)
    pending: int = 0  # this process's requests since then
    synced: float = float("-inf")


class RateLimiter:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, str], _Window] = {}
        self._swept_minute = 0

    def over(self, owner: str, kind: str, limit: int, now: float) -> bool:
        """Count one request of `owner` (`kind`: requests, polls) at unix time `now`; True
        if it is over `limit` for its minute."""
        minute = int(now // 60)
        with self._lock:
            window = self._windows.get((owner, kind))
            if window is None or window.minute != minute:
                window = self._windows[(owner, kind)] = _Window(minute)
            window.pending += 1
            total = window.shared + window.pending
            if total > limit:
                return True
            due = limit <= EXACT_UP_TO or total >= NEAR * limit
            if not due and now - window.synced < SYNC_SECONDS:
                return False
            added, window.pending, window.synced = window.pending, 0, now
        self._sweep(minute)
        shared = self.db.count_request(owner, kind, minute, added)
        with self._lock:
            window.shared = max(window.shared, shared)
            return window.shared + window.pending > limit

    def _sweep(self, minute: int) -> None:
        """Once a minute per process, drop the counters of minutes gone by."""
        if minute != self._swept_minute:
            self._swept_minute = minute
            self.db.forget_counts_before(minute - 1)
