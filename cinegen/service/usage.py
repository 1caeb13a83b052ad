"""Usage metering: what each succeeded operation made, and the sums a key or an admin reads.

Only a succeeded operation is metered, as Veo bills only a video that was made: a failed or
cancelled one has no row (its engine time shows in the metrics, not on the bill). The row is
written with the operation's end, in the same transaction (store/db.py `finish_operation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from cinegen.core.catalog import EXTENSION_SECONDS, Catalog
from cinegen.core.errors import InvalidArgument
from cinegen.core.operation import Operation, Sample
from cinegen.core.pricing import veo_price
from cinegen.core.request import Mode
from cinegen.service.codec import request_from_json
from cinegen.store.db import USAGE_GROUPS, Database, utcnow

GROUPS = tuple(USAGE_GROUPS)
"""What `group_by` may name: key, model, mode, resolution, day."""

_SUMS = ("operations", "seconds", "samples", "engine_seconds", "veo_price_usd")


def usage_row(
    op: Operation, samples: Sequence[Sample], engine_seconds: float, catalog: Catalog
) -> dict[str, Any]:
    """The usage columns of a succeeded operation. Seconds are those the server made: the
    samples' lengths, less the input an extension keeps (Veo prices the new seconds)."""
    req = request_from_json(op.request)
    seconds = sum(s.duration_seconds or 0.0 for s in samples)
    if req.mode == Mode.EXTENSION:
        seconds = min(seconds, float(EXTENSION_SECONDS * len(samples)))
    resolution = req.resolution or "720p"
    audio = bool(req.generate_audio)
    price = veo_price(catalog.get(req.model), resolution, audio)
    return {
        "owner": op.owner,
        "model": req.model,
        "mode": req.mode.value,
        "resolution": resolution,
        "audio": audio,
        "seconds": round(seconds, 3),
        "samples": len(samples),
        "engine_seconds": round(engine_seconds, 3),
        "veo_price_per_second": price.per_second if price else None,
        "veo_price_usd": round(seconds * price.per_second, 6) if price else None,
    }


@dataclass(frozen=True)
class UsageQuery:
    """A checked usage question: [start, end) in UTC, the groups, whose rows."""

    start: datetime
    end: datetime
    group_by: tuple[str, ...]


def parse_query(start: str | None, end: str | None, group_by: str | None) -> UsageQuery:
    """`start`/`end` as RFC 3339 or YYYY-MM-DD (a date `end` includes that day); today UTC
    by default. `group_by`: comma-separated names of `GROUPS`. InvalidArgument otherwise."""
    today = utcnow().date()
    begin = _instant("start", start, end_of_day=False) if start else _midnight(today)
    finish = _instant("end", end, end_of_day=True) if end else _midnight(today + timedelta(1))
    if finish <= begin:
        raise InvalidArgument(
            f"Invalid value for `end`: {finish.isoformat()} is not after `start` "
            f"({begin.isoformat()})."
        )
    return UsageQuery(begin, finish, _groups(group_by))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _instant(name: str, value: str, *, end_of_day: bool) -> datetime:
    text = value.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return _midnight(day + timedelta(1) if end_of_day else day)
        moment = datetime.fromisoformat(text.replace("z", "Z"))
        if moment.tzinfo is not None:
            return moment.astimezone(UTC)
    except (ValueError, OverflowError):  # not a date; or past year 9999 once made UTC
        pass
    raise InvalidArgument(
        f"Invalid value for `{name}`: {value!r}. Use an RFC 3339 timestamp with a time "
        "zone (2026-01-31T08:00:00Z) or a date (2026-01-31)."
    )


def _groups(value: str | None) -> tuple[str, ...]:
    names = tuple(n.strip().lower() for n in (value or "").split(",") if n.strip())
    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        raise InvalidArgument(
            f"Invalid value for `group_by`: {unknown[0]!r}. Group by any of "
            f"{', '.join(GROUPS)}, comma-separated."
        )
    return tuple(dict.fromkeys(names))


def totals(db: Database, query: UsageQuery, *, owner: str | None, everyone: bool) -> dict[str, Any]:
    """The rows of `query` and their total, in plain Python types (the API renders them)."""
    rows = db.usage_totals(query.start, query.end, query.group_by, owner=owner, everyone=everyone)
    return {
        "start": query.start,
        "end": query.end,
        "group_by": query.group_by,
        "rows": [_rounded(r) for r in rows],
        "total": _rounded(_sum(rows)),
    }


def _sum(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    total: dict[str, Any] = {name: 0 for name in _SUMS}
    total["veo_price_usd"] = None
    for row in rows:
        for name in _SUMS:
            if row[name] is not None:
                total[name] = (total[name] or 0) + row[name]
    return total


def _rounded(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["operations"] = int(row["operations"])
    out["samples"] = int(row["samples"])
    out["seconds"] = round(float(row["seconds"]), 3)
    out["engine_seconds"] = round(float(row["engine_seconds"]), 3)
    price = row["veo_price_usd"]
    out["veo_price_usd"] = round(float(price), 6) if price is not None else None
    return out
