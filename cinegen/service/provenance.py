"""Verify: what a video says of where it came from, and whether it holds.

Three independent marks, each read on its own, since each survives different things:
- the C2PA manifest (media/c2pa.py): signed, so it proves the file is unchanged since it was
  signed, and by whom; any re-encode or re-mux drops it;
- the invisible watermark in the pixels (media/watermark.py): survives re-encoding, scaling
  and cropping, and says which installation made the video;
- the MP4 tags (media/provenance.py): readable by any player, proving nothing.
`cinegen verify` and `POST /v1beta/cinegen:verify` both call `verify_video`.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509

from cinegen.core.errors import FailedPrecondition, InvalidArgument
from cinegen.media.c2pa import Credentials, content_digest, read_credentials
from cinegen.media.provenance import AI_GENERATED_KEY, read_provenance
from cinegen.media.watermark import detect_watermark
from cinegen.service.credentials import content_signer
from cinegen.service.files import visible
from cinegen.service.watermarks import made_here, watermark_origin
from cinegen.settings import Settings
from cinegen.store.db import Database

EMPTY = "The video is empty: send the bytes of an MP4 file."
NOT_MP4 = "The file is not an MP4 video: it does not start with an ISO BMFF `ftyp` box."
_CREDENTIAL_KEYS = {
    "present": "present",
    "valid": "valid",
    "trusted": "trusted",
    "state": "validationState",
    "errors": "validationErrors",
    "signer": "signer",
    "issuer": "issuer",
    "cert_serial": "certificateSerial",
    "claim_generator": "claimGenerator",
    "actions": "actions",
    "model": "model",
    "engine": "engine",
    "seed": "seed",
    "ingredients": "ingredients",
}


@dataclass
class VerifyReport:
    """The three marks of one video, and its digests."""

    size_bytes: int
    sha256: str
    content_sha256: str  # without the C2PA box: equal for the same video signed twice
    credentials: Credentials
    signed_here: bool  # signed with this installation's current certificate
    tags: dict[str, str]
    watermark: dict[str, Any] | None = None  # read_watermark's section
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """camelCase, as the API's other bodies."""
        c2pa = {_CREDENTIAL_KEYS[k]: v for k, v in self.credentials.to_json().items()}
        c2pa["signedHere"] = self.signed_here
        return {
            "sizeBytes": self.size_bytes,
            "sha256": self.sha256,
            "contentSha256": self.content_sha256,
            "c2pa": c2pa,
            "watermark": self.watermark,
            "tags": self.tags,
            "aiGenerated": self.tags.get(AI_GENERATED_KEY) == "true",
            "notes": self.notes,
        }


def check_mp4(data: bytes) -> None:
    """400 for what is not an MP4 at all, before any library parses it."""
    if not data:
        raise InvalidArgument(EMPTY)
    if len(data) < 8 or data[4:8] != b"ftyp":
        raise InvalidArgument(NOT_MP4)


def trust_anchors(settings: Settings) -> bytes | None:
    """The PEM roots a manifest's signer must chain to to be `trusted` (none: nobody is)."""
    if settings.c2pa_trust_anchors is None:
        return None
    try:
        return settings.c2pa_trust_anchors.read_bytes()
    except OSError as exc:
        raise FailedPrecondition(f"CINEGEN_C2PA_TRUST_ANCHORS cannot be read: {exc}") from exc


def _signed_here(settings: Settings, creds: Credentials) -> bool:
    """The manifest's certificate is the one this installation signs with now (the
    process's signer's: its files are not read again for every verify)."""
    if not creds.present or not creds.cert_serial:
        return False
    leaf = x509.load_pem_x509_certificates(content_signer(settings).material.chain_pem)[0]
    return creds.cert_serial == str(leaf.serial_number)


def verify_video(
    settings: Settings,
    data: bytes,
    db: Database | None = None,
    *,
    caller: str | None = None,
    everyone: bool = False,
) -> VerifyReport:
    """Read the C2PA manifest, the watermark and the tags of the MP4 `data`. With `db`, a
    watermark this installation made names its operation, if `caller` may see it (or
    `everyone`: the operator's own CLI)."""
    check_mp4(data)
    with tempfile.TemporaryDirectory(prefix="cinegen-verify-") as scratch:
        path = Path(scratch) / "video.mp4"
        path.write_bytes(data)
        with open(path, "rb") as f:
            creds = read_credentials(f, trust_anchors(settings))
        tags = read_provenance(str(path))
        report = VerifyReport(
            size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(),
            content_sha256=content_digest(data),
            credentials=creds,
            signed_here=_signed_here(settings, creds),
            tags=tags,
        )
        report.watermark = read_watermark(settings, path, db, caller, everyone)
    return report


def read_watermark(
    settings: Settings, path: Path, db: Database | None, caller: str | None, everyone: bool
) -> dict[str, Any]:
    """The watermark section: what the detector read (media/watermark.py), whether it carries
    this installation's id, and the operation that made it while `watermarks` remembers it
    (named only to a caller who may see that operation)."""
    reading = detect_watermark(str(path))
    section: dict[str, Any] = {
        "found": reading.found,
        "payload": f"{reading.payload:016x}" if reading.payload is not None else None,
        "installationId": (
            f"{reading.installation_id:06x}" if reading.installation_id is not None else None
        ),
        "score": round(reading.score, 2),
        "threshold": reading.threshold,
        "bitConfidence": round(reading.bit_confidence, 4),
        "madeHere": made_here(settings, reading),
        "operation": None,
        "sampleIndex": None,
    }
    if section["madeHere"] and db is not None and reading.payload is not None:
        for record in watermark_origin(db, reading.payload):
            op = db.get_operation(record.operation_id)
            if op is not None and (everyone or visible(op.owner, caller)):
                section["operation"] = f"models/{op.model}/operations/{op.id}"
                section["sampleIndex"] = record.sample_index
                break
    return section
