"""The certificate cinegen signs its videos with, and signing one sample.

An operator sets CINEGEN_C2PA_CERT (a PEM chain, end-entity first) and CINEGEN_C2PA_KEY (its
private key, PEM): that is the identity a verifier sees, and trusts when the chain ends at a
C2PA trust-list root. Without them, cinegen makes a development chain in
`<data_dir>/c2pa/` at first start: a CA and an end-entity certificate under it, Ed25519. Two,
not one self-signed certificate, because c2pa-rs refuses to sign with a certificate that is
its own issuer or has no suitable extended key usage (it accepts emailProtection). Ed25519
because its signatures are deterministic (ES256's are random). The CA is trusted by nobody,
so a verifier reports such a video as signed but `untrusted`: proof that the file has not
changed since this installation made it, not of who the installation is.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import tempfile
import threading
from dataclasses import replace
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import c2pa
import numpy as np
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cinegen.core.errors import FailedPrecondition
from cinegen.engines.base import RenderSpec
from cinegen.media.c2pa import ContentSigner, Generation, ManifestCache, SigningMaterial
from cinegen.media.clip import FPS, Clip
from cinegen.media.encode import EncodedVideo, encode_clip
from cinegen.settings import Settings
from cinegen.store.blobs import private_dir

DEV_DIR = "c2pa"
DEV_CHAIN = "dev-chain.pem"
DEV_KEY = "dev-key.pem"
CACHE_DIR = "c2pa-manifests"  # media/c2pa.py ManifestCache
DEV_ORGANIZATION = "cinegen development certificate (not trusted)"
_DEV_YEARS = 20
_lock = threading.Lock()


class SigningConfigError(FailedPrecondition):
    """The C2PA certificate or key is missing, unreadable, or cannot sign (start-up says so)."""


@cache
def cinegen_version() -> str:
    try:
        return version("cinegen")
    except PackageNotFoundError:
        return "0.0.0"


def signing_material(settings: Settings) -> SigningMaterial:
    """The operator's certificate and key, or the development chain (made if missing)."""
    if settings.c2pa_cert is not None or settings.c2pa_key is not None:
        return _operator_material(settings)
    chain, key = ensure_dev_certificate(settings.data_dir)
    return SigningMaterial(
        chain_pem=chain.read_bytes(),
        key_pem=key.read_bytes(),
        alg="ed25519",
        tsa_url=settings.c2pa_tsa_url,
        development=True,
    )


def _operator_material(settings: Settings) -> SigningMaterial:
    if settings.c2pa_cert is None or settings.c2pa_key is None:
        raise SigningConfigError("Set both CINEGEN_C2PA_CERT and CINEGEN_C2PA_KEY, or neither.")
    try:
        chain = settings.c2pa_cert.read_bytes()
        key_pem = settings.c2pa_key.read_bytes()
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningConfigError(f"The C2PA certificate or key cannot be read: {exc}") from exc
    return SigningMaterial(
        chain_pem=chain, key_pem=key_pem, alg=_alg_for(key), tsa_url=settings.c2pa_tsa_url
    )


def _alg_for(key: object) -> str:
    """c2pa-rs's algorithm name for a private key."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, ec.EllipticCurvePrivateKey):
        names = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in names:
            return names[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"
    raise SigningConfigError(
        "The C2PA key must be Ed25519, ECDSA (P-256, P-384, P-521) or RSA (PSS)."
    )


def ensure_dev_certificate(data_dir: Path) -> tuple[Path, Path]:
    """`<data_dir>/c2pa/dev-chain.pem` and `dev-key.pem` (0600), made once. Made in a
    scratch directory renamed into place, so that two processes starting together end up
    with one chain and its own key, never a key from one and a chain from the other."""
    folder = data_dir / DEV_DIR
    chain, key = folder / DEV_CHAIN, folder / DEV_KEY
    with _lock:
        if chain.is_file() and key.is_file():
            return chain, key
        private_dir(data_dir)
        scratch = Path(tempfile.mkdtemp(prefix=".c2pa-", dir=data_dir))
        chain_pem, key_pem = make_dev_chain()
        (scratch / DEV_CHAIN).write_bytes(chain_pem)
        fd = os.open(scratch / DEV_KEY, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        try:
            os.rename(scratch, folder)
        except OSError:  # another process made it first: keep theirs
            for name in (DEV_CHAIN, DEV_KEY):
                (scratch / name).unlink()
            with contextlib.suppress(OSError):
                scratch.rmdir()
    if not (chain.is_file() and key.is_file()):
        raise SigningConfigError(f"{folder} exists but holds no development certificate.")
    return chain, key


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORGANIZATION),
        ]
    )


def make_dev_chain() -> tuple[bytes, bytes]:
    """(chain PEM: end-entity then CA, end-entity key PEM), Ed25519, valid for 20 years."""
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    until = now + datetime.timedelta(days=365 * _DEV_YEARS)
    ca_key, leaf_key = ed25519.Ed25519PrivateKey.generate(), ed25519.Ed25519PrivateKey.generate()
    ca_name, leaf_name = _name("cinegen development CA"), _name("cinegen development signer")
    ca = (
        _base(ca_name, ca_name, ca_key.public_key(), now, until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(issuer=True), critical=True)
        .sign(ca_key, None)
    )
    leaf = (
        _base(leaf_name, ca_name, leaf_key.public_key(), now, until)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(issuer=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, None)
    )
    pem = serialization.Encoding.PEM
    key_pem = leaf_key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return leaf.public_bytes(pem) + ca.public_bytes(pem), key_pem


def _key_usage(*, issuer: bool) -> x509.KeyUsage:
    """A CA signs certificates and CRLs; the end entity signs manifests, nothing else."""
    return x509.KeyUsage(
        digital_signature=not issuer,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=issuer,
        crl_sign=issuer,
        encipher_only=False,
        decipher_only=False,
    )


def _base(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ed25519.Ed25519PublicKey,
    now: datetime.datetime,
    until: datetime.datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(until)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


_signers: dict[tuple[str, str, str, str], ContentSigner] = {}


def content_signer(settings: Settings) -> ContentSigner:
    """The process's signer for these settings, made at first use."""
    key = (
        str(settings.data_dir),
        str(settings.c2pa_cert),
        str(settings.c2pa_key),
        settings.c2pa_tsa_url,
    )
    with _lock:
        signer = _signers.get(key)
    if signer is None:
        material = signing_material(settings)
        cache = ManifestCache(settings.data_dir / CACHE_DIR, settings.retention_hours * 3600)
        cache.prune()
        signer = ContentSigner(material, cache)
        _self_test(signer)
        with _lock:
            signer = _signers.setdefault(key, signer)
    return signer


def _self_test(signer: ContentSigner) -> None:
    """Sign a one-frame video once: a certificate c2pa-rs refuses (wrong key usage, a key
    that is not the certificate's, a self-issued signer) fails here, at start, not in every
    job."""
    with tempfile.TemporaryDirectory(prefix="cinegen-c2pa-") as scratch:
        probe = Path(scratch) / "probe.mp4"
        frame = np.zeros((16, 16, 3), np.uint8)
        encode_clip(
            Clip(frames=iter([frame]), num_frames=1, width=16, height=16, fps=FPS), str(probe)
        )
        try:
            signer.sign(
                probe, Path(scratch) / "signed.mp4", Generation("probe", "", 0, "0"), keep=False
            )
        except c2pa.C2paError as exc:
            raise SigningConfigError(f"The C2PA certificate cannot sign: {exc}") from exc


def start_signing(settings: Settings) -> None:
    """At start-up: make the development certificate, or check the operator's."""
    content_signer(settings)


def sign_sample(
    settings: Settings, encoded: EncodedVideo, engine: str, spec: RenderSpec, seed: int
) -> EncodedVideo:
    """Sign a freshly encoded sample in place, before it is stored (so that the sha256 the
    server records is the signed file's): its C2PA manifest (media/c2pa.py) says which
    engine, model and seed made it, and from which input video for an extension or edit."""
    parent = spec.input_video.path if spec.input_video is not None else None
    gen = Generation(engine, spec.model, seed, cinegen_version(), parent)
    size = content_signer(settings).sign_in_place(Path(encoded.path), gen)
    return replace(encoded, size_bytes=size)
