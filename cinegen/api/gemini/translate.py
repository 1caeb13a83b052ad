"""Gemini API wire ⇄ core: a `predictLongRunning` body into a GenerateRequest, and an
Operation into the JSON the SDKs parse (`response.generateVideoResponse.generatedSamples`)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable
from typing import Any

from cinegen.api.lro import render_lro, timestamp
from cinegen.api.parameters import request_parameters
from cinegen.core import rules
from cinegen.core.errors import InvalidArgument, UnknownField
from cinegen.core.operation import Operation
from cinegen.core.request import GenerateRequest, MediaRef, ReferenceImage, Webhook

from .wire import (
    PredictLongRunningRequest,
    WireImage,
    WireInstance,
    WireMask,
    WireParameters,
    WireVideo,
)

RESPONSE_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse"
METADATA_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningMetadata"

_FILE_ID = re.compile(r"^[a-z0-9]+")


def decode_base64(value: str, where: str) -> bytes:
    """Standard or URL-safe base64, padding optional; Google's wording on failure."""
    text = re.sub(r"\s+", "", value)
    try:
        alphabet = b"-_" if ("-" in text or "_" in text) else None
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=alphabet, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidArgument(
            f"Invalid value at '{where}' (TYPE_BYTES), Base64 decoding failed."
        ) from exc


def file_id_from_uri(uri: str) -> str:
    """The id the way the SDKs cut it: after the last `files/`, or a bare id."""
    tail = uri.rsplit("files/", 1)[-1]
    match = _FILE_ID.match(tail)
    if not match:
        raise rules.video_uri_unparsable()
    return match.group(0)


def _image(wire: WireImage | None, where: str) -> MediaRef | None:
    if wire is None:
        return None
    if wire.inline_data is not None and wire.inline_data.data is not None:
        data = decode_base64(wire.inline_data.data, f"{where}.inlineData.data")
        return MediaRef(data=data, mime_type=wire.inline_data.mime_type or wire.mime_type)
    if wire.bytes_base64_encoded is not None:
        data = decode_base64(wire.bytes_base64_encoded, f"{where}.bytesBase64Encoded")
        return MediaRef(data=data, mime_type=wire.mime_type)
    if wire.gcs_uri is not None:
        return MediaRef(gcs_uri=wire.gcs_uri, mime_type=wire.mime_type)
    return MediaRef()  # `{}`: what the Python SDK sends for a PIL image; the rules explain


def _video(wire: WireVideo | None, where: str) -> MediaRef | None:
    if wire is None:
        return None
    if wire.uri is not None:
        return MediaRef(file_id=file_id_from_uri(wire.uri), mime_type=wire.encoding)
    if wire.encoded_video is not None:
        data = decode_base64(wire.encoded_video, f"{where}.encodedVideo")
        return MediaRef(data=data, mime_type=wire.encoding or "video/mp4")
    return _image(wire, where)


def _mask(wire: WireMask | None, where: str) -> MediaRef | None:
    """The mask's image: nested under `image`, or its fields inline beside `maskMode` (what
    the SDKs send)."""
    if wire is None:
        return None
    if wire.image is not None:
        return _image(wire.image, f"{where}.image")
    return _image(wire, where)


def _references(wire: list, where: str) -> tuple[ReferenceImage, ...]:
    refs = []
    for index, ref in enumerate(wire):
        image = _image(ref.image, f"{where}[{index}].image") or MediaRef()
        refs.append(ReferenceImage(image=image, reference_type=(ref.reference_type or "asset")))
    return tuple(refs)


def _camera_control(instance: WireInstance, dialect: str) -> str | None:
    """Vertex's `cameraControl`. The Gemini API's instance has no such field (its reference
    and the SDKs' Gemini API converters name none), so there it is an unknown name, refused
    in the words `api/body.parse_body` uses for any other."""
    if instance.camera_control is None or dialect != "gemini":
        return instance.camera_control
    where = "instances[0]"
    name = instance.camera_control_name
    sentence = f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': "
    raise UnknownField([(where, sentence + "Cannot find field.")])


def to_request(
    body: PredictLongRunningRequest, model: str, dialect: str = "gemini"
) -> GenerateRequest:
    if len(body.instances) != 1:
        raise InvalidArgument("Exactly one instance is supported per request.")
    instance = body.instances[0]
    params = body.parameters or WireParameters()
    last_frame = instance.last_frame or params.last_frame
    last_where = "instances[0].lastFrame" if instance.last_frame else "parameters.lastFrame"
    ref_wire = instance.reference_images or params.reference_images or []
    sample_count = (
        params.sample_count if params.sample_count is not None else params.number_of_videos
    )
    webhook = None
    if body.webhook_config is not None:
        hook = body.webhook_config
        webhook = Webhook(
            uris=tuple(hook.uris),
            user_metadata=hook.user_metadata or {},
        )
    return GenerateRequest(
        model=model.removeprefix("models/"),
        prompt=instance.prompt,
        image=_image(instance.image, "instances[0].image"),
        last_frame=_image(last_frame, last_where),
        reference_images=_references(ref_wire, "instances[0].referenceImages"),
        video=_video(instance.video, "instances[0].video"),
        camera_control=_camera_control(instance, dialect),
        mask=_mask(instance.mask, "instances[0].mask"),
        mask_mode=instance.mask.mask_mode if instance.mask is not None else None,
        **request_parameters(params, sample_count=sample_count),
        webhook=webhook,
        labels=dict(body.labels or {}),
        dialect=dialect,
    )


# Operation → JSON -------------------------------------------------------------------------


def operation_name(op: Operation) -> str:
    return f"models/{op.model}/operations/{op.id}"


def render_metadata(op: Operation) -> dict[str, Any]:
    """Veo sends no metadata; cinegen adds times, progress and the seed to reproduce."""
    return {
        "@type": METADATA_TYPE,
        "createTime": timestamp(op.create_time),
        "updateTime": timestamp(op.update_time),
        "progressPercent": round(op.progress, 1),
        "state": op.state.name,
        "seed": op.seed,
        **({"notes": op.notes} if op.notes else {}),
    }


def render_operation(op: Operation, video_uri: Callable[[str], str]) -> dict[str, Any]:
    """`video_uri(file_id)` builds the download uri for this client."""

    def response() -> dict[str, Any]:
        samples: dict[str, Any] = {
            "generatedSamples": [{"video": {"uri": video_uri(s.file_id)}} for s in op.samples]
        }
        if op.rai_filtered_count:
            samples["raiMediaFilteredCount"] = op.rai_filtered_count
            samples["raiMediaFilteredReasons"] = op.rai_filtered_reasons
        return {"@type": RESPONSE_TYPE, "generateVideoResponse": samples}

    return render_lro(op, name=operation_name(op), metadata=render_metadata(op), response=response)
