"""The invisible watermark's payload, and what it points back to (README "Invisible watermark").

Every sample is marked (media/watermark.py) with 64 bits: this installation's 24-bit id (made
at random at first start into `data_dir/installation-id`, 0600) and 40 bits of a hash of the
sample's identity (model, the request's canonical JSON with each input named by the sha256
of its bytes, seed, sample index). Not the random
operation id: the same request and seed must keep giving byte-identical files. The table
`watermarks` (migration 0009) records payload → (operation, sample index), so that verify can
name the operation that made a file while it is known.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

from cinegen.core.operation import Operation
from cinegen.core.request import MediaRef
from cinegen.media.clip import Clip
from cinegen.media.watermark import (
    INSTALLATION_BITS,
    SAMPLE_BITS,
    WatermarkReading,
    watermarked,
)
from cinegen.service.operations import OperationService
from cinegen.service.webhook_crypto import _write_once
from cinegen.settings import Settings
from cinegen.store.db import Database, WatermarkRecord, WatermarkStore

INSTALLATION_FILE = "installation-id"
MEDIA_FIELDS = ("image", "last_frame", "video", "mask")
NOT_IDENTITY = frozenset({"dialect", "webhook", "labels", "storage_uri", "seed"})
"""Request fields that do not change the video (nor do `_`-prefixed ones: a request id):
left out of the sample's identity, so that they do not change its bytes either. `seed` too:
the sample's own seed is in the identity, and a drawn seed asked for again must match."""


def installation_id(settings: Settings) -> int:
    """This installation's 24-bit id, made at random into the data dir at first use."""
    return _installation_id(Path(settings.data_dir).resolve())


@lru_cache(maxsize=8)
def _installation_id(data_dir: Path) -> int:
    path = data_dir / INSTALLATION_FILE
    if not path.exists():
        _write_once(path, f"{secrets.randbits(INSTALLATION_BITS):06x}\n".encode("ascii"))
    text = path.read_text("ascii").strip()
    value = int(text, 16)
    if not 0 <= value < 1 << INSTALLATION_BITS:
        raise ValueError(f"{path} holds {text!r}, not a {INSTALLATION_BITS}-bit hex id")
    return value


def sample_payload(
    installation: int, model: str, request: dict[str, Any], seed: int, index: int
) -> int:
    """The 64-bit payload of one sample: the installation id, then 40 bits of the sample's
    identity (the same request and seed give the same payload, so the same bytes)."""
    fields = {k: v for k, v in request.items() if k not in NOT_IDENTITY and k[:1] != "_"}
    identity = json.dumps(
        [model, fields, seed, index], sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    digest = hashlib.sha256(identity.encode("utf-8")).digest()
    sample = int.from_bytes(digest[:8], "big") >> (64 - SAMPLE_BITS)
    return installation << SAMPLE_BITS | sample


def with_media_digests(service: OperationService, request: dict[str, Any]) -> dict[str, Any]:
    """The stored request with each input image, mask and video named by the sha256 of its
    bytes: where the service keeps them (a blob key per upload, a file id) differs from one
    request to the next, and must not change the payload, nor so the pixels."""
    out = dict(request)
    for name in MEDIA_FIELDS:
        if out.get(name):
            out[name] = _digest(service, out[name])
    out["reference_images"] = [
        {**ref, "image": _digest(service, ref["image"])} for ref in out.get("reference_images", [])
    ]
    return out


def _digest(service: OperationService, media: dict[str, Any]) -> str:
    data = service.inputs.read(MediaRef(**media))
    return hashlib.sha256(data).hexdigest()


class SampleMarker:
    """Marks a job's samples, each with its payload, recorded in `watermarks`. The request's
    identity (its inputs named by digest) is worked out once per job, not per sample. With
    `CINEGEN_WATERMARK=false` the clips pass as they are."""

    def __init__(self, service: OperationService, op: Operation) -> None:
        self.service, self.op = service, op
        self.request = (
            with_media_digests(service, op.request) if service.settings.watermark else None
        )

    def __call__(self, index: int, seed: int, clip: Clip) -> Clip:
        if self.request is None:
            return clip
        installation = installation_id(self.service.settings)
        payload = sample_payload(installation, self.op.model, self.request, seed, index)
        WatermarkStore(self.service.db).record(payload, self.op.id, index)
        return watermarked(clip, payload)


def watermark_origin(db: Database, payload: int) -> list[WatermarkRecord]:
    """The samples this server marked with `payload`, newest first (several when the same
    request and seed were asked for again; none when made elsewhere or forgotten)."""
    return WatermarkStore(db).lookup(payload)


def made_here(settings: Settings, reading: WatermarkReading) -> bool:
    """The watermark was found and carries this installation's id."""
    return reading.found and reading.installation_id == installation_id(settings)
