"""Webhook events of finished operations: what is sent, to whom (spec gemini-webhooks.md §3,
§4.2, §5.2, §7 #7/#8/#13/#16), and the retry schedule (§4.4).

The rows are built here and written by the database in the transaction that ends the
operation (`Database.finish_operation` calls `rows`), so an event exists exactly when its
operation ended, whatever the process does next; the delivery loop (jobs/webhooks.py) sends
them. `enqueued` wakes that loop in this process; other processes find the rows by polling.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import secrets
import string
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cinegen.core.errors import InvalidArgument, NotFound, RpcCode
from cinegen.core.operation import Operation, State
from cinegen.settings import Settings
from cinegen.store.db import Database, WebhookRecord, utcnow
from cinegen.store.outbox import Event, Outbox

log = logging.getLogger("cinegen.webhooks")

VIDEO_GENERATED = "video.generated"
PING = "webhook.ping"
ENVELOPE_VERSION = "v1"
STATIC = "static"
DYNAMIC = "dynamic"
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
# §4.4: cumulative offsets from the first attempt; ±10 % jitter; then give up.
RETRY_SCHEDULE_SECONDS = (0, 5, 60, 300, 1800, 7200, 18000, 36000, 57600, 86400)
JITTER = 0.10
_BASE62 = string.ascii_letters + string.digits
_FILES_VERSION = "v1beta"


def new_msg_id() -> str:
    """`msg_` + 27 base62 characters (§7 #16): stable across retries, no `.`."""
    return "msg_" + "".join(secrets.choice(_BASE62) for _ in range(27))


def new_event_id() -> str:
    return secrets.token_hex(16)


def rfc3339(moment: datetime) -> str:
    """UTC, millisecond precision, `Z`."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def operation_event_id(op: Operation) -> str:
    """`data.id`: the name the operation's own dialect handed out (§7 #8), so a receiver can
    poll it there: Gemini's resource name, Vertex's, or the `/v1/videos` id (base64url of the
    Gemini name, as api/videos/translate.py does)."""
    gemini = f"models/{op.model}/operations/{op.id}"
    if op.dialect == "vertex":
        return f"{op.resource_prefix}publishers/google/models/{op.model}/operations/{op.id}"
    if op.dialect in ("videos", "openai"):
        return base64.urlsafe_b64encode(gemini.encode()).decode().rstrip("=")
    return gemini


def public_base(settings: Settings) -> str:
    """Where the server's files are downloaded from, with no request at hand."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    return f"http://{host}:{settings.port}"


def _status_word(code: int | None) -> str:
    try:
        return RpcCode(code).name if code is not None else RpcCode.UNKNOWN.name
    except ValueError:
        return str(code)


def video_data(op: Operation, settings: Settings) -> dict[str, Any]:
    """§7 #7/#8: the output's pointers on success; the canonical error otherwise."""
    data: dict[str, Any] = {"id": operation_event_id(op)}
    if op.state == State.SUCCEEDED and op.samples:
        base = public_base(settings)
        uris = [f"{base}/{_FILES_VERSION}/files/{s.file_id}:download?alt=media" for s in op.samples]
        data["output_file_uri"] = uris[0]
        data["file_name"] = f"files/{op.samples[0].file_id}"
        if len(uris) > 1:
            data["output_file_uris"] = uris
    elif op.state != State.SUCCEEDED:
        code = RpcCode.CANCELLED if op.state == State.CANCELLED else op.error_code
        data["error_code"] = _status_word(code)
        data["error_message"] = op.error_message or ""
    return data


def envelope(
    event_type: str,
    data: dict[str, Any],
    occurred: datetime,
    user_metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """§4.2; `user_metadata` top level and mirrored into `data` (§7 #13), only when given."""
    body: dict[str, Any] = {
        "type": event_type,
        "version": ENVELOPE_VERSION,
        "timestamp": rfc3339(occurred),
        "data": dict(data),
    }
    if user_metadata:
        body["data"]["user_metadata"] = user_metadata
        body["user_metadata"] = user_metadata
    return body


def compact(value: Any) -> str:
    """The exact text that is signed and sent."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def event_row(
    *,
    msg_id: str,
    owner: str | None,
    kind: str,
    target_uri: str,
    body: dict[str, Any],
    now: datetime,
    webhook_id: str | None = None,
    operation_id: str | None = None,
    single_attempt: bool = False,
) -> dict[str, Any]:
    """A `webhook_events` row, due now."""
    metadata = body.get("user_metadata")
    return {
        "id": new_event_id(),
        "msg_id": msg_id,
        "owner": owner,
        "webhook_id": webhook_id,
        "target_uri": target_uri,
        "kind": kind,
        "event_type": body["type"],
        "payload": compact(body),
        "user_metadata": compact(metadata) if metadata is not None else None,
        "operation_id": operation_id,
        "state": PENDING,
        "attempts": 0,
        "next_attempt_time": now,
        "create_time": now,
        "update_time": now,
        "last_status": None,
        "last_error": None,
        "single_attempt": single_attempt,
    }


def _webhook_config(op: Operation) -> tuple[tuple[str, ...], dict[str, Any] | None]:
    hook = op.request.get("webhook") if isinstance(op.request, dict) else None
    if not isinstance(hook, dict):
        return (), None
    uris = tuple(u for u in hook.get("uris") or () if isinstance(u, str) and u)
    metadata = hook.get("user_metadata")
    return uris, metadata if isinstance(metadata, dict) and metadata else None


class Deliveries:
    """Builds the event rows of a finished operation, and wakes this process's sender."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.wake = threading.Event()

    def rows(
        self, op: Operation, webhooks: Sequence[WebhookRecord], now: datetime
    ) -> list[dict[str, Any]]:
        """§5.2: the request's `webhookConfig.uris` (dynamic, JWT) if any, else every
        enabled static webhook of the owner subscribed to `video.generated` (HMAC). One
        `msg_id` for all targets of the event."""
        if not op.state.done:
            return []
        try:
            return self._rows(op, webhooks, now)
        except Exception:  # never let an event keep the operation from ending
            log.exception("operation %s: building its webhook events failed", op.id)
            return []

    def _rows(
        self, op: Operation, webhooks: Sequence[WebhookRecord], now: datetime
    ) -> list[dict[str, Any]]:
        uris, metadata = _webhook_config(op)
        body = envelope(VIDEO_GENERATED, video_data(op, self.settings), now, metadata)
        msg_id = new_msg_id()
        common: dict[str, Any] = {"msg_id": msg_id, "owner": op.owner, "body": body, "now": now}
        if uris:
            return [
                event_row(kind=DYNAMIC, target_uri=uri, operation_id=op.id, **common)
                for uri in dict.fromkeys(uris)
            ]
        return [
            event_row(kind=STATIC, target_uri=t.uri, webhook_id=t.id, operation_id=op.id, **common)
            for t in webhooks
            if VIDEO_GENERATED in t.subscribed_events
        ]

    def enqueued(self) -> None:
        """Rows were committed: the sender of this process looks at once."""
        self.wake.set()


def next_attempt(attempts: int, now: datetime, scale: float = 1.0) -> datetime | None:
    """When to try again after the `attempts`-th try failed at `now`: the gap between two
    steps of the §4.4 schedule, jittered ±10 % and shrunk by `scale` (tests); None once the
    schedule (24 h) is spent."""
    if attempts < 1 or attempts >= len(RETRY_SCHEDULE_SECONDS):
        return None
    gap = RETRY_SCHEDULE_SECONDS[attempts] - RETRY_SCHEDULE_SECONDS[attempts - 1]
    return now + timedelta(seconds=gap * scale * (1 + random.uniform(-JITTER, JITTER)))


# the deliveries listing and resend (api/webhook_deliveries.py) ------------------------------

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_OPERATION_DELIVERIES = 100  # one per target: a request names a few uris at most


def _encode_token(event: Event) -> str:
    raw = f"{event.create_time.isoformat()}|{event.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        moment, event_id = raw.split("|", 1)
        return datetime.fromisoformat(moment), event_id
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"Invalid page_token {token!r}.") from exc


def render_delivery(event: Event, attempts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One delivery (an event to one webhook) and its attempts, snake_case."""
    out: dict[str, Any] = {
        "id": event.id,
        "webhook_id": event.webhook_id,
        "message_id": event.msg_id,
        "event_type": event.event_type,
        "state": event.state,
        "attempt_count": event.attempts,
        "create_time": rfc3339(event.create_time),
        "update_time": rfc3339(event.update_time),
    }
    if event.operation_id:
        out["operation_id"] = event.operation_id
    if event.state == PENDING:
        out["next_attempt_time"] = rfc3339(event.next_attempt_time)
    if event.last_status is not None:
        out["last_status"] = event.last_status
    if event.last_error:
        out["last_error"] = event.last_error
    out["attempts"] = [
        {
            "attempt_time": rfc3339(a["attempt_time"]),
            "duration_ms": a["duration_ms"],
            **({"status": a["status"]} if a["status"] is not None else {}),
            **({"error": a["error"]} if a["error"] else {}),
        }
        for a in attempts
    ]
    return out


def target_host(uri: str) -> str:
    """`host[:port]` of a target, never its userinfo, path or query (they may hold secrets)."""
    try:
        parts = urlsplit(uri)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        return ""
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port}" if port else host


class DeliveryService:
    """A webhook's deliveries, owner-scoped: list (newest first, paged) and resend."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.outbox = Outbox(db)

    def _check(self, owner: str | None, webhook_id: str) -> None:
        if not self.outbox.owns_webhook(webhook_id, owner):
            raise NotFound(f"Webhook {webhook_id} not found.")

    def page(
        self, owner: str | None, webhook_id: str, page_size: int | None, page_token: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        if page_size is not None and page_size < 0:
            raise InvalidArgument("page_size must not be negative.")
        self._check(owner, webhook_id)
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = _decode_token(page_token) if page_token else None
        events = self.outbox.events_page(webhook_id, after, size + 1)
        more = len(events) > size
        events = events[:size]
        attempts = self.outbox.attempts_of([e.id for e in events])
        rendered = [render_delivery(e, attempts[e.id]) for e in events]
        return rendered, _encode_token(events[-1]) if more else None

    def of_operation(self, operation_id: str) -> list[dict[str, Any]]:
        """An operation's deliveries (the caller checked that it may see the operation),
        each with its target's host: a dynamic target is no webhook the owner could list."""
        events = self.outbox.operation_events(operation_id, MAX_OPERATION_DELIVERIES)
        attempts = self.outbox.attempts_of([e.id for e in events])
        return [
            {**render_delivery(e, attempts[e.id]), "target_host": target_host(e.target_uri)}
            for e in events
        ]

    def resend(self, owner: str | None, webhook_id: str, delivery_id: str) -> dict[str, Any]:
        """Queue a delivery again, due now: same `webhook-id` and body, a fresh schedule."""
        self._check(owner, webhook_id)
        if self.outbox.get_event(webhook_id, delivery_id) is None:
            raise NotFound(f"Delivery {delivery_id} of webhook {webhook_id} not found.")
        self.outbox.resend(delivery_id, utcnow())
        if self.db.finish_events is not None:
            self.db.finish_events.enqueued()
        event = self.outbox.get_event(webhook_id, delivery_id)
        if event is None:  # its webhook was deleted meanwhile
            raise NotFound(f"Delivery {delivery_id} of webhook {webhook_id} not found.")
        return render_delivery(event, self.outbox.attempts_of([event.id])[event.id])
