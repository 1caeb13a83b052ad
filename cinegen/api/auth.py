"""API keys: `x-goog-api-key`, `?key=`, or `Authorization: Bearer`.

With no key created the server is open (any key, or none, is accepted and everything belongs
to one anonymous owner); that is why `cinegen serve` refuses a non-loopback bind in that
state, and why, bound beyond loopback, every request is refused while no key exists (the last
key deleted while it runs closes it rather than opening it), unless `allow_public_bind` says
an open server is wanted. Once a key exists, every request needs a valid one and sees only its own operations.
Keys are stored as SHA-256 hashes; the lookups are cached for a couple of seconds so a poll
costs no extra query, while a key created by `cinegen keys create` works almost at once.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
import time
from typing import Any

from fastapi import Request

from cinegen.core.errors import PermissionDenied, Unauthenticated
from cinegen.settings import Settings
from cinegen.store.db import Database

_CACHE_SECONDS = 2.0
KEY_PREFIX = "cg-"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


def create_key(db: Database, name: str = "") -> tuple[str, str]:
    """Store a new key; returns (key id, the key itself — shown once, never stored)."""
    key = KEY_PREFIX + secrets.token_urlsafe(30)
    key_id = secrets.token_hex(6)
    db.insert_key(key_id, hash_key(key), name)
    return key_id, key


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
        self._keys_exist: tuple[float, bool] = (0.0, False)
        self._owners: dict[str, tuple[float, str | None]] = {}

    def keys_configured(self) -> bool:
        checked, exist = self._keys_exist
        now = time.monotonic()
        if now - checked > _CACHE_SECONDS:
            exist = self.db.count_keys() > 0
            self._keys_exist = (now, exist)
        return exist

    def owner(self, request: Request) -> str | None:
        """The key id that owns what this request creates and sees (None when open)."""
        if not self.keys_configured():
            if self._closed_when_keyless(request):
                raise PermissionDenied(
                    "This server listens beyond loopback and has no API key, so it answers "
                    "no request. Create a key (`cinegen keys create`), or restart it with "
                    "CINEGEN_ALLOW_PUBLIC_BIND=true to serve anyone."
                )
            return None
        key = presented_key(request)
        if not key:
            raise Unauthenticated(
                "Method doesn't allow unregistered callers (callers without established "
                "identity). Please use API Key or other form of API consumer identity to call "
                "this API."
            )
        owner = self._lookup(hash_key(key))
        if owner is None:
            raise PermissionDenied("API key not valid. Please pass a valid API key.")
        return owner

    def _closed_when_keyless(self, request: Request) -> bool:
        settings: Any = self.settings
        if settings is None:
            runtime = getattr(request.app.state, "runtime", None)
            settings = getattr(runtime, "settings", None)
        # No settings to read the bind from: fail closed.
        return settings is None or must_close_when_keyless(settings)

    def _lookup(self, key_hash: str) -> str | None:
        now = time.monotonic()
        cached = self._owners.get(key_hash)
        if cached and now - cached[0] < _CACHE_SECONDS:
            return cached[1]
        owner = self.db.key_by_hash(key_hash)
        if len(self._owners) > 10_000:
            self._owners.clear()
        self._owners[key_hash] = (now, owner)
        return owner
