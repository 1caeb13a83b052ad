"""API keys: `x-goog-api-key`, `?key=`, or `Authorization: Bearer`.

With no key created the server is open (any key, or none, is accepted and everything belongs
to one anonymous owner); that is why `cinegen serve` refuses a non-loopback bind in that
state, and why, bound beyond loopback, every request is refused while no key exists (the last
key deleted while it runs closes it rather than opening it), unless `allow_public_bind` says
an open server is wanted. Once a key exists, every request needs a valid one and sees only its own operations.
Keys are stored as SHA-256 hashes; the lookups are cached for a couple of seconds so a poll
costs no extra query, while a key created by `cinegen keys create` works almost at once.

A key may be an admin (it sees every key's operations and files, and manages keys over HTTP,
api/keys.py), may expire or be revoked (then 403), and has limits (service/quotas.py). The
per-minute limits of a key are checked here, as every route asks `owner()` first: reads (GET,
HEAD: polls) and other requests are counted apart, in the database, so every process shares
them.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import secrets
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import Request

from cinegen.api.ratelimit import RateLimiter
from cinegen.core.errors import PermissionDenied, QuotaExceeded, Unauthenticated
from cinegen.service.files import AdminOwner
from cinegen.service.quotas import limits_of
from cinegen.settings import Settings
from cinegen.store.db import Database, KeyRecord, utcnow

_CACHE_SECONDS = 2.0
KEY_PREFIX = "cg-"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


def create_key(db: Database, name: str = "", **fields: Any) -> tuple[str, str]:
    """Store a new key (`fields`: admin, expire_time, limits; see `store.db.KEY_FIELDS`);
    returns (key id, the key itself — shown once, never stored)."""
    key = KEY_PREFIX + secrets.token_urlsafe(30)
    key_id = secrets.token_hex(6)
    db.insert_key(key_id, hash_key(key), name, **fields)
    return key_id, key


def rfc3339(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def refuse_unusable(key: KeyRecord, now: datetime) -> None:
    """403 for a revoked or expired key, saying which and since when."""
    if key.revoke_time is not None and key.revoke_time <= now:
        raise PermissionDenied(
            f"API key revoked on {rfc3339(key.revoke_time)}. Ask an admin for a new one."
        )
    if key.expire_time is not None and key.expire_time <= now:
        raise PermissionDenied(
            f"API key expired on {rfc3339(key.expire_time)}. Please renew the API key."
        )


def presented_key(request: Request) -> str | None:
    key = request.headers.get("x-goog-api-key") or request.query_params.get("key")
    if key:
        return key.strip()
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip() or None
    return None


def is_loopback_host(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1: a bind nobody beyond this machine reaches."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def must_close_when_keyless(settings: Settings) -> bool:
    """Bound beyond loopback, and the operator did not allow an open server there."""
    return not settings.allow_public_bind and not is_loopback_host(settings.host)


class Authenticator:
    def __init__(self, db: Database, settings: Settings | None = None) -> None:
        self.db = db
        # None: the app's settings, read from the request (`app.state.runtime.settings`).
        self.settings = settings
        self.clock: Callable[[], float] = time.time  # unix seconds; tests move it
        self._keys_exist: tuple[float, bool] = (0.0, False)
        self._keys: dict[str, tuple[float, KeyRecord | None]] = {}
        self.rates = RateLimiter(db)

    def forget(self) -> None:
        """Drop the cached lookups (a key was changed here: take it at once)."""
        self._keys.clear()
        self._keys_exist = (0.0, False)

    def keys_configured(self) -> bool:
        checked, exist = self._keys_exist
        now = time.monotonic()
        if now - checked > _CACHE_SECONDS:
            exist = self.db.count_keys() > 0
            self._keys_exist = (now, exist)
        return exist

    def owner(self, request: Request) -> str | None:
        """The key id that owns what this request creates and sees (None when open; an
        `AdminOwner` for an admin key), once the key's per-minute limit lets it through."""
        key = self.key(request)
        self._count(request, key)
        if key is None:
            return None
        return AdminOwner(key.id) if key.admin else key.id

    def key(self, request: Request) -> KeyRecord | None:
        """The presented key's record: 401 with none, 403 for a wrong, revoked or expired
        one; None on an open server (no key exists)."""
        if not self.keys_configured():
            if self._closed_when_keyless(request):
                raise PermissionDenied(
                    "This server listens beyond loopback and has no API key, so it answers "
                    "no request. Create a key (`cinegen keys create`), or restart it with "
                    "CINEGEN_ALLOW_PUBLIC_BIND=true to serve anyone."
                )
            return None
        presented = presented_key(request)
        if not presented:
            raise Unauthenticated(
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API."
            )
        key = self._lookup(hash_key(presented))
        if key is None:
            raise PermissionDenied("API key not valid. Please pass a valid API key.")
        refuse_unusable(key, utcnow())
        return key

    def _count(self, request: Request, key: KeyRecord | None) -> None:
        """This request in its key's counter for this minute (api/ratelimit.py); 429 past
        the limit, with `Retry-After` the seconds to the minute's end. An open server (no
        key) has no per-minute limits: its one anonymous owner is every local caller."""
        settings = self._settings(request)
        if settings is None or key is None:
            return
        read = request.method in ("GET", "HEAD")
        limit = settings.polls_per_minute if read else limits_of(key, settings).requests_per_minute
        if limit <= 0:
            return
        now = self.clock()
        kind = "polls" if read else "requests"
        if self.rates.over(key.id, kind, limit, now):
            what = (
                f"{limit} reads per minute (polls of operations, videos and files)"
                if read
                else f"{limit} requests per minute"
            )
            raise QuotaExceeded(
                f"This API key's limit is {what}. Try again in the next minute.",
                retry_after=math.ceil((now // 60 + 1) * 60 - now),
            )

    def _settings(self, request: Request) -> Any:
        if self.settings is not None:
            return self.settings
        runtime = getattr(request.app.state, "runtime", None)
        return getattr(runtime, "settings", None)

    def _closed_when_keyless(self, request: Request) -> bool:
        settings = self._settings(request)
        # No settings to read the bind from: fail closed.
        return settings is None or must_close_when_keyless(settings)

    def _lookup(self, key_hash: str) -> KeyRecord | None:
        now = time.monotonic()
        cached = self._keys.get(key_hash)
        if cached and now - cached[0] < _CACHE_SECONDS:
            return cached[1]
        key = self.db.key_by_hash(key_hash)
        if len(self._keys) > 10_000:
            self._keys.clear()
        self._keys[key_hash] = (now, key)
        return key
