"""The webhook delivery outbox (`webhook_events`, `webhook_attempts`, migration 0008), as the
delivery loop and the deliveries route use it.

A due row is taken with one conditional UPDATE (`claim`): it moves `next_attempt_time` past
the attempt's own deadline, guarded by the value it read (on PostgreSQL: on rows locked FOR
UPDATE SKIP LOCKED), so two senders (threads or processes on one database) never take the
same row; a sender that dies mid-attempt leaves the
row to be taken again once that lease passes (at-least-once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, func, select, update

from cinegen.store.db import (
    Database,
    WebhookRecord,
    _aware,
    _webhook_from_row,
    utcnow,
    webhook_attempts,
    webhook_events,
    webhooks,
)

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
DISABLED_BY_FAILURES = "disabled_due_to_failed_deliveries"


@dataclass(frozen=True)
class Event:
    """One outbox row: an event for one target."""

    id: str
    msg_id: str
    owner: str | None
    webhook_id: str | None
    target_uri: str
    kind: str
    event_type: str
    payload: str
    operation_id: str | None
    state: str
    attempts: int
    next_attempt_time: datetime
    create_time: datetime
    update_time: datetime
    last_status: int | None
    last_error: str | None
    single_attempt: bool


def _event(row: Any) -> Event:
    m = row._mapping
    return Event(
        id=m["id"],
        msg_id=m["msg_id"],
        owner=m["owner"],
        webhook_id=m["webhook_id"],
        target_uri=m["target_uri"],
        kind=m["kind"],
        event_type=m["event_type"],
        payload=m["payload"],
        operation_id=m["operation_id"],
        state=m["state"],
        attempts=int(m["attempts"]),
        next_attempt_time=_aware(m["next_attempt_time"]),
        create_time=_aware(m["create_time"]),
        update_time=_aware(m["update_time"]),
        last_status=m["last_status"],
        last_error=m["last_error"],
        single_attempt=bool(m["single_attempt"]),
    )


def _owned_by(column: Any, owner: str | None) -> Any:
    return column.is_(None) if owner is None else column == str(owner)


class Outbox:
    def __init__(self, db: Database) -> None:
        self.db = db

    # the loop ---------------------------------------------------------------------------

    def claim(self, now: datetime, lease_seconds: float, limit: int) -> list[Event]:
        """Up to `limit` due rows, each taken by a conditional UPDATE that only one sender
        can win; the rows as taken (attempts counts this one)."""
        e = webhook_events.c
        due = (
            select(e.id, e.next_attempt_time)
            .where(e.state == PENDING, e.next_attempt_time <= now)
            .order_by(e.next_attempt_time)
            .limit(limit)
        )
        until = now + timedelta(seconds=lease_seconds)
        if self.db.engine.dialect.name == "postgresql":
            taken = self._claim_skip_locked(due, now, until)
        else:
            taken = self._claim_each(due, now, until)
        if not taken:
            return []
        with self.db._read() as conn:
            rows = conn.execute(select(webhook_events).where(e.id.in_(taken)))
            return [_event(r) for r in rows]

    def _claim_skip_locked(self, due: Select, now: datetime, until: datetime) -> list[str]:
        """PostgreSQL: the due rows no other sender holds, locked (FOR UPDATE SKIP LOCKED)
        and moved past the lease in one transaction: concurrent senders take disjoint rows
        and never wait on each other."""
        e = webhook_events.c
        with self.db._write() as conn:
            taken = [row.id for row in conn.execute(due.with_for_update(skip_locked=True))]
            if taken:
                conn.execute(
                    update(webhook_events)
                    .where(e.id.in_(taken))
                    .values(next_attempt_time=until, attempts=e.attempts + 1, update_time=now)
                )
        return taken

    def _claim_each(self, due: Select, now: datetime, until: datetime) -> list[str]:
        """Elsewhere (SQLite): each due row by an UPDATE guarded by the time it was read."""
        e = webhook_events.c
        with self.db._read() as conn:
            candidates = list(conn.execute(due))
        taken: list[str] = []
        for candidate in candidates:
            with self.db._write() as conn:
                result = conn.execute(
                    update(webhook_events)
                    .where(
                        e.id == candidate.id,
                        e.state == PENDING,
                        e.next_attempt_time == candidate.next_attempt_time,
                    )
                    .values(next_attempt_time=until, attempts=e.attempts + 1, update_time=now)
                )
            if result.rowcount == 1:
                taken.append(candidate.id)
        return taken

    def record(
        self,
        event: Event,
        *,
        attempt_time: datetime,
        status: int | None,
        error: str | None,
        duration_ms: int,
        next_time: datetime | None,
        delivered: bool,
    ) -> None:
        """Write one attempt and the row's new state: delivered, pending until `next_time`,
        or failed (`next_time` None)."""
        state = DELIVERED if delivered else (PENDING if next_time is not None else FAILED)
        now = utcnow()
        with self.db._write() as conn:
            conn.execute(
                webhook_attempts.insert().values(
                    event_id=event.id,
                    attempt_time=attempt_time,
                    status=status,
                    error=error,
                    duration_ms=duration_ms,
                )
            )
            conn.execute(
                update(webhook_events)
                .where(webhook_events.c.id == event.id)
                .values(
                    state=state,
                    next_attempt_time=next_time or now,
                    last_status=status,
                    last_error=error,
                    update_time=now,
                )
            )

    def drop(self, event: Event, reason: str) -> None:
        """Give up an event without sending it (its webhook is gone or disabled)."""
        with self.db._write() as conn:
            conn.execute(
                update(webhook_events)
                .where(webhook_events.c.id == event.id)
                .values(state=FAILED, last_error=reason, update_time=utcnow())
            )

    def webhook(self, webhook_id: str) -> WebhookRecord | None:
        """The webhook of a static event (state, uri, secrets), whoever owns it, or None."""
        with self.db._read() as conn:
            row = conn.execute(select(webhooks).where(webhooks.c.id == webhook_id)).first()
        return _webhook_from_row(row) if row is not None else None

    def delivered_since(self, webhook_id: str, since: datetime) -> bool:
        """Whether the webhook took any delivery at or after `since` (§4.5)."""
        e = webhook_events.c
        query = select(func.count()).where(
            e.webhook_id == webhook_id, e.state == DELIVERED, e.update_time >= since
        )
        with self.db._read() as conn:
            return int(conn.execute(query).scalar_one()) > 0

    def disable(self, webhook_id: str, reason: str) -> bool:
        """§4.5: `disabled_due_to_failed_deliveries`, and its queued deliveries dropped; False
        if it was no longer enabled."""
        now = utcnow()
        with self.db._write() as conn:
            result = conn.execute(
                update(webhooks)
                .where(webhooks.c.id == webhook_id, webhooks.c.state == "enabled")
                .values(state=DISABLED_BY_FAILURES, update_time=now)
            )
            if result.rowcount != 1:
                return False
            conn.execute(
                update(webhook_events)
                .where(
                    webhook_events.c.webhook_id == webhook_id,
                    webhook_events.c.state == PENDING,
                )
                .values(state=FAILED, last_error=reason, update_time=now)
            )
            return True

    # the deliveries route ---------------------------------------------------------------

    def owns_webhook(self, webhook_id: str, owner: str | None) -> bool:
        query = select(webhooks.c.id).where(
            webhooks.c.id == webhook_id, _owned_by(webhooks.c.owner, owner)
        )
        with self.db._read() as conn:
            return conn.execute(query).first() is not None

    def events_page(
        self, webhook_id: str, after: tuple[datetime, str] | None, limit: int
    ) -> list[Event]:
        """A webhook's events, newest first (create_time, id), after the given one."""
        e = webhook_events.c
        query = select(webhook_events).where(e.webhook_id == webhook_id)
        if after is not None:
            time, last = after
            query = query.where((e.create_time < time) | ((e.create_time == time) & (e.id < last)))
        query = query.order_by(e.create_time.desc(), e.id.desc()).limit(limit)
        with self.db._read() as conn:
            return [_event(r) for r in conn.execute(query)]

    def operation_events(self, operation_id: str, limit: int) -> list[Event]:
        """An operation's events (one per target), newest first."""
        e = webhook_events.c
        query = (
            select(webhook_events)
            .where(e.operation_id == operation_id)
            .order_by(e.create_time.desc(), e.id.desc())
            .limit(limit)
        )
        with self.db._read() as conn:
            return [_event(r) for r in conn.execute(query)]

    def attempts_of(self, event_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Every attempt of these events, oldest first, by event id."""
        if not event_ids:
            return {}
        a = webhook_attempts.c
        query = (
            select(webhook_attempts)
            .where(a.event_id.in_(list(event_ids)))
            .order_by(a.attempt_time, a.id)
        )
        found: dict[str, list[dict[str, Any]]] = {i: [] for i in event_ids}
        with self.db._read() as conn:
            for row in conn.execute(query):
                item = dict(row._mapping)
                item["attempt_time"] = _aware(item["attempt_time"])
                found[row.event_id].append(item)
        return found

    def get_event(self, webhook_id: str, event_id: str) -> Event | None:
        e = webhook_events.c
        query = select(webhook_events).where(e.id == event_id, e.webhook_id == webhook_id)
        with self.db._read() as conn:
            row = conn.execute(query).first()
        return _event(row) if row is not None else None

    def resend(self, event_id: str, now: datetime) -> bool:
        """Queue an event again, due now, with a fresh schedule (same `msg_id` and body)."""
        e = webhook_events.c
        with self.db._write() as conn:
            result = conn.execute(
                update(webhook_events)
                .where(e.id == event_id)
                .values(
                    state=PENDING,
                    attempts=0,
                    next_attempt_time=now,
                    update_time=now,
                    last_error=None,
                    last_status=None,
                )
            )
            return result.rowcount == 1
