"""C2PA content credentials: sign an MP4 with a manifest that says how cinegen made it, and
read a manifest back (c2pa-python, the C2PA reference library c2pa-rs underneath).

What a manifest holds:
- a `c2pa.created` action with an IPTC `digitalSourceType`. The diffusers engine's videos come
  from trained models: `trainedAlgorithmicMedia`. The preview engine draws its scenes with
  classical, hand-written algorithms (noise fields, warps, a soundtrack synthesiser) and was
  trained on nothing: IPTC's `algorithmicMedia` ("created purely by an algorithm not based on
  any sampled training data") is the honest value for it.
- an extension or an edit starts from the user's video instead: `c2pa.opened` of that video
  (an ingredient, `parentOf`, keeping its own manifest when it has one), then `c2pa.edited`
  with the composite type (`compositeWithTrainedAlgorithmicMedia`, or `compositeSynthetic`
  for the preview engine: a composite with algorithmic, untrained elements).
- the claim generator `cinegen/<version>`, and the assertion `org.cinegen.generation`: the
  model id, the engine and the seed.

Determinism: c2pa-rs puts 16 random bytes of salt in every assertion box (its `DefaultSalt`;
no setting turns it off), so the claim, and with it the signature, differ from one signing to
the next even with Ed25519, whose signature is otherwise deterministic. Everything else is
made to repeat: the manifest label and instance ids derive from the unsigned file and the
manifest, no claim time is written (none exists without a time-stamp authority), and the
manifest box has the same size each time. So two signings of the same video are identical
outside the C2PA `uuid` box: the same video and audio streams, the same `moov`, byte for
byte (`content_digest` hashes exactly that). `ManifestCache` closes the rest of the gap: it
keeps the manifest box made for an (unsigned file, manifest, certificate), and a later
signing of the same puts that box back in place of its freshly salted one (valid, since the
box's hash binding covers every byte but the box itself). The same request and seed then give
the same file, byte for byte, on the same installation while the entry lives (as long as
videos are kept); across workers with their own data dirs, or after that, the same video and
audio streams with another manifest box.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import c2pa

MIME = "video/mp4"
GENERATION_LABEL = "org.cinegen.generation"
IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
# The C2PA manifest store's box in ISO BMFF: `uuid` with this extended type.
C2PA_BOX_UUID = uuid.UUID("d8fec3d6-1b0e-483c-9297-5828877ec481").bytes
_UNTRUSTED = "signingCredential.untrusted"
_INGREDIENT_ID = "input"


@dataclass(frozen=True)
class SigningMaterial:
    """A certificate chain (PEM, end-entity first) and its private key (PEM, PKCS#8)."""

    chain_pem: bytes
    key_pem: bytes
    alg: str  # c2pa-rs's name: es256, es384, ps256, ed25519 ...
    tsa_url: str = ""
    development: bool = False  # the self-signed development chain, trusted by nobody


@dataclass(frozen=True)
class Generation:
    """What the manifest says about how the video was made."""

    engine: str
    model: str
    seed: int
    version: str
    parent: str | None = None  # the input video of an extension or an edit


def source_type(engine: str, *, edited: bool) -> str:
    """The IPTC digitalSourceType for a video from `engine` (why: the module docstring)."""
    trained = engine != "preview"
    if edited:
        return IPTC + ("compositeWithTrainedAlgorithmicMedia" if trained else "compositeSynthetic")
    return IPTC + ("trainedAlgorithmicMedia" if trained else "algorithmicMedia")


def manifest_definition(gen: Generation, seed_of_ids: str) -> dict[str, Any]:
    """The manifest for c2pa's Builder; `seed_of_ids` (a digest of the unsigned file) makes
    the label and instance ids repeat for the same file instead of being random."""
    agent = {"name": "cinegen", "version": gen.version}
    created: dict[str, Any] = {
        "action": "c2pa.created",
        "digitalSourceType": source_type(gen.engine, edited=False),
        "softwareAgent": agent,
    }
    actions: list[dict[str, Any]] = [created]
    if gen.parent is not None:
        actions = [
            {"action": "c2pa.opened", "parameters": {"ingredientIds": [_INGREDIENT_ID]}},
            {
                "action": "c2pa.edited",
                "digitalSourceType": source_type(gen.engine, edited=True),
                "softwareAgent": agent,
                "description": f"extended or edited by the {gen.engine} engine",
            },
        ]
    return {
        "claim_generator_info": [agent],
        "title": "cinegen.mp4",
        "format": MIME,
        "label": f"urn:c2pa:{_uuid_from(seed_of_ids, 'label')}",
        "instance_id": f"xmp:iid:{_uuid_from(seed_of_ids, 'instance')}",
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": actions}},
            {
                "label": GENERATION_LABEL,
                "data": {"model": gen.model, "engine": gen.engine, "seed": gen.seed},
            },
        ],
    }


def _uuid_from(seed: str, purpose: str) -> uuid.UUID:
    """A v4-shaped UUID derived from `seed` (the same file gives the same ids)."""
    digest = bytearray(hashlib.sha256(f"{purpose}:{seed}".encode()).digest()[:16])
    return uuid.UUID(bytes=bytes(digest), version=4)


class ContentSigner:
    """Signs MP4s with one certificate; the c2pa Signer is made once and reused (thread-safe:
    c2pa-python serialises calls on it)."""

    def __init__(self, material: SigningMaterial, cache: ManifestCache | None = None) -> None:
        self.material = material
        self.cache = cache
        info = c2pa.C2paSignerInfo(
            material.alg.encode(), material.chain_pem, material.key_pem, material.tsa_url or None
        )
        self._signer = c2pa.Signer.from_info(info)

    def sign(self, source: Path, dest: Path, gen: Generation, *, keep: bool = True) -> None:
        """Write `source` signed to `dest` (a different path); `keep`: use the cache."""
        # What the ids and the kept box are derived from: the parent by its bytes, not its
        # path (a job's scratch directory is new each time).
        parent_digest = _file_digest(Path(gen.parent)) if gen.parent is not None else None
        facts = [gen.engine, gen.model, gen.seed, gen.version, parent_digest, _file_digest(source)]
        definition = json.dumps(facts)
        builder = c2pa.Builder(manifest_definition(gen, definition))
        try:
            with contextlib.ExitStack() as stack:
                if gen.parent is not None:
                    parent = stack.enter_context(open(gen.parent, "rb"))
                    ingredient = {
                        "title": Path(gen.parent).name,
                        "relationship": "parentOf",
                        "label": _INGREDIENT_ID,
                        "instance_id": f"xmp:iid:{_uuid_from(definition, 'ingredient')}",
                    }
                    builder.add_ingredient(ingredient, MIME, parent)
                src = stack.enter_context(open(source, "rb"))
                out = stack.enter_context(open(dest, "w+b"))
                builder.sign(self._signer, MIME, src, out)
                if self.cache is not None and keep:
                    key = json.dumps([definition, self.material.chain_pem.decode()])
                    self.cache.settle(hashlib.sha256(key.encode()).hexdigest(), out)
        finally:
            builder.close()

    def sign_in_place(self, path: Path, gen: Generation) -> int:
        """Sign `path` (replaced atomically); returns the signed file's size."""
        tmp = path.with_name(path.name + ".c2pa.tmp")
        try:
            self.sign(path, tmp, gen)
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return path.stat().st_size


class ManifestCache:
    """The manifest boxes this installation made, by what they were made for (the module
    docstring says why): one file of a few KB per signed video, pruned after `max_age`."""

    def __init__(self, folder: Path, max_age_seconds: float) -> None:
        self.folder = folder
        self.max_age = max_age_seconds
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def settle(self, key: str, out: BinaryIO) -> None:
        """Put the box kept under `key` in place of `out`'s, or keep `out`'s for next time."""
        span = c2pa_box_span(out)
        if span is None:
            return
        start, end = span
        entry = self.folder / f"{key}.box"
        out.seek(start)
        fresh = out.read(end - start)
        tmp = self.folder / f".{key}.{os.getpid()}.{threading.get_ident()}"
        tmp.write_bytes(fresh)
        try:
            os.link(tmp, entry)  # first signing of this video: its box is the one kept
            return
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        kept = entry.read_bytes()
        if len(kept) == len(fresh) and kept[:24] == fresh[:24]:
            out.seek(start)
            out.write(kept)
            out.flush()
            with contextlib.suppress(OSError):
                os.utime(entry)

    def prune(self) -> int:
        """Delete the entries older than `max_age`; returns how many."""
        cutoff = time.time() - self.max_age
        gone = 0
        for entry in self.folder.glob("*.box"):
            with contextlib.suppress(OSError):
                if entry.stat().st_mtime < cutoff:
                    entry.unlink()
                    gone += 1
        return gone


def c2pa_box_span(f: BinaryIO) -> tuple[int, int] | None:
    """(start, end) of the top-level C2PA box of the MP4 in `f`, reading box headers only."""
    f.seek(0, os.SEEK_END)
    total = f.tell()
    pos = 0
    while pos + 8 <= total:
        f.seek(pos)
        header = f.read(24)
        size, kind = struct.unpack(">I4s", header[:8])
        if size == 1:
            size = struct.unpack(">Q", header[8:16])[0]
        elif size == 0:
            size = total - pos
        if size < 8:
            return None
        if kind == b"uuid" and header[8:24] == C2PA_BOX_UUID:
            return pos, pos + size
        pos += size
    return None


def _file_digest(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# ---------------------------------------------------------------- reading


@dataclass
class Credentials:
    """What a file's C2PA manifest says, and whether it holds."""

    present: bool
    valid: bool = False
    trusted: bool = False
    state: str = ""  # c2pa-rs: Invalid | Valid | Trusted
    errors: list[str] = field(default_factory=list)  # failure codes, "untrusted" aside
    signer: str = ""  # the certificate's common name
    issuer: str = ""  # the certificate's organisation
    cert_serial: str = ""
    claim_generator: str = ""
    actions: list[dict[str, Any]] = field(default_factory=list)
    model: str | None = None
    engine: str | None = None
    seed: int | None = None
    ingredients: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _reader_context(trust_anchors: bytes | None) -> c2pa.Context:
    """Reading never goes to the network (no remote manifest, no OCSP): a verify endpoint
    must not be turned into a fetcher of attacker-chosen URLs."""
    config: dict[str, Any] = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
    if trust_anchors:
        config["trust"] = {"trust_anchors": trust_anchors.decode()}
    return c2pa.Context(settings=c2pa.Settings.from_dict(config))


def read_credentials(source: BinaryIO, trust_anchors: bytes | None = None) -> Credentials:
    """The manifest of the MP4 in `source` (seekable); `present=False` when it has none."""
    source.seek(0)
    try:
        with c2pa.Reader(MIME, source, context=_reader_context(trust_anchors)) as reader:
            store = json.loads(reader.json())
    except c2pa.C2paError.ManifestNotFound:
        return Credentials(present=False)
    except c2pa.C2paError as exc:  # a manifest box that does not parse: present, invalid
        return Credentials(present=True, state="Invalid", errors=[f"manifest.unreadable: {exc}"])
    return _credentials_of(store)


def _credentials_of(store: dict[str, Any]) -> Credentials:
    label = store.get("active_manifest")
    manifest = store.get("manifests", {}).get(label) if label else None
    if manifest is None:
        return Credentials(present=False)
    state = str(store.get("validation_state", ""))
    failures = [s.get("code", "") for s in store.get("validation_status") or []]
    generation = _assertion(manifest, GENERATION_LABEL) or {}
    actions = _assertion(manifest, "c2pa.actions.v2") or _assertion(manifest, "c2pa.actions")
    info = manifest.get("signature_info") or {}
    generator = (manifest.get("claim_generator_info") or [{}])[0]
    return Credentials(
        present=True,
        valid=state in ("Valid", "Trusted"),
        trusted=state == "Trusted" and _UNTRUSTED not in failures,
        state=state,
        errors=[code for code in failures if code != _UNTRUSTED],
        signer=str(info.get("common_name", "")),
        issuer=str(info.get("issuer", "")),
        cert_serial=str(info.get("cert_serial_number", "")),
        claim_generator=f"{generator.get('name', '')}/{generator.get('version', '')}",
        actions=list((actions or {}).get("actions", [])),
        model=generation.get("model"),
        engine=generation.get("engine"),
        seed=generation.get("seed"),
        ingredients=[_ingredient(i, store) for i in manifest.get("ingredients", [])],
    )


def _assertion(manifest: dict[str, Any], label: str) -> dict[str, Any] | None:
    for assertion in manifest.get("assertions", []):
        if assertion.get("label") == label:
            data = assertion.get("data")
            return data if isinstance(data, dict) else None
    return None


def _ingredient(ingredient: dict[str, Any], store: dict[str, Any]) -> dict[str, Any]:
    """An ingredient in brief: its title, relationship, and its own manifest's generation."""
    own = ingredient.get("active_manifest")
    manifest = store.get("manifests", {}).get(own) if own else None
    generation = _assertion(manifest, GENERATION_LABEL) if manifest else None
    return {
        "title": ingredient.get("title", ""),
        "relationship": ingredient.get("relationship", ""),
        "has_manifest": manifest is not None,
        "generation": generation,
    }


# ---------------------------------------------------------------- digests


def _top_level_boxes(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(start, end, type) of each top-level ISO BMFF box."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1 and pos + 16 <= len(data):
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        elif size == 0:
            size = len(data) - pos
        if size < 8:
            return
        yield pos, min(pos + size, len(data)), kind
        pos += size


def is_c2pa_box(data: bytes, start: int, kind: bytes) -> bool:
    return kind == b"uuid" and data[start + 8 : start + 24] == C2PA_BOX_UUID


def content_digest(data: bytes) -> str:
    """sha256 of the file without its C2PA manifest box: equal for two signings of the same
    video (the module docstring says why the box itself differs)."""
    digest = hashlib.sha256()
    for start, end, kind in _top_level_boxes(data):
        if not is_c2pa_box(data, start, kind):
            digest.update(data[start:end])
    return digest.hexdigest()
