"""The cryptography of webhooks: signing secrets, their encryption at rest, delivery JWTs.

- Static webhooks sign each delivery the Standard Webhooks way (spec gemini-webhooks §4.3):
  `v1,<base64 HMAC-SHA256>` over `"{msg_id}.{timestamp}." + body`, keyed with the base64
  part of a `whsec_` secret, one entry per valid secret, newest first.
- Their secrets are kept encrypted (`SecretBox`, Fernet: AES-128-CBC + HMAC-SHA256) with a
  key from `CINEGEN_WEBHOOK_SECRET_KEY`, else from `data_dir/webhook-secret.key` (0600),
  made at first use, so a copy of the database alone does not give the secrets away.
- Dynamic webhooks (`webhookConfig.uris`) carry an RS256 JWT (§5.3) signed by `JwtSigner`,
  whose public keys `GET /.well-known/jwks.json` publishes (§5.4). The keys live in
  `data_dir/webhook-jwks/` (private keys 0600) so that every process of a deployment on
  this machine signs with the same key. `rotate()` publishes a new key at once and signs
  with it `ROTATION_LEAD_SECONDS` later (the JWKS's cache lifetime, 5 min: a receiver's cached
  copy has the key before any token needs it; PyJWKClient also refetches on an unknown `kid`
  only after a 30 s cooldown); the previous key stays published `ROTATION_GRACE_SECONDS` (1 h,
  far past a token's 5-minute `exp`) after its last use, then is deleted. `rotate(0)`
  switches at once (a leaked key).
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from cinegen.core.errors import Internal
from cinegen.settings import Settings
from cinegen.store.blobs import PRIVATE_FILE, private_dir

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
KEY_FILE = "webhook-secret.key"
JWKS_DIR = "webhook-jwks"
MANIFEST = "keys.json"
JWT_ALGORITHM = "RS256"
JWT_LIFETIME_SECONDS = 300  # §5.3: exp = attempt time + 5 min
JWKS_MAX_AGE_SECONDS = 300  # Cache-Control of /.well-known/jwks.json (PyJWKClient's lifespan)
ROTATION_LEAD_SECONDS = float(JWKS_MAX_AGE_SECONDS)  # a new key is published this long first
ROTATION_GRACE_SECONDS = 3600.0  # a retired key stays in the JWKS this long
RSA_BITS = 2048


class SecretUnreadable(Internal):
    """A stored webhook secret does not decrypt: the key changed or the value was altered."""


# --- Standard Webhooks signatures (§4.3) ---------------------------------------------------


def new_signing_secret() -> str:
    """A fresh signing secret: `whsec_` + base64 of 32 random bytes (what receivers expect)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def truncated(secret: str) -> str:
    """The secret as it may be shown again after creation: `whsec_...` and its last 4 chars."""
    return f"{SECRET_PREFIX}...{secret[-4:]}"


def _secret_key(secret: str) -> bytes:
    """The HMAC key of a secret: its base64 part decoded (not the ASCII of the secret)."""
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign_standard(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header: one `v1,<sig>` per secret, in the order given (newest
    first), separated by single spaces."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    entries = []
    for secret in secrets:
        digest = hmac.new(_secret_key(secret), content, hashlib.sha256).digest()
        entries.append("v1," + base64.b64encode(digest).decode("ascii"))
    return " ".join(entries)


# --- secrets at rest ------------------------------------------------------------------------


class SecretBox:
    """Authenticated encryption of signing secrets stored in the database."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise SecretUnreadable(
                "A stored webhook secret cannot be decrypted (was CINEGEN_WEBHOOK_SECRET_KEY "
                "or the key file changed?)."
            ) from exc


def _derived_key(passphrase: str) -> bytes:
    """A Fernet key from the operator's `webhook_secret_key` (any string of enough entropy)."""
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"cinegen webhook secrets")
    return base64.urlsafe_b64encode(hkdf.derive(passphrase.encode("utf-8")))


def _write_once(path: Path, data: bytes) -> bytes:
    """Write `data` to `path` (0600) unless it exists; return what the file holds. A process
    racing another ends up with the winner's content (the file appears whole: link(2))."""
    private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


def secret_box(settings: Settings) -> SecretBox:
    """The box for this deployment: keyed by the setting, else by the key file (made now)."""
    if settings.webhook_secret_key:
        return SecretBox(_derived_key(settings.webhook_secret_key))
    path = settings.data_dir / KEY_FILE
    key = path.read_bytes() if path.exists() else _write_once(path, Fernet.generate_key())
    return SecretBox(key.strip())


# --- RS256 JWTs and the JWKS (§5.3, §5.4) ---------------------------------------------------


@dataclass(frozen=True)
class _Key:
    kid: str
    private: rsa.RSAPrivateKey
    activate: float  # epoch seconds from which it signs (until the next key's activate)


def _kid(public: rsa.RSAPublicKey) -> str:
    """RFC 7638 thumbprint: unique per key, the same in every process."""
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(public, as_dict=True)
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    return (
        base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode().rstrip("=")
    )


def _public_jwk(key: _Key) -> dict[str, str]:
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk(key.private.public_key(), as_dict=True)
    return {"kty": "RSA", "alg": JWT_ALGORITHM, "use": "sig", "kid": key.kid, **_ne(jwk)}


def _ne(jwk: dict[str, Any]) -> dict[str, str]:
    return {"n": str(jwk["n"]), "e": str(jwk["e"])}


@dataclass(frozen=True)
class KeyPhases:
    """The key set at one instant: `current` signs, `upcoming` is published ahead of its
    activation, `retired` are still published (their grace period)."""

    current: _Key
    upcoming: list[_Key]
    retired: list[_Key]


def _phases(keys: list[_Key], now: float, grace: float) -> KeyPhases | None:
    ordered = sorted(keys, key=lambda k: k.activate)
    active = [k for k in ordered if k.activate <= now]
    if not active:
        return None
    # a key retired when the next one activated; published until `grace` after that
    retired = [
        old for old, new in zip(active, active[1:], strict=False) if new.activate > now - grace
    ]
    upcoming = [k for k in ordered if k.activate > now]
    return KeyPhases(active[-1], upcoming, list(reversed(retired)))


class JwtSigner:
    """Signs delivery JWTs with the current key of `directory`; reloads when another process
    (`cinegen webhooks rotate-jwks-key`) changes the key set."""

    def __init__(
        self,
        directory: Path,
        issuer: str,
        *,
        grace_seconds: float = ROTATION_GRACE_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.issuer = issuer
        self.grace_seconds = grace_seconds
        self.clock = clock  # tests move it
        self._lock = threading.Lock()
        self._keys: list[_Key] = []
        self._stamp: tuple[int, int] | None = None

    def sign(self, claims: dict[str, Any], *, audience: str, now: float | None = None) -> str:
        """A compact JWS of `claims` plus `aud`, `iat`, `nbf`, `exp` (+5 min) and `iss`
        (the server's base unless the claims name one), `kid` in the header."""
        issued = int(self.clock() if now is None else now)
        payload = {**claims, "aud": audience, "iat": issued, "nbf": issued}
        payload["exp"] = issued + JWT_LIFETIME_SECONDS
        payload.setdefault("iss", self.issuer)
        key = self._phases().current
        return jwt.encode(payload, key.private, algorithm=JWT_ALGORITHM, headers={"kid": key.kid})

    def jwks(self) -> dict[str, Any]:
        """The published keys: the current one, the next (before it signs), the retired ones
        still in their grace period."""
        phases = self._phases()
        keys = [phases.current, *phases.upcoming, *phases.retired]
        return {"keys": [_public_jwk(k) for k in keys]}

    def current_kid(self) -> str:
        return self._phases().current.kid

    def rotate(self, lead_seconds: float = ROTATION_LEAD_SECONDS) -> str:
        """Publish a new key now and sign with it `lead_seconds` later (a JWKS cache lifetime,
        so receivers have it before the first token needs it; 0 for at once: a leaked key).
        A key not yet active is replaced; keys past their grace are deleted. Returns the kid."""
        with self._locked():
            now = self.clock()
            before = self._read()
            active = [k for k in before if k.activate <= now]  # never-used upcoming ones go
            fresh = self._generate(now + lead_seconds if active else now)  # none: at once
            phases = _phases([*active, fresh], now, self.grace_seconds)
            published = {k.kid for k in (phases.current, *phases.retired)} if phases else set()
            kept = [k for k in active if k.kid in published]
            self._write([*kept, fresh])
            for gone in {k.kid for k in before} - {k.kid for k in kept}:
                (self.directory / f"{gone}.pem").unlink(missing_ok=True)
        return fresh.kid

    # -- storage --

    def _phases(self) -> KeyPhases:
        phases = _phases(self._loaded(), self.clock(), self.grace_seconds)
        if phases is not None:
            return phases
        with self._locked():  # first use: make the first key (once, across processes)
            if _phases(self._read(), self.clock(), self.grace_seconds) is None:
                self._write([*self._read(), self._generate(0.0)])
        phases = _phases(self._loaded(), self.clock(), self.grace_seconds)
        if phases is None:
            raise Internal("No webhook JWT signing key could be made.")
        return phases

    def _loaded(self) -> list[_Key]:
        """The key set, read again only when the manifest changed (a stat per call)."""
        manifest = self.directory / MANIFEST
        try:
            st = manifest.stat()
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp or stamp is None:
                self._keys = self._read()
                self._stamp = stamp
            return list(self._keys)

    def _read(self) -> list[_Key]:
        try:
            entries = json.loads((self.directory / MANIFEST).read_text())["keys"]
        except FileNotFoundError:
            return []
        keys = []
        for entry in entries:
            try:
                pem = (self.directory / f"{entry['kid']}.pem").read_bytes()
            except FileNotFoundError:  # deleted by a rotation since the manifest was read
                continue
            private = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(private, rsa.RSAPrivateKey):
                raise Internal(f"Webhook JWT key {entry['kid']} is not an RSA key.")
            keys.append(_Key(entry["kid"], private, float(entry["activate"])))
        return keys

    def _write(self, keys: list[_Key]) -> None:
        """Write the manifest atomically (a rename), after every key file it names."""
        entries = [{"kid": k.kid, "activate": k.activate} for k in keys]
        tmp = self.directory / f".{MANIFEST}.{os.getpid()}.{secrets.token_hex(4)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
        with os.fdopen(fd, "w") as out:
            json.dump({"keys": entries}, out)
        os.replace(tmp, self.directory / MANIFEST)

    def _generate(self, activate: float) -> _Key:
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
        key = _Key(_kid(private.public_key()), private, activate)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_once(self.directory / f"{key.kid}.pem", pem)
        return key

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """An exclusive lock across processes (the server, workers, the CLI) on this dir."""
        private_dir(self.directory)
        fd = os.open(self.directory / ".lock", os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)


def issuer_of(settings: Settings) -> str:
    """The `iss` of delivery JWTs: the public base URL, else the bound address."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    return f"http://{settings.host}:{settings.port}"


_signers: dict[tuple[Path, str], JwtSigner] = {}
_signers_lock = threading.Lock()


def jwt_signer(settings: Settings) -> JwtSigner:
    """The signer of this deployment (one per key directory and issuer in a process)."""
    directory = (settings.data_dir / JWKS_DIR).resolve()
    issuer = issuer_of(settings)
    with _signers_lock:
        signer = _signers.get((directory, issuer))
        if signer is None:
            signer = _signers[(directory, issuer)] = JwtSigner(directory, issuer)
        return signer
