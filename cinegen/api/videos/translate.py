"""`/v1/videos` wire ⇄ core, in the gateway's words.

A create body becomes a `Draft`: the GenerateRequest with every image given by URL standing
in as a placeholder, plus the URLs to fetch. The rules judge the draft before anything is
downloaded; only then are the URLs fetched (media/fetch.py) and the placeholders replaced.

An Operation renders as a video object in one of two dialects that differ only in two status
words: the gateway's (`""` queued, `failure`) and the OpenAI SDK's (`queued`, `failed`, which
its `poll()` needs). Every other field is sent in both. A video remembers which its create
was in its operation's `dialect`: `videos` (the gateway's) or `openai` (`openai_shaped`). The id is the base64url of the
operation name, as the gateway does, so the Gemini dialect reaches the same operation.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cinegen.api.parameters import request_parameters
from cinegen.core import catalog, rules
from cinegen.core.errors import RpcCode
from cinegen.core.operation import (
    Operation,
    State,
)
from cinegen.core.request import GenerateRequest, MediaRef, ReferenceImage
from cinegen.core.rules import RuleError
from cinegen.media.fetch import sniff_image

from .wire import CreateVideoRequest, FilePart, WireInputReference, WireMetadata

# The gateway's own words (seed 004); everything else keeps Veo's words.
TOO_MANY_REFERENCE_IMAGES = "too many reference images"
FAILED_TO_DOWNLOAD = "failed to download image"
INVALID_BASE64 = "invalid base64"
USE_CASE_SHORT = "Your use case is currently not supported."
MAX_IMAGES = 2

# The operation's `dialect` for a /v1/videos create: the gateway format, or OpenAI's Videos API.
GATEWAY_DIALECT = "videos"
OPENAI_DIALECT = "openai"
_OPENAI_FIELDS = ("seconds", "size", "input_reference")
_GATEWAY_FIELDS = ("images", "metadata")

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_NOT_SUPPORTED = re.compile(r"^(`[^`]+` isn't supported by this model\.) Please remove it")
_PLACEHOLDER = b"\x00url"
_OPENAI_ERROR_CODES: dict[int, str] = {
    RpcCode.CANCELLED: "cancelled",
    RpcCode.INVALID_ARGUMENT: "invalid_argument",
    RpcCode.RESOURCE_EXHAUSTED: "resource_exhausted",
    RpcCode.INTERNAL: "internal_error",
}


def gateway_error(exc: RuleError) -> RuleError:
    """Veo's refusal in the gateway's words, where the gateway shortens them."""
    message = exc.message
    if message == rules.USE_CASE_NOT_SUPPORTED:
        message = USE_CASE_SHORT
    elif message.startswith("The number of `referenceImages` is out of bound"):
        message = TOO_MANY_REFERENCE_IMAGES
    else:
        short = _NOT_SUPPORTED.match(message)
        if short:
            message = short.group(1)
    return RuleError(message, exc.code, exc.status)


# ------------------------------------------------------------------------------- ids


def operation_name(op: Operation) -> str:
    return f"models/{op.model}/operations/{op.id}"


def video_id(op: Operation) -> str:
    return base64.urlsafe_b64encode(operation_name(op).encode()).decode().rstrip("=")


def operation_id(video: str) -> str | None:
    """The operation id inside a video id (or a bare operation id), None if neither."""
    if video and all(c in "0123456789abcdef" for c in video) and len(video) <= 64:
        return video
    try:
        name = base64.urlsafe_b64decode(video + "=" * (-len(video) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    head, sep, tail = name.rpartition("/operations/")
    if not sep or not head.startswith("models/") or not tail:
        return None
    return tail


def openai_shaped(raw: dict[str, Any], *, multipart: bool) -> bool:
    """A create body in OpenAI's Videos API format rather than the gateway's: multipart (the
    OpenAI SDKs since 2.27; the gateway format is JSON), or JSON with OpenAI's `seconds` /
    `size` / `input_reference` and none of the gateway's `images` / `metadata` (what
    LiteLLM's `openai/` provider sends). A body with neither is the gateway's."""
    if multipart:
        return True
    present = {name for name, value in raw.items() if value is not None}
    return bool(present.intersection(_OPENAI_FIELDS)) and not present.intersection(_GATEWAY_FIELDS)


# ---------------------------------------------------------------------------- images


@dataclass(frozen=True)
class PendingUrl:
    """An image the client gave as a URL: fetched once the rules have passed the draft."""

    slot: str  # "image" | "last_frame" | "reference_<i>"
    url: str
    mime_type: str | None


@dataclass(frozen=True)
class Draft:
    request: GenerateRequest
    urls: list[PendingUrl] = field(default_factory=list)


def decode_base64_image(text: str) -> bytes:
    """Bare base64 (standard or URL-safe, padding optional) or the gateway's error."""
    cleaned = re.sub(r"\s+", "", text)
    if not cleaned:
        raise RuleError(INVALID_BASE64)
    alphabet = b"-_" if ("-" in cleaned or "_" in cleaned) else None
    try:
        return base64.b64decode(
            cleaned + "=" * (-len(cleaned) % 4), altchars=alphabet, validate=True
        )
    except (binascii.Error, ValueError) as exc:
        raise RuleError(INVALID_BASE64) from exc


def _data_uri(text: str) -> tuple[bytes, str | None]:
    header, sep, payload = text[5:].partition(",")
    if not sep or ";base64" not in header.lower():
        raise RuleError(INVALID_BASE64)
    mime = header.split(";", 1)[0].strip().lower() or None
    return decode_base64_image(payload), mime


def image_ref(
    value: Any, slot: str, mime_type: str | None, urls: list[PendingUrl], where: str
) -> MediaRef:
    """One image as given (URL, data URI, bare base64 or an uploaded file) → a MediaRef."""
    if isinstance(value, FilePart):
        mime = sniff_image(value.data) or value.content_type or mime_type
        return MediaRef(data=value.data, mime_type=mime)
    if not isinstance(value, str):
        raise rules.wrong_type(where, "string")
    text = value.strip()
    if _URL.match(text):
        urls.append(PendingUrl(slot=slot, url=text, mime_type=mime_type))
        return MediaRef(data=_PLACEHOLDER, mime_type=mime_type)
    if text[:5].lower() == "data:":
        data, declared = _data_uri(text)
    else:
        data, declared = decode_base64_image(text), None
    return MediaRef(data=data, mime_type=mime_type or declared or sniff_image(data))


# --------------------------------------------------------------------------- request


def _size(size: str) -> tuple[str, str]:
    """OpenAI's `WxH` → (aspectRatio, resolution), the way the gateways map it."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", size)
    if not match:
        raise RuleError(f"Invalid value at 'size': {size!r} is not WIDTHxHEIGHT, e.g. 1280x720.")
    width, height = int(match.group(1)), int(match.group(2))
    aspect = "9:16" if height > width else "16:9"
    longest = max(width, height)
    resolution = "4k" if longest >= 3840 else "1080p" if longest >= 1920 else "720p"
    return aspect, resolution


def _seconds(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return rules.as_number("durationSeconds", value)


def _first_frame(body: CreateVideoRequest, urls: list[PendingUrl]) -> MediaRef | None:
    images = body.images or []
    ref = body.input_reference
    if ref is not None and images:
        raise RuleError(
            "Send the first frame either as `input_reference` or as `images[0]`, not both."
        )
    if isinstance(ref, dict):
        ref = WireInputReference.model_validate(ref)
    if isinstance(ref, WireInputReference):
        if ref.image_url is None:
            raise RuleError("`input_reference` needs an `image_url` (a URL or a data URI).")
        ref = ref.image_url
    if ref is not None:
        return image_ref(ref, "image", None, urls, "input_reference")
    if images:
        return image_ref(images[0], "image", None, urls, "images[0]")
    return None


def _references(meta: WireMetadata, urls: list[PendingUrl]) -> tuple[ReferenceImage, ...]:
    wire = meta.reference_images or []
    if len(wire) > rules.MAX_REFERENCE_IMAGES:
        raise RuleError(TOO_MANY_REFERENCE_IMAGES)
    refs = []
    for index, ref in enumerate(wire):
        where = f"metadata.referenceImages[{index}].image.bytesBase64Encoded"
        source = ref.image.bytes_base64_encoded if ref.image else None
        if source is None:
            image = MediaRef()
        else:
            mime = ref.image.mime_type if ref.image else None
            image = image_ref(source, f"reference_{index}", mime, urls, where)
        refs.append(ReferenceImage(image=image, reference_type=ref.reference_type or "asset"))
    return tuple(refs)


def to_draft(body: CreateVideoRequest, *, dialect: str = GATEWAY_DIALECT) -> Draft:
    """The gateway body (plus the OpenAI fields) as a GenerateRequest with URL placeholders;
    `dialect` (`GATEWAY_DIALECT` or `OPENAI_DIALECT`) says which status words it keeps."""
    if body.model is None or not body.model.strip():
        raise RuleError("Invalid JSON payload received. Missing required field 'model'.")
    images = body.images or []
    if len(images) > MAX_IMAGES:
        raise RuleError(
            f"`images` takes at most {MAX_IMAGES} entries: images[0] is the first frame, "
            "images[1] the last frame."
        )
    meta = body.metadata or WireMetadata()
    urls: list[PendingUrl] = []
    references = _references(meta, urls)
    image = _first_frame(body, urls)
    last = image_ref(images[1], "last_frame", None, urls, "images[1]") if len(images) > 1 else None
    aspect, resolution = (None, None) if body.size is None else _size(body.size)
    duration = meta.duration_seconds
    if duration is None and body.seconds is not None:
        duration = _seconds(body.seconds)
    fields = request_parameters(meta, duration_seconds=duration)
    fields["aspect_ratio"] = fields["aspect_ratio"] or aspect
    fields["resolution"] = fields["resolution"] or resolution
    request = GenerateRequest(
        model=body.model.strip().removeprefix("models/"),
        prompt=body.prompt,
        image=image,
        last_frame=last,
        reference_images=references,
        **fields,
        dialect=dialect,
    )
    return Draft(request=request, urls=urls)


def with_fetched(draft: Draft, fetched: dict[str, MediaRef]) -> GenerateRequest:
    """The draft with each URL placeholder replaced by the fetched image."""
    return draft.request.map_media(lambda slot, ref: fetched.get(slot, ref))


# ---------------------------------------------------------------------------- render


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())


def _status(op: Operation, openai: bool) -> str:
    if op.state == State.QUEUED:
        return "queued" if openai else ""
    if op.state == State.RUNNING:
        return "in_progress"
    if op.state == State.SUCCEEDED and op.samples:
        return "completed"
    return "failed" if openai else "failure"


def _failure(op: Operation) -> tuple[str, str]:
    if op.state == State.SUCCEEDED:  # done, but every sample was filtered out
        reasons = "; ".join(op.rai_filtered_reasons) or "No video was generated."
        return "content_filtered", reasons
    code = _OPENAI_ERROR_CODES.get(op.error_code or 0, "unknown")
    return code, op.error_message or "Unknown error."


def seconds_and_size(request: dict[str, Any]) -> tuple[str | None, str | None]:
    duration = request.get("duration_seconds")
    resolution, aspect = request.get("resolution"), request.get("aspect_ratio")
    size = None
    if resolution in catalog.RESOLUTIONS and aspect in catalog.ASPECT_RATIOS:
        width, height = catalog.frame_size(resolution, aspect)
        size = f"{width}x{height}"
    return (str(duration) if duration is not None else None), size


def render_video(op: Operation, *, openai: bool, expires_at: datetime | None) -> dict[str, Any]:
    """The video object; `openai` picks the status words (see the module doc)."""
    status = _status(op, openai)
    ident = video_id(op)
    seconds, size = seconds_and_size(op.request)
    body: dict[str, Any] = {
        "id": ident,
        "task_id": ident,
        "object": "video",
        "model": op.model,
        "status": status,
        "progress": 100 if op.done else int(op.progress) if op.state == State.RUNNING else 0,
        "created_at": _unix(op.create_time),
    }
    if op.done:
        body["completed_at"] = _unix(op.update_time)
    body["seconds"] = seconds
    body["size"] = size
    body["prompt"] = op.request.get("prompt")
    if status == "completed" and expires_at is not None:
        body["expires_at"] = _unix(expires_at)
    if status in ("failed", "failure"):
        code, message = _failure(op)
        body["error"] = {"code": code, "message": message}
        body["fail_reason"] = message
    remixed = op.notes.get("remixed_from_video_id")
    if remixed:
        body["remixed_from_video_id"] = remixed
    return body
