"""C2PA content credentials: what cinegen signs, read back with c2pa-python's own Reader; the
development certificate; the operator's certificate; what a tampered or foreign file reads as;
and what stays identical between two signings of the same video."""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import av
import c2pa
import numpy as np
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from cinegen.core.errors import FailedPrecondition
from cinegen.core.request import Mode
from cinegen.engines.base import InputVideo, RenderSpec
from cinegen.media.c2pa import GENERATION_LABEL, IPTC, content_digest, read_credentials
from cinegen.media.encode import EncodedVideo, encode_clip
from cinegen.service import credentials
from cinegen.service.credentials import SigningConfigError, ensure_dev_certificate, sign_sample
from cinegen.settings import Settings
from tests.media.video_checks import clip_of, textured

W, H = 160, 90


def _encoded(path: Path, count: int = 24, shift: int = 0) -> EncodedVideo:
    base = textured(W * 3, H, seed=3)
    frames = [
        np.ascontiguousarray(base[:, (i + shift) * 2 : (i + shift) * 2 + W]) for i in range(count)
    ]
    tone = np.stack([np.sin(np.arange(count * 2000) / 20)] * 2, 1).astype(np.float32) * 0.2
    return encode_clip(clip_of(frames, tone), str(path))


def _spec(model: str = "veo-3.0-generate-001", parent: str | None = None) -> RenderSpec:
    video = None
    if parent is not None:
        video = InputVideo(path=parent, width=W, height=H, num_frames=24, fps=24, has_audio=True)
    mode = Mode.TEXT if parent is None else Mode.EXTENSION
    return RenderSpec(mode, "x", "", W, H, 24, 24, 0, True, model=model, input_video=video)


def _signed(
    settings: Settings,
    path: Path,
    engine: str = "preview",
    seed: int = 5,
    parent: str | None = None,
    shift: int = 0,
) -> Path:
    encoded = _encoded(path, shift=shift)
    signed = sign_sample(settings, encoded, engine, _spec(parent=parent), seed)
    assert signed.size_bytes == path.stat().st_size > encoded.size_bytes
    return path


def _store(path: Path) -> dict[str, Any]:
    """The manifest store as c2pa-python's Reader gives it, default settings."""
    with c2pa.Reader(str(path)) as reader:
        return json.loads(reader.json())


def _active(store: dict[str, Any]) -> dict[str, Any]:
    return store["manifests"][store["active_manifest"]]


def _assertion(manifest: dict[str, Any], label: str) -> Any:
    return next(a["data"] for a in manifest["assertions"] if a["label"] == label)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data")


def test_a_generated_video_says_created_by_which_engine_model_and_seed(
    settings: Settings, tmp_path: Path
) -> None:
    store = _store(_signed(settings, tmp_path / "a.mp4", seed=1234))
    manifest = _active(store)
    assert store["validation_state"] == "Valid"  # intact; signed, but by an untrusted CA
    assert [s["code"] for s in store["validation_status"]] == ["signingCredential.untrusted"]
    (action,) = _assertion(manifest, "c2pa.actions.v2")["actions"]
    assert action["action"] == "c2pa.created"
    assert action["digitalSourceType"] == IPTC + "algorithmicMedia"  # preview: not trained
    generator = manifest["claim_generator_info"][0]
    assert (generator["name"], generator["version"]) == ("cinegen", credentials.cinegen_version())
    generation = _assertion(manifest, GENERATION_LABEL)
    assert generation == {"model": "veo-3.0-generate-001", "engine": "preview", "seed": 1234}
    assert manifest["signature_info"]["alg"] == "Ed25519"
    assert manifest["signature_info"]["common_name"] == "cinegen development signer"


def test_a_trained_engine_is_trained_algorithmic_media(settings: Settings, tmp_path: Path) -> None:
    manifest = _active(_store(_signed(settings, tmp_path / "d.mp4", engine="diffusers")))
    (action,) = _assertion(manifest, "c2pa.actions.v2")["actions"]
    assert action["digitalSourceType"] == IPTC + "trainedAlgorithmicMedia"


def test_an_extension_opens_its_input_as_an_ingredient_that_keeps_its_manifest(
    settings: Settings, tmp_path: Path
) -> None:
    parent = _signed(settings, tmp_path / "parent.mp4", seed=1)
    child = _signed(
        settings, tmp_path / "child.mp4", engine="diffusers", seed=2, parent=str(parent), shift=5
    )
    store = _store(child)
    manifest = _active(store)
    assert store["validation_state"] == "Valid"
    opened, edited = _assertion(manifest, "c2pa.actions.v2")["actions"]
    assert opened["action"] == "c2pa.opened"
    assert opened["parameters"]["ingredients"][0]["url"].endswith("c2pa.ingredient.v3")
    assert edited["action"] == "c2pa.edited"
    assert edited["digitalSourceType"] == IPTC + "compositeWithTrainedAlgorithmicMedia"
    (ingredient,) = manifest["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    own = store["manifests"][ingredient["active_manifest"]]  # the input's manifest, kept
    assert _assertion(own, GENERATION_LABEL)["seed"] == 1
    report = read_credentials(child.open("rb"))
    assert report.ingredients[0]["generation"]["seed"] == 1
    assert report.ingredients[0]["has_manifest"] is True


def test_an_extension_signed_twice_is_the_same_file_wherever_its_input_lies(
    settings: Settings, tmp_path: Path
) -> None:
    """A job copies its input into a scratch directory of its own each time: the parent
    counts by its bytes, so a repeat of the same extension is the same file."""
    parent = _signed(settings, tmp_path / "parent.mp4", seed=1)
    files = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        copy = tmp_path / name / "input.mp4"
        copy.write_bytes(parent.read_bytes())
        files.append(_signed(settings, tmp_path / f"{name}.mp4", parent=str(copy), shift=5))
    assert files[0].read_bytes() == files[1].read_bytes()


def test_a_foreign_mp4_has_no_manifest(tmp_path: Path) -> None:
    path = tmp_path / "plain.mp4"
    _encoded(path)
    report = read_credentials(path.open("rb"))
    assert report.present is False and report.valid is False


def test_a_tampered_video_fails_its_hash(settings: Settings, tmp_path: Path) -> None:
    data = bytearray(_signed(settings, tmp_path / "t.mp4").read_bytes())
    mdat = data.find(b"mdat")
    for offset in (200, 201, 202):
        data[mdat + offset] ^= 0xFF
    report = read_credentials(io.BytesIO(bytes(data)))
    assert report.present and not report.valid and report.state == "Invalid"
    assert "assertion.bmffHash.mismatch" in report.errors


def _packets(data: bytes) -> list[bytes]:
    with av.open(io.BytesIO(data)) as container:
        return [bytes(p) for p in container.demux() if p.size]


def test_the_same_video_signed_twice_is_the_same_file(settings: Settings, tmp_path: Path) -> None:
    """The second signing puts the kept manifest box in place of its freshly salted one."""
    one = _signed(settings, tmp_path / "1.mp4").read_bytes()
    two = _signed(settings, tmp_path / "2.mp4").read_bytes()
    assert hashlib.sha256(one).hexdigest() == hashlib.sha256(two).hexdigest()
    assert read_credentials(io.BytesIO(two)).valid
    other = _signed(settings, tmp_path / "3.mp4", shift=1).read_bytes()
    assert content_digest(other) != content_digest(one)  # another video


def test_without_the_kept_box_two_signings_differ_only_inside_it(
    settings: Settings, tmp_path: Path
) -> None:
    """c2pa-rs salts its assertions at random: once the kept box is gone (pruned with the
    videos), a new signing differs, but only in the C2PA box; the video and audio packets,
    and every other byte, are the same."""
    one = _signed(settings, tmp_path / "1.mp4").read_bytes()
    cache = credentials.content_signer(settings).cache
    assert cache is not None
    cache.max_age = -1.0
    assert cache.prune() == 1
    two = _signed(settings, tmp_path / "2.mp4").read_bytes()
    assert len(one) == len(two) and one != two
    assert content_digest(one) == content_digest(two)
    assert _packets(one) == _packets(two)
    box = one.find(b"uuid") - 4
    size = int.from_bytes(one[box : box + 4], "big")
    differing = [i for i in range(len(one)) if one[i] != two[i]]
    assert box <= differing[0] and differing[-1] < box + size
    assert read_credentials(io.BytesIO(two)).valid


def test_the_dev_certificate_is_made_once_private_and_not_self_issued(tmp_path: Path) -> None:
    data = tmp_path / "data"
    results: list[tuple[Path, Path]] = []
    threads = [
        threading.Thread(target=lambda: results.append(ensure_dev_certificate(data)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    chain, key = results[0]
    assert all(r == results[0] for r in results)
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    leaf, ca = x509.load_pem_x509_certificates(chain.read_bytes())
    assert leaf.issuer == ca.subject != leaf.subject
    first = hashlib.sha256(key.read_bytes()).hexdigest()
    ensure_dev_certificate(data)
    assert hashlib.sha256(key.read_bytes()).hexdigest() == first
    assert sorted(p.name for p in data.iterdir()) == ["c2pa"]  # no scratch dir left


def _operator_chain(folder: Path) -> tuple[Path, Path, bytes]:
    """An ES256 CA and end-entity certificate, as a CA would issue (chain, key, CA PEM)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Operator Root")])
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Example Studio"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Inc"),
        ]
    )

    def cert(subject: x509.Name, public: Any, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(ca_name)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        usage = dict.fromkeys(
            (
                "content_commitment",
                "key_encipherment",
                "data_encipherment",
                "key_agreement",
                "encipher_only",
                "decipher_only",
            ),
            False,
        )
        builder = builder.add_extension(
            x509.KeyUsage(digital_signature=not ca, key_cert_sign=ca, crl_sign=ca, **usage),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        if not ca:
            builder = builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
            ).add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        return builder.sign(ca_key, hashes.SHA256())

    root = cert(ca_name, ca_key.public_key(), True)
    leaf = cert(name, key.public_key(), False)
    pem = serialization.Encoding.PEM
    chain_path, key_path = folder / "chain.pem", folder / "key.pem"
    chain_path.write_bytes(leaf.public_bytes(pem) + root.public_bytes(pem))
    key_path.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return chain_path, key_path, root.public_bytes(pem)


def test_the_operators_certificate_signs_and_its_root_makes_it_trusted(tmp_path: Path) -> None:
    chain, key, root = _operator_chain(tmp_path)
    settings = Settings(data_dir=tmp_path / "data", c2pa_cert=chain, c2pa_key=key)
    path = _signed(settings, tmp_path / "o.mp4")
    assert not (tmp_path / "data" / "c2pa").exists()  # no development chain made
    untrusted = read_credentials(path.open("rb"))
    assert untrusted.valid and not untrusted.trusted and untrusted.signer == "Example Studio"
    trusted = read_credentials(path.open("rb"), trust_anchors=root)
    assert trusted.valid and trusted.trusted and trusted.state == "Trusted"
    assert _active(_store(path))["signature_info"]["alg"] == "Es256"


def test_half_an_operator_certificate_is_refused(tmp_path: Path) -> None:
    chain, _key, _root = _operator_chain(tmp_path)
    settings = Settings(data_dir=tmp_path / "data", c2pa_cert=chain)
    with pytest.raises(FailedPrecondition):
        credentials.signing_material(settings)


def test_a_certificate_c2pa_refuses_fails_at_start_not_in_a_job(tmp_path: Path) -> None:
    """A self-signed end-entity certificate (its own issuer): c2pa-rs will not sign with it,
    and the signer's start-up probe says so."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Self Signed")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(pem))
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    settings = Settings(
        data_dir=tmp_path / "data", c2pa_cert=tmp_path / "c.pem", c2pa_key=tmp_path / "k.pem"
    )
    with pytest.raises(SigningConfigError, match="cannot sign"):
        credentials.start_signing(settings)
