"""Vertex AI wire ⇄ core: resource names, and an Operation rendered the way the Vertex SDKs
parse it (`response.videos[]` with `bytesBase64Encoded`, or `gcsUri` after a `storageUri`).

The request body is translated by the Gemini dialect's `to_request(..., dialect="vertex")`:
the envelope is the same, only the rules (`sampleCount` up to 4) and the rendering differ.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from collections.abc import Callable
from contextlib import closing
from typing import Any, BinaryIO

from cinegen.api.lro import render_lro, timestamp
from cinegen.core.errors import InvalidArgument
from cinegen.core.operation import Operation, Sample, State
from cinegen.store.gcs import sample_uri

RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
METADATA_TYPE = "type.googleapis.com/google.cloud.aiplatform.v1.GenericOperationMetadata"
PUBLISHER = "google"

_NAME = re.compile(
    r"^(?P<prefix>projects/[^/]+/locations/[^/]+/)?"
    r"publishers/(?P<publisher>[^/]+)/models/(?P<model>[^/]+)/operations/(?P<id>[^/]+)$"
)


def resource_prefix(project: str | None, location: str | None) -> str:
    """`projects/P/locations/L/` when the URL carried them, else "" (Vertex express)."""
    if project and location:
        return f"projects/{project}/locations/{location}/"
    return ""


def operation_name(op: Operation) -> str:
    """The name the create returned; the SDKs cut the model resource out of it to poll."""
    return f"{op.resource_prefix}publishers/{PUBLISHER}/models/{op.model}/operations/{op.id}"


def parse_operation_name(name: str) -> tuple[str, str, str]:
    """`[projects/P/locations/L/]publishers/google/models/M/operations/ID` → (prefix, M, ID)."""
    match = _NAME.match(name.strip())
    if not match or match.group("publisher") != PUBLISHER:
        raise InvalidArgument(
            f"Invalid operation name `{name}`: expected "
            "`[projects/PROJECT/locations/LOCATION/]publishers/google/models/MODEL/operations/ID`, "
            "the name the predictLongRunning call returned."
        )
    return match.group("prefix") or "", match.group("model"), match.group("id")


_INTEGER_PARAMETERS = ("sampleCount", "seed", "durationSeconds", "fps")
_INTEGER_TEXT = re.compile(r"^[0-9]{1,10}$")


def coerce_proto_integers(payload: Any) -> Any:
    """Vertex parses JSON the protobuf way, where an integer may be sent as a string: the
    seed's own sample sends `"sampleCount": "RESPONSE_COUNT"` quoted. Digit strings in the
    integer parameters become numbers; anything else is left for the rules to refuse."""
    if not isinstance(payload, dict) or not isinstance(payload.get("parameters"), dict):
        return payload
    params = dict(payload["parameters"])
    for key in _INTEGER_PARAMETERS:
        value = params.get(key)
        if isinstance(value, str) and _INTEGER_TEXT.match(value.strip()):
            params[key] = int(value.strip())
    return {**payload, "parameters": params}


def render_metadata(op: Operation) -> dict[str, Any]:
    """Vertex's generic LRO metadata, plus cinegen's progress, seed and engine notes."""
    return {
        "@type": METADATA_TYPE,
        "genericMetadata": {
            "createTime": timestamp(op.create_time),
            "updateTime": timestamp(op.update_time),
        },
        "progressPercent": round(op.progress, 1),
        "state": op.state.name,
        "seed": op.seed,
        **({"notes": op.notes} if op.notes else {}),
    }


VideoBytes = Callable[[Sample], bytes]
VideoStream = Callable[[Sample], BinaryIO]
Inline = Callable[[Sample], str]

_BASE64_CHUNK = 3 * (1 << 18)  # a multiple of 3: the chunks' base64 concatenate to the whole's


def render_videos(op: Operation, video_bytes: VideoBytes) -> list[dict[str, Any]]:
    """`gcsUri` when the request named a `storageUri`, else the MP4 inline as base64."""
    return _videos(op, lambda sample: base64.b64encode(video_bytes(sample)).decode())


def _videos(op: Operation, inline: Inline) -> list[dict[str, Any]]:
    storage_uri = op.request.get("storage_uri")
    videos = []
    for index, sample in enumerate(op.samples):
        if storage_uri:
            videos.append(
                {"gcsUri": sample_uri(storage_uri, op.id, index), "mimeType": sample.mime_type}
            )
        else:
            videos.append({"bytesBase64Encoded": inline(sample), "mimeType": sample.mime_type})
    return videos


def has_inline_videos(op: Operation) -> bool:
    """A succeeded operation whose poll carries its MP4s as base64 (no `storageUri`)."""
    return op.state == State.SUCCEEDED and bool(op.samples) and not op.request.get("storage_uri")


def render_operation(op: Operation, video_bytes: VideoBytes) -> dict[str, Any]:
    """The body of a create-poll: running, done with `response`, or done with `error`."""
    return _render(op, lambda sample: base64.b64encode(video_bytes(sample)).decode())


def write_operation(op: Operation, open_video: VideoStream, out: BinaryIO) -> None:
    """`render_operation`'s body as the JSON bytes a JSONResponse sends, written to `out` with
    each MP4 base64-encoded from its stream a chunk at a time: memory stays at one chunk
    however large the videos are (a 4k lossless sample is ~80 MB of base64)."""
    marker = f"@@cinegen-video-{secrets.token_hex(8)}-"
    samples: list[Sample] = []

    def placeholder(sample: Sample) -> str:
        samples.append(sample)
        return f"{marker}{len(samples) - 1}@@"

    text = json.dumps(
        _render(op, placeholder),
        ensure_ascii=False,
        allow_nan=False,
        indent=None,
        separators=(",", ":"),
    )
    parts = re.split(re.escape(marker) + r"(\d+)@@", text)
    for position, part in enumerate(parts):
        if position % 2 == 0:
            out.write(part.encode("utf-8"))
            continue
        with closing(open_video(samples[int(part)])) as stream:
            while chunk := stream.read(_BASE64_CHUNK):
                out.write(base64.b64encode(chunk))


def _render(op: Operation, inline: Inline) -> dict[str, Any]:
    def response() -> dict[str, Any]:
        body: dict[str, Any] = {
            "@type": RESPONSE_TYPE,
            "raiMediaFilteredCount": op.rai_filtered_count,
        }
        if op.rai_filtered_count:
            body["raiMediaFilteredReasons"] = list(op.rai_filtered_reasons)
        if op.samples:
            body["videos"] = _videos(op, inline)
        return body

    return render_lro(op, name=operation_name(op), metadata=render_metadata(op), response=response)
