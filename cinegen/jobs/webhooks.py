"""The webhook delivery loop: sends the outbox's due rows (store/outbox.py), at least once.

One thread per process claims due rows with a conditional UPDATE (never two senders on one
row, also across processes) and hands each to a small pool of sender threads. Each attempt
gets a fresh `webhook-timestamp` and signature (spec gemini-webhooks.md §4.1, §4.3, §5.3): the
Standard Webhooks HMAC with every unexpired secret of a static webhook, or an RS256 JWT for a
per-request (dynamic) target. A 2xx answer within `webhook_timeout_seconds` is a success;
redirects are not followed (a 3xx is a failure, its target never contacted). Failures are
tried again on the §4.4 schedule; a static webhook whose event exhausts it with no success
since is disabled (§4.5), at once on 410 Gone.

Targets pass the image fetcher's guard (media/fetch.py): the host is resolved once, every
address must be public, and the connection goes to exactly that address; plain http only for
the hosts of `CINEGEN_FETCH_ALLOW_HOSTS`, which lift both checks. A refused target is logged
and never connected to.
"""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from cinegen.core import metrics
from cinegen.media.fetch import FetchError, FetchPolicy, TargetRefused, post_guarded, post_policy
from cinegen.service.deliveries import STATIC, next_attempt
from cinegen.service.webhook_crypto import jwt_signer, secret_box, sign_standard
from cinegen.service.webhooks import current_secrets
from cinegen.settings import Settings
from cinegen.store.db import Database, utcnow
from cinegen.store.outbox import Event, Outbox

log = logging.getLogger("cinegen.webhooks")

USER_AGENT = "Gemini-Webhooks/1.0 (compatible; cinegen)"
LEASE_MARGIN_SECONDS = 5.0  # a claimed row waits this much past the attempt's timeout
_MAX_RESPONSE_BYTES = 64 * 1024  # read (and dropped) of an answer, to end it cleanly
_RETRY_AFTER_STATUSES = (429, 503)
_MAX_RETRY_AFTER = 3600.0


class Refused(FetchError):
    """The target may not be contacted (a private address, plain http): nothing was sent."""


@dataclass(frozen=True)
class Answer:
    status: int
    retry_after: float | None = None


def webhook_policy(settings: Settings) -> FetchPolicy:
    """The guard of a delivery: public addresses, pinned, the delivery timeout."""
    return post_policy(settings.fetch_allow_hosts, settings.webhook_timeout_seconds)


def _retry_after(value: str | None) -> float | None:
    if value is None or not value.strip().isdigit():
        return None
    return min(float(value.strip()), _MAX_RETRY_AFTER)


def post(url: str, body: bytes, headers: dict[str, str], policy: FetchPolicy) -> Answer:
    """POST `body` to `url` under `policy`, once, no redirects followed; the status, or
    `Refused` (nothing connected) / `FetchError` (no answer)."""
    sent = {"User-Agent": USER_AGENT, "Content-Type": "application/json", **headers}
    try:
        answer = post_guarded(url, body, sent, policy, read_limit=_MAX_RESPONSE_BYTES)
    except TargetRefused as exc:
        raise Refused(exc.reason) from exc
    return Answer(answer.status, _retry_after(answer.headers.get("Retry-After")))


def _host(uri: str) -> str:
    """What the log says of a target: no path or query, which may carry tokens."""
    try:
        return urlsplit(uri).netloc or "?"
    except ValueError:
        return "?"


class DeliveryLoop:
    """The sender of one process: `start()` in the app's lifespan, `stop()` at its end."""

    def __init__(self, db: Database, settings: Settings, wake: threading.Event | None = None):
        self.outbox = Outbox(db)
        self.settings = settings
        self.policy = webhook_policy(settings)
        self.wake = wake or threading.Event()
        self._stop = threading.Event()
        self._senders = max(1, settings.webhook_senders)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._senders, thread_name_prefix="webhook-send"
        )
        self._busy = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # the loop ---------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="webhook-loop", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.wake.clear()
            try:
                claimed = self.pass_once()
            except Exception:
                log.exception("webhook delivery loop: claiming due deliveries failed")
                claimed = 0
            if not claimed:
                self.wake.wait(self.settings.webhook_poll_seconds)

    def pass_once(self) -> int:
        """Claim as many due rows as there are idle senders and hand them over."""
        with self._lock:
            free = self._senders - self._busy
        if free <= 0:
            return 0
        lease = self.settings.webhook_timeout_seconds + LEASE_MARGIN_SECONDS
        events = self.outbox.claim(utcnow(), lease, free)
        for event in events:
            with self._lock:
                self._busy += 1
            self._pool.submit(self._send_guarded, event)
        return len(events)

    def _send_guarded(self, event: Event) -> None:
        try:
            self.deliver(event)
        except Exception:
            log.exception("webhook delivery %s failed unexpectedly", event.id)
        finally:
            with self._lock:
                self._busy -= 1
            self.wake.set()

    # one attempt ------------------------------------------------------------------------

    def deliver(self, event: Event) -> None:
        """One attempt of a claimed row, recorded whatever happens."""
        target = event.target_uri
        headers_for: Any
        if event.kind == STATIC:
            hook = self.outbox.webhook(event.webhook_id or "")
            if hook is None or hook.state != "enabled":
                reason = "webhook deleted" if hook is None else f"webhook {hook.state}"
                self.outbox.drop(event, reason)
                return
            target = hook.uri
            keys = current_secrets(hook, secret_box(self.settings), utcnow())
            headers_for = self._static_headers(event, keys)
        else:
            headers_for = self._dynamic_headers(event, target)
        started = utcnow()
        clock = time.monotonic()
        body = event.payload.encode("utf-8")
        status: int | None = None
        retry_after: float | None = None
        error: str | None = None
        try:
            answer = post(target, body, headers_for(int(time.time()), body), self.policy)
            status, retry_after = answer.status, answer.retry_after
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except Refused as exc:
            error = f"refused: {exc.reason}"
            log.warning(
                "webhook delivery %s to %s refused, not sent: %s",
                event.msg_id,
                _host(target),
                exc.reason,
            )
        except FetchError as exc:
            error = exc.reason
        self._finish(event, started, clock, status, retry_after, error)

    def _static_headers(self, event: Event, keys: list[str]) -> Any:
        def headers(timestamp: int, body: bytes) -> dict[str, str]:
            return {
                "webhook-id": event.msg_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign_standard(keys, event.msg_id, timestamp, body),
            }

        return headers

    def _dynamic_headers(self, event: Event, target: str) -> Any:
        audience = self.settings.webhook_jwt_audience or target
        signer = jwt_signer(self.settings)

        def headers(timestamp: int, body: bytes) -> dict[str, str]:
            digest = hashlib.sha256(body).digest()
            claims = {
                **json.loads(event.payload),
                "jti": event.msg_id,
                "webhook_timestamp": timestamp,
                "body_sha256": base64.urlsafe_b64encode(digest).decode().rstrip("="),
            }
            token = signer.sign(claims, audience=audience, now=timestamp)
            return {
                "webhook-id": event.msg_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": token,
            }

        return headers

    def _finish(
        self,
        event: Event,
        started: datetime,
        clock: float,
        status: int | None,
        retry_after: float | None,
        error: str | None,
    ) -> None:
        """Record the attempt; schedule the next, or give up (and maybe disable)."""
        delivered = error is None
        now = utcnow()
        next_time = None
        if not delivered and not event.single_attempt:
            next_time = next_attempt(event.attempts, now, self.settings.webhook_retry_scale)
            if next_time is not None and retry_after and status in _RETRY_AFTER_STATUSES:
                next_time = max(next_time, now + timedelta(seconds=retry_after))
        self.outbox.record(
            event,
            attempt_time=started,
            status=status,
            error=error,
            duration_ms=int((time.monotonic() - clock) * 1000),
            next_time=next_time,
            delivered=delivered,
        )
        result = "delivered" if delivered else ("retried" if next_time else "failed")
        metrics.WEBHOOK_DELIVERIES.labels(result=result).inc()
        if delivered:
            log.info(
                "webhook delivery %s to %s: HTTP %s", event.msg_id, _host(event.target_uri), status
            )
            return
        log.info(
            "webhook delivery %s to %s failed (attempt %d): %s",
            event.msg_id,
            _host(event.target_uri),
            event.attempts,
            error,
        )
        if event.kind != STATIC or event.webhook_id is None or event.single_attempt:
            return
        if status == 410:
            self._disable(event.webhook_id, "the endpoint answered 410 Gone")
        elif next_time is None and not self.outbox.delivered_since(
            event.webhook_id, event.create_time
        ):
            self._disable(event.webhook_id, "no delivery succeeded for 24 h")

    def _disable(self, webhook_id: str, reason: str) -> None:
        if self.outbox.disable(webhook_id, reason):
            log.warning("webhook %s disabled due to failed deliveries: %s", webhook_id, reason)
