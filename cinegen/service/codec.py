"""GenerateRequest ⇄ JSON, for the operations table.

Media bytes never go into the row: the service stores them as blobs first and the JSON keeps
only the blob key, so a queued job survives a restart with its inputs.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from cinegen.core.request import GenerateRequest, MediaRef, ReferenceImage, Webhook


def _media_to_json(ref: MediaRef | None) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {
        "mime_type": ref.mime_type,
        "file_id": ref.file_id,
        "gcs_uri": ref.gcs_uri,
        "blob_key": ref.blob_key,
    }


def _media_from_json(data: dict[str, Any] | None) -> MediaRef | None:
    return MediaRef(**data) if data is not None else None


def request_to_json(req: GenerateRequest) -> dict[str, Any]:
    """A JSON-safe dict; inline bytes must already have been replaced by blob keys."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(req):
        value = getattr(req, f.name)
        if isinstance(value, MediaRef):
            out[f.name] = _media_to_json(value)
        elif f.name == "reference_images":
            out[f.name] = [
                {"image": _media_to_json(r.image), "reference_type": r.reference_type}
                for r in value
            ]
        elif isinstance(value, Webhook):
            out[f.name] = {"uris": list(value.uris), "user_metadata": value.user_metadata}
        else:
            out[f.name] = value
    return out


def request_from_json(data: dict[str, Any]) -> GenerateRequest:
    fields = dict(data)
    for name in ("image", "last_frame", "video", "mask"):
        fields[name] = _media_from_json(fields.get(name))
    fields["reference_images"] = tuple(
        ReferenceImage(image=MediaRef(**r["image"]), reference_type=r["reference_type"])
        for r in fields.get("reference_images", [])
    )
    if fields.get("webhook") is not None:
        hook = fields["webhook"]
        fields["webhook"] = Webhook(uris=tuple(hook["uris"]), user_metadata=hook["user_metadata"])
    known = {f.name for f in dataclasses.fields(GenerateRequest)}
    return GenerateRequest(**{k: v for k, v in fields.items() if k in known})
