"""Webhook cryptography (service/webhook_crypto.py): Standard Webhooks signatures checked by the
`standardwebhooks` library, secrets at rest, and RS256 JWTs verified by PyJWT against the
server's own `/.well-known/jwks.json` (spec gemini-webhooks §4.3, §5.3, §5.4)."""

from __future__ import annotations

import base64
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.fernet import Fernet
from standardwebhooks import Webhook, WebhookVerificationError

from cinegen.service.webhook_crypto import (
    JwtSigner,
    SecretBox,
    SecretUnreadable,
    jwt_signer,
    new_signing_secret,
    secret_box,
    sign_standard,
    truncated,
)
from cinegen.settings import Settings
from tests.support.server import REPO, ServerProcess, create_key

BODY = b'{"type":"video.generated","version":"v1","data":{"id":"models/x/operations/1"}}'


def _headers(msg_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


def test_spec_test_vector() -> None:
    signature = sign_standard(
        ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_new_secret_shape_and_truncation() -> None:
    secret = new_signing_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert new_signing_secret() != secret
    assert truncated(secret) == "whsec_..." + secret[-4:]
    assert secret[6:-4] not in truncated(secret)


def test_standardwebhooks_verifies_one_secret() -> None:
    secret, now = new_signing_secret(), int(time.time())
    headers = _headers("msg_abc", now, sign_standard([secret], "msg_abc", now, BODY))
    assert Webhook(secret).verify(BODY, headers) is not None
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_signing_secret()).verify(BODY, headers)


def test_two_secrets_each_alone_verifies_the_header() -> None:
    new, old, now = new_signing_secret(), new_signing_secret(), int(time.time())
    signature = sign_standard([new, old], "msg_rot", now, BODY)
    entries = signature.split(" ")
    assert len(entries) == 2 and all(e.startswith("v1,") and e.count(",") == 1 for e in entries)
    assert entries[0] == sign_standard([new], "msg_rot", now, BODY)  # newest first
    headers = _headers("msg_rot", now, signature)
    for secret in (new, old):
        assert Webhook(secret).verify(BODY, headers) is not None
    with pytest.raises(WebhookVerificationError):
        Webhook(new_signing_secret()).verify(BODY, headers)


def test_secret_box_round_trip_and_tamper(tmp_path: Path) -> None:
    box = secret_box(Settings(data_dir=tmp_path))
    secret = new_signing_secret()
    token = box.encrypt(secret)
    assert secret not in token
    assert box.decrypt(token) == secret
    raw = bytearray(base64.urlsafe_b64decode(token))
    raw[-40] ^= 1
    with pytest.raises(SecretUnreadable):
        box.decrypt(base64.urlsafe_b64encode(bytes(raw)).decode())
    with pytest.raises(SecretUnreadable):
        box.decrypt("not a token")


def test_secret_box_key_file_is_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    token = secret_box(settings).encrypt("whsec_x")
    key_file = tmp_path / "data" / "webhook-secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    before = key_file.read_bytes()
    assert secret_box(settings).decrypt(token) == "whsec_x"  # another process, same key
    assert key_file.read_bytes() == before


def test_secret_box_from_setting(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, webhook_secret_key="correct horse battery staple")
    token = secret_box(settings).encrypt("whsec_y")
    assert not (tmp_path / "webhook-secret.key").exists()
    assert secret_box(settings).decrypt(token) == "whsec_y"
    other = Settings(data_dir=tmp_path, webhook_secret_key="another key")
    with pytest.raises(SecretUnreadable):
        secret_box(other).decrypt(token)
    with pytest.raises(SecretUnreadable):  # nor does a key file's key
        secret_box(Settings(data_dir=tmp_path / "d")).decrypt(token)
    with pytest.raises(SecretUnreadable):
        SecretBox(Fernet.generate_key()).decrypt(token)


def _verify(token: str, signer: JwtSigner, audience: str, leeway: float = 0) -> dict:
    """Verify the way a receiver does (§6.4), with the JWKS given as a dict (`leeway`: the
    tests' clock moved on)."""
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in signer.jwks()["keys"] if k["kid"] == kid)
    key = jwt.PyJWK(jwk).key
    return jwt.decode(
        token, key, algorithms=["RS256"], audience=audience, issuer=signer.issuer, leeway=leeway
    )


def test_jwt_claims_and_key_files(tmp_path: Path) -> None:
    signer = JwtSigner(tmp_path / "jwks", "https://veo.example.com")
    token = signer.sign({"type": "video.generated", "jti": "msg_1"}, audience="https://r/hook")
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == signer.current_kid()
    claims = _verify(token, signer, "https://r/hook")
    assert claims["iss"] == "https://veo.example.com" and claims["jti"] == "msg_1"
    assert claims["exp"] - claims["iat"] == 300 and claims["nbf"] == claims["iat"]
    with pytest.raises(jwt.InvalidAudienceError):
        _verify(token, signer, "https://r/other")
    pems = list((tmp_path / "jwks").glob("*.pem"))
    assert len(pems) == 1 and stat.S_IMODE(pems[0].stat().st_mode) == 0o600
    (jwk,) = signer.jwks()["keys"]
    assert set(jwk) == {"kty", "alg", "use", "kid", "n", "e"} and jwk["e"] == "AQAB"
    assert len(base64.urlsafe_b64decode(jwk["n"] + "==")) * 8 >= 2048


def test_jwt_expired_token_refused(tmp_path: Path) -> None:
    signer = JwtSigner(tmp_path / "jwks", "https://veo.example.com")
    token = signer.sign({}, audience="a", now=time.time() - 301)
    with pytest.raises(jwt.ExpiredSignatureError):
        _verify(token, signer, "a")


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _kids(signer: JwtSigner) -> list[str]:
    return [k["kid"] for k in signer.jwks()["keys"]]


def test_rotation_publishes_first_then_signs_then_retires(tmp_path: Path) -> None:
    clock = Clock()
    signer = JwtSigner(tmp_path / "jwks", "https://veo.example.com", clock=clock)
    old_kid = signer.current_kid()
    before = signer.sign({"n": 1}, audience="a")
    # another process (the CLI) rotates; this one sees it at its next call (the manifest)
    new_kid = JwtSigner(tmp_path / "jwks", "https://veo.example.com", clock=clock).rotate()
    assert new_kid != old_kid
    assert _kids(signer) == [old_kid, new_kid]  # published, not yet signing
    assert jwt.get_unverified_header(signer.sign({}, audience="a"))["kid"] == old_kid

    clock.now += 301  # past the lead (one JWKS cache lifetime): the new key signs
    after = signer.sign({"n": 2}, audience="a")
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    assert _kids(signer) == [new_kid, old_kid]  # the old one in its grace period
    assert _verify(before, signer, "a", leeway=301)["n"] == 1
    assert _verify(after, signer, "a", leeway=301)["n"] == 2

    clock.now += 3600  # grace over: the old key leaves the JWKS, its file at the next rotation
    assert _kids(signer) == [new_kid]
    newest = signer.rotate(0)  # at once
    assert _kids(signer) == [newest, new_kid]
    assert sorted(p.stem for p in (tmp_path / "jwks").glob("*.pem")) == sorted([newest, new_kid])


def test_first_rotation_on_an_empty_directory_signs_at_once(tmp_path: Path) -> None:
    signer = JwtSigner(tmp_path / "jwks", "https://veo.example.com")
    kid = signer.rotate()
    assert signer.current_kid() == kid and _kids(signer) == [kid]


def test_rotation_replaces_a_key_not_yet_signing(tmp_path: Path) -> None:
    signer = JwtSigner(tmp_path / "jwks", "https://veo.example.com")
    first = signer.current_kid()
    scheduled = signer.rotate()
    urgent = signer.rotate(0)  # the scheduled key never signed: dropped, not left to activate
    assert signer.current_kid() == urgent
    assert _kids(signer) == [urgent, first]
    assert not (tmp_path / "jwks" / f"{scheduled}.pem").exists()


# --- the server's /.well-known/jwks.json and `cinegen webhooks rotate-jwks-key` -------------


@pytest.fixture(scope="module")
def jwks_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real `cinegen serve`: PyJWKClient needs an HTTP URL, as a receiver has."""
    proc = ServerProcess(tmp_path_factory.mktemp("jwks"), env_extra={"CINEGEN_WORKERS": "0"})
    proc.start()
    yield proc
    proc.stop()


def _signer_of(server: ServerProcess) -> JwtSigner:
    """The signer the server's processes share: same data dir, same issuer."""
    return jwt_signer(Settings(data_dir=server.data_dir, host="127.0.0.1", port=server.port))


def _rotate_cli(server: ServerProcess, *flags: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cinegen.cli", "webhooks", "rotate-jwks-key", *flags],
        env=server.env(),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )


def test_jwks_endpoint_serves_keys_unauthenticated(jwks_server: ServerProcess) -> None:
    create_key(jwks_server)  # the server now demands a key everywhere else
    url = f"{jwks_server.url}/.well-known/jwks.json"
    deadline = time.monotonic() + 15  # the server caches "no keys" a couple of seconds
    while httpx.get(f"{jwks_server.url}/v1beta/models").status_code == 200:
        assert time.monotonic() < deadline, "the server never asked for the key"
        time.sleep(0.2)
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    assert response.headers["content-type"].startswith("application/json")
    (key,) = response.json()["keys"]
    assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["use"] == "sig"
    assert key["kid"] == _signer_of(jwks_server).current_kid()


def test_pyjwkclient_verifies_against_the_server(jwks_server: ServerProcess) -> None:
    signer = _signer_of(jwks_server)
    token = signer.sign({"type": "video.generated", "jti": "msg_9"}, audience="https://r.example/h")
    client = jwt.PyJWKClient(f"{jwks_server.url}/.well-known/jwks.json")
    key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["RS256"],
        audience="https://r.example/h",
        issuer=jwks_server.url,
    )
    assert claims["type"] == "video.generated" and claims["jti"] == "msg_9"
    forged = JwtSigner(jwks_server.data_dir / "elsewhere", jwks_server.url).sign(
        {}, audience="https://r.example/h"
    )
    with pytest.raises(jwt.PyJWKClientError):  # a kid the server never published
        client.get_signing_key_from_jwt(forged)


def test_cli_rotation(jwks_server: ServerProcess) -> None:
    signer = _signer_of(jwks_server)
    url = f"{jwks_server.url}/.well-known/jwks.json"
    old_kid = signer.current_kid()
    before = signer.sign({"n": "before"}, audience="aud")

    result = _rotate_cli(jwks_server)
    assert result.returncode == 0, result.stderr
    new_kid = result.stdout.strip()
    assert new_kid and new_kid != old_kid
    assert [k["kid"] for k in httpx.get(url).json()["keys"]] == [old_kid, new_kid]
    # a receiver fetching now (PyJWKClient caches 5 min) holds the key before it signs
    client = jwt.PyJWKClient(url, cooldown_duration=3600)  # no refetch would help
    later = JwtSigner(signer.directory, signer.issuer, clock=lambda: time.time() + 301)
    after = later.sign({"n": "after"}, audience="aud")
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    for token, n in ((before, "before"), (after, "after")):
        key = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(token, key.key, algorithms=["RS256"], audience="aud", leeway=302)
        assert claims["n"] == n

    result = _rotate_cli(jwks_server, "--now")  # a leaked key: signs at once
    assert result.returncode == 0, result.stderr
    urgent = result.stdout.strip()
    assert signer.current_kid() == urgent
    assert [k["kid"] for k in httpx.get(url).json()["keys"]] == [urgent, old_kid]
