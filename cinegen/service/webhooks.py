"""WebhookService: the static webhooks of each tenant (the Gemini API's `/webhooks`).

A webhook belongs to the API key that created it; every method takes that owner and sees
only its webhooks (another tenant's id is "not found", never "forbidden"). Signing secrets
are generated here, shown once (create, rotate) and stored encrypted (`SecretBox`); the
resource lists only their truncated form. A ping is an outbox row the delivery loop sends.

Limits (spec §7 #18, the Gemini API documents none): 50 webhooks per tenant, a `uri` of at
most 2048 characters, a `name` of at most 256, 5 previous secrets in their grace period.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import json
import re
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError

from cinegen.core.errors import CinegenError, FailedPrecondition, InvalidArgument, NotFound
from cinegen.media.fetch import FetchPolicy
from cinegen.service.webhook_crypto import SecretBox, new_signing_secret, secret_box, truncated
from cinegen.settings import Settings
from cinegen.store.db import Database, WebhookRecord, WebhookStore, utcnow

# Every event name any SDK version or Google's guide lists (spec §3): all 9 are accepted.
EVENTS = frozenset(
    {
        "batch.succeeded",
        "batch.cancelled",
        "batch.expired",
        "batch.failed",
        "interaction.requires_action",
        "interaction.completed",
        "interaction.failed",
        "interaction.cancelled",
        "video.generated",
    }
)
PING_EVENT = "webhook.ping"
ENABLED = "enabled"
DISABLED = "disabled"
AUTO_DISABLED = "disabled_due_to_failed_deliveries"
SETTABLE_STATES = frozenset({ENABLED, DISABLED})
AFTER_24H = "revoke_previous_secrets_after_h24"
IMMEDIATELY = "revoke_previous_secrets_immediately"
REVOCATIONS = frozenset({AFTER_24H, IMMEDIATELY})
GRACE = timedelta(hours=24)
# Previous secrets kept through their 24 h grace: rotating in a loop must not grow the row
# (and every delivery's signature header) without bound; the oldest go first.
MAX_PREVIOUS_SECRETS = 5

MAX_WEBHOOKS = 50
MAX_URI = 2048
MAX_NAME = 256
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
UPDATABLE = ("name", "uri", "subscribed_events", "state")

_ID_ALPHABET = string.ascii_lowercase + string.digits
_BASE62 = string.ascii_letters + string.digits
_LEGACY_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


class WebhookIdTaken(CinegenError):
    """A 1.73.x client asked for a `webhook_id` that is already in use."""

    http_code = 409
    status_word = "ALREADY_EXISTS"


@dataclass(frozen=True)
class WebhookFields:
    """What a create or update body sets (None: not given)."""

    name: str | None = None
    uri: str | None = None
    subscribed_events: list[str] | None = None
    state: str | None = None


def new_webhook_id() -> str:
    """36 characters of [a-z0-9], the shape of the one live id seen."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(36))


def new_msg_id() -> str:
    """`msg_` + random base62: the `webhook-id` header, stable across retries (§7 #16)."""
    return "msg_" + "".join(secrets.choice(_BASE62) for _ in range(24))


def timestamp(moment: datetime) -> str:
    """RFC 3339 in UTC with a `Z`."""
    return moment.isoformat().replace("+00:00", "Z")


def _expiry(entry: dict[str, object]) -> datetime | None:
    value = entry.get("expire_time")
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")) if value else None


def live_secrets(record: WebhookRecord, now: datetime) -> list[dict[str, object]]:
    """The stored secret entries not yet expired, newest first."""
    return [e for e in record.signing_secrets if (x := _expiry(e)) is None or x > now]


def current_secrets(record: WebhookRecord, box: SecretBox, now: datetime) -> list[str]:
    """The plaintext secrets a delivery is signed with now (every unexpired one)."""
    return [box.decrypt(str(entry["encrypted"])) for entry in live_secrets(record, now)]


def revocation(value: object) -> str:
    """`revocation_behavior` in either case (the guide's samples send upper case)."""
    if value is None or value == "":
        return AFTER_24H
    if not isinstance(value, str) or value.lower() not in REVOCATIONS:
        raise InvalidArgument(
            f"Invalid revocation_behavior {value!r}: expected one of {sorted(REVOCATIONS)}."
        )
    return value.lower()


def parse_update_mask(mask: str | None) -> list[str] | None:
    """The FieldMask paths (snake or camel), or None for no mask."""
    if mask is None or not mask.strip():
        return None
    paths = []
    for raw in mask.split(","):
        path = re.sub(r"(?<!^)([A-Z])", r"_\1", raw.strip()).lower()
        if path not in UPDATABLE:
            raise InvalidArgument(
                f"Invalid update_mask path {raw.strip()!r}: updatable fields are "
                f"{', '.join(UPDATABLE)}."
            )
        paths.append(path)
    return paths


def _encode_token(record: WebhookRecord) -> str:
    raw = json.dumps([timestamp(record.create_time), record.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        time, last_id = json.loads(raw)
        return datetime.fromisoformat(time.replace("Z", "+00:00")), str(last_id)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidArgument("Invalid page_token.") from exc


class WebhookService:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.store = WebhookStore(db)
        self.settings = settings

    @cached_property
    def box(self) -> SecretBox:
        """Made at first use: an open server may never store a secret."""
        return secret_box(self.settings)

    @cached_property
    def _policy(self) -> FetchPolicy:
        return FetchPolicy.from_allow_list(self.settings.fetch_allow_hosts.split(","))

    # validation --------------------------------------------------------------------------

    def check_uri(self, uri: object) -> str:
        """An absolute https URL; http only to a host in CINEGEN_FETCH_ALLOW_HOSTS (dev)."""
        if not isinstance(uri, str) or not uri.strip():
            raise InvalidArgument("uri is required.")
        if len(uri) > MAX_URI:
            raise InvalidArgument(f"uri is longer than {MAX_URI} characters.")
        try:
            parts = urlsplit(uri)
            _ = parts.port
        except ValueError as exc:
            raise InvalidArgument(f"Invalid uri {uri!r}: {exc}.") from exc
        host = (parts.hostname or "").rstrip(".")
        if not host or parts.scheme.lower() not in ("https", "http"):
            raise InvalidArgument(f"Invalid uri {uri!r}: an absolute https URL is required.")
        if parts.scheme.lower() == "http" and not self._allowed_plain(host):
            raise InvalidArgument(
                f"Invalid uri {uri!r}: webhooks must use https (http only to a host in "
                "CINEGEN_FETCH_ALLOW_HOSTS)."
            )
        return uri

    def _allowed_plain(self, host: str) -> bool:
        if host.lower() in self._policy.allow_hosts:
            return True
        try:
            address = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        return any(address in network for network in self._policy.allow_networks)

    @staticmethod
    def check_events(events: object) -> list[str]:
        if not isinstance(events, list) or not events:
            raise InvalidArgument("subscribed_events is required and must not be empty.")
        for event in events:
            if not isinstance(event, str) or event not in EVENTS:
                raise InvalidArgument(
                    f"Invalid subscribed_events value {event!r}: expected one of "
                    f"{', '.join(sorted(EVENTS))}."
                )
        return list(dict.fromkeys(events))

    @staticmethod
    def check_name(name: object) -> str:
        if not isinstance(name, str):
            raise InvalidArgument("name must be a string.")
        if len(name) > MAX_NAME:
            raise InvalidArgument(f"name is longer than {MAX_NAME} characters.")
        return name

    @staticmethod
    def check_state(state: object) -> str:
        value = state.lower() if isinstance(state, str) else state
        if value not in SETTABLE_STATES:
            raise InvalidArgument(
                f"Invalid state {state!r}: only enabled or disabled may be set "
                "(disabled_due_to_failed_deliveries is set by the server)."
            )
        return str(value)

    # methods -----------------------------------------------------------------------------

    def create(
        self, owner: str | None, fields: WebhookFields, webhook_id: str | None = None
    ) -> tuple[WebhookRecord, str]:
        """A new enabled webhook and its signing secret (returned this once)."""
        uri = self.check_uri(fields.uri)
        events = self.check_events(fields.subscribed_events)
        name = self.check_name(fields.name or "")
        if webhook_id is not None and not _LEGACY_ID.fullmatch(webhook_id):
            raise InvalidArgument(f"Invalid webhook_id {webhook_id!r}: use [a-z0-9-], 1-63.")
        secret = new_signing_secret()
        now = utcnow()
        record = WebhookRecord(
            id=webhook_id or new_webhook_id(),
            owner=owner,
            name=name,
            uri=uri,
            subscribed_events=events,
            state=ENABLED,
            signing_secrets=[self._entry(secret, None)],
            create_time=now,
            update_time=now,
        )
        try:
            stored = self.store.insert(record, MAX_WEBHOOKS)
        except IntegrityError as exc:
            if webhook_id is None:  # 36 random characters: never in practice; do not 409
                raise
            raise WebhookIdTaken(f"Webhook {webhook_id} already exists.") from exc
        if not stored:
            raise FailedPrecondition(
                f"This API key already has {MAX_WEBHOOKS} webhooks, the most it may have. "
                "Delete one first."
            )
        return record, secret

    def get(self, owner: str | None, webhook_id: str) -> WebhookRecord:
        record = self.store.get(webhook_id, owner)
        if record is None:
            raise NotFound(f"Webhook {webhook_id} not found.")
        return record

    def page(
        self, owner: str | None, page_size: int | None, page_token: str | None
    ) -> tuple[list[WebhookRecord], str | None]:
        """One page, oldest first, and the token of the next (None on the last page)."""
        size = DEFAULT_PAGE_SIZE if not page_size else min(page_size, MAX_PAGE_SIZE)
        if size < 0:
            raise InvalidArgument("page_size must not be negative.")
        after = _decode_token(page_token) if page_token else None
        rows = self.store.page(owner, after, size + 1)
        if len(rows) > size:
            return rows[:size], _encode_token(rows[size - 1])
        return rows, None

    def update(
        self,
        owner: str | None,
        webhook_id: str,
        fields: WebhookFields,
        mask: list[str] | None,
    ) -> WebhookRecord:
        """Apply the masked paths (or, with no mask, every field the body has)."""
        self.get(owner, webhook_id)
        paths = (
            mask if mask is not None else [p for p in UPDATABLE if getattr(fields, p) is not None]
        )
        changes: dict[str, object] = {}
        for path in paths:
            value = getattr(fields, path)
            if path == "uri":
                changes["uri"] = self.check_uri(value)
            elif path == "subscribed_events":
                changes["subscribed_events"] = self.check_events(value)
            elif path == "state":
                changes["state"] = self.check_state(value)
            else:
                changes["name"] = self.check_name(value or "")
        record = self.store.update(webhook_id, owner, **changes)
        if record is None:
            raise NotFound(f"Webhook {webhook_id} not found.")
        return record

    def delete(self, owner: str | None, webhook_id: str) -> None:
        if not self.store.delete(webhook_id, owner):
            raise NotFound(f"Webhook {webhook_id} not found.")

    def rotate(self, owner: str | None, webhook_id: str, behavior: object) -> str:
        """A new secret (returned this once); the previous ones expire in 24 h or now."""
        how = revocation(behavior)
        record = self.get(owner, webhook_id)
        now = utcnow()
        secret = new_signing_secret()
        kept: list[dict[str, object]] = []
        if how == AFTER_24H:
            deadline = now + GRACE
            for entry in live_secrets(record, now):
                expiry = _expiry(entry)
                until = deadline if expiry is None else min(expiry, deadline)
                kept.append({**entry, "expire_time": timestamp(until)})
            kept = kept[:MAX_PREVIOUS_SECRETS]
        secrets_now = [self._entry(secret, None), *kept]
        if self.store.update(webhook_id, owner, signing_secrets=secrets_now) is None:
            raise NotFound(f"Webhook {webhook_id} not found.")
        return secret

    def ping(self, owner: str | None, webhook_id: str) -> str:
        """Queue one `webhook.ping` to the webhook, a single attempt whatever it subscribes
        to (§7 #12); the outbox row's id."""
        record = self.get(owner, webhook_id)
        now = utcnow()
        envelope = {
            "type": PING_EVENT,
            "version": "v1",
            "timestamp": timestamp(now),
            "data": {"id": record.id},
        }
        event_id = self.store.insert_event(
            msg_id=new_msg_id(),
            owner=owner,
            webhook_id=record.id,
            target_uri=record.uri,
            kind="static",
            event_type=PING_EVENT,
            payload=json.dumps(envelope, separators=(",", ":")),
            single_attempt=True,
            now=now,
        )
        # Wake this process's sender: a ping is a manual check, it must not wait a poll.
        if self.store.db.finish_events is not None:
            self.store.db.finish_events.enqueued()
        return event_id

    def _entry(self, secret: str, expire_time: datetime | None) -> dict[str, object]:
        return {
            "encrypted": self.box.encrypt(secret),
            "truncated_secret": truncated(secret),
            "expire_time": timestamp(expire_time) if expire_time else None,
        }
