"""A key's limits and its usage today: what `submit` checks, and what `keys list` shows.

A key's own limit wins; a limit it leaves unset (None) is the server's (settings); 0 is no
limit. Seconds of video are counted as asked for: `durationSeconds` × `sampleCount` (an
extension adds 7 s a sample), over the operations the key created today (UTC) that did not
fail and were not cancelled, so a refused or failed request costs nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from cinegen.core.operation import State
from cinegen.settings import Settings
from cinegen.store.db import Database, KeyRecord, utcnow

EXTENSION_SECONDS = 7  # what Veo adds to a video it extends
DEFAULT_DURATION = 8
_NOT_COUNTED = (State.FAILED.value, State.CANCELLED.value)
CONCURRENT_RETRY_AFTER = 5  # seconds: a job may finish any time; ask again soon


@dataclass(frozen=True)
class Limits:
    """The limits in force for one key (0: none)."""

    max_concurrent: int
    video_seconds_per_day: int
    requests_per_minute: int


@dataclass(frozen=True)
class Usage:
    operations: int = 0
    video_seconds: int = 0


def limits_of(key: KeyRecord | None, settings: Settings) -> Limits:
    """`key`'s own limits, the server's where it has none (None: no key, the open server)."""

    def pick(name: str, default: int) -> int:
        own = None if key is None else getattr(key, name)
        return default if own is None else int(own)

    return Limits(
        max_concurrent=pick("max_concurrent", settings.max_queued_per_key),
        video_seconds_per_day=pick("video_seconds_per_day", settings.video_seconds_per_day),
        requests_per_minute=pick("requests_per_minute", settings.requests_per_minute),
    )


def requested_seconds(request: Mapping[str, Any]) -> int:
    """Seconds of video a stored request (service/codec JSON) asks for, all samples."""
    extension = request.get("video") is not None and request.get("mask") is None
    per_sample = EXTENSION_SECONDS if extension else request.get("duration_seconds")
    return int(per_sample or DEFAULT_DURATION) * int(request.get("sample_count") or 1)


def start_of_day(now: datetime | None = None) -> datetime:
    """Midnight UTC of `now`'s day: where "today" begins for the daily budget."""
    now = now or utcnow()
    return datetime.combine(now.date(), time(0), tzinfo=now.tzinfo)


def seconds_to_midnight(now: datetime | None = None) -> int:
    now = now or utcnow()
    return int((start_of_day(now) + timedelta(days=1) - now).total_seconds()) + 1


def _tally(rows: Iterable[Any]) -> dict[str | None, Usage]:
    usage: dict[str | None, Usage] = {}
    for row in rows:
        if row.state in _NOT_COUNTED:
            continue
        seen = usage.get(row.owner, Usage())
        usage[row.owner] = Usage(
            seen.operations + 1, seen.video_seconds + requested_seconds(row.request)
        )
    return usage


def usage_today(db: Database, owner: str | None, now: datetime | None = None) -> Usage:
    """One key's operations and seconds of video asked for today (UTC)."""
    rows = db.operations_since(start_of_day(now), owner=owner)
    return _tally(rows).get(owner, Usage())


def usage_today_by_key(db: Database, now: datetime | None = None) -> dict[str | None, Usage]:
    """Every key's usage today, by key id (None: the anonymous owner)."""
    return _tally(db.operations_since(start_of_day(now), everyone=True))
