"""Webhook cryptography (service/webhook_crypto.py): Standard Webhooks signatures checked by the
`standardwebhooks` library, secrets at rest, and RS256 JWTs verified by PyJWT against the
server's own `/.well-known/jwks.json` (spec gemini-webhooks §4.3, §5.3, §5.4)."""

from __future__ import annotations

import base64
import stat
import time
from pathlib import Path

import jwt
import pytest
from cryptography.fernet import Fernet
from standardwebhooks import Webhook, WebhookVerificationError

from cinegen.service.webhook_crypto import (
    JwtSigner,
    SecretBox,
    SecretUnreadable,
    new_signing_secret,
    secret_box,
    sign_standard,
    truncated,
)
from cinegen.settings import Settings

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


def _verify(token: str, signer: JwtSigner, audience: str) -> dict:
    """Verify the way a receiver does (§6.4), with the JWKS given as a dict."""
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(k for k in signer.jwks()["keys"] if k["kid"] == kid)
    key = jwt.PyJWK(jwk).key
    return jwt.decode(token, key, algorithms=["RS256"], audience=audience, issuer=signer.issuer)


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


def test_rotation_grace_and_expiry(tmp_path: Path) -> None:
    signer = JwtSigner(tmp_path / "jwks", "https://veo.example.com")
    old_kid = signer.current_kid()
    before = signer.sign({"n": 1}, audience="a")
    # another process (the CLI) rotates; this one sees it at its next call
    new_kid = JwtSigner(tmp_path / "jwks", "https://veo.example.com").rotate()
    assert new_kid != old_kid
    after = signer.sign({"n": 2}, audience="a")
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    assert [k["kid"] for k in signer.jwks()["keys"]] == [new_kid, old_kid]
    assert _verify(before, signer, "a")["n"] == 1
    assert _verify(after, signer, "a")["n"] == 2
    # past the grace period the old key leaves the JWKS, and its file goes at the next rotation
    expired = JwtSigner(tmp_path / "jwks", "https://veo.example.com", grace_seconds=0.0)
    assert [k["kid"] for k in expired.jwks()["keys"]] == [new_kid]
    newest = expired.rotate()
    assert sorted(p.stem for p in (tmp_path / "jwks").glob("*.pem")) == [newest]
    assert [k["kid"] for k in signer.jwks()["keys"]] == [newest]
