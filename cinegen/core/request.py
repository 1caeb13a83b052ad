"""The dialect-neutral generation request.

Every wire dialect translates its body into a `GenerateRequest`. Fields a client did not send
stay `None`, so the rules can tell "absent" from "default" (Veo refuses some fields merely for
being present) and fill in the model's defaults afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any


class Mode(StrEnum):
    """What the engine is asked to do, derived from which inputs are present."""

    TEXT = "text"
    IMAGE = "image"  # first frame
    INTERPOLATION = "interpolation"  # first + last frame
    REFERENCES = "references"  # up to three reference images
    EXTENSION = "extension"  # continue a video this server generated
    EDIT = "edit"  # a video edited under a mask (Vertex `mask`): same length as the input


@dataclass(frozen=True)
class MediaRef:
    """An input image or video as the client gave it.

    Exactly one of `data` (decoded bytes), `file_id` (a video this server issued) or `gcs_uri`
    is set. `blob_key` is filled in by the service once the bytes are persisted.
    """

    data: bytes | None = None
    mime_type: str | None = None
    file_id: str | None = None
    gcs_uri: str | None = None
    blob_key: str | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.data or self.file_id or self.gcs_uri or self.blob_key)


@dataclass(frozen=True)
class ReferenceImage:
    image: MediaRef
    reference_type: str = "asset"  # "asset" | "style", lower-cased by translate


@dataclass(frozen=True)
class Webhook:
    uris: tuple[str, ...] = ()
    user_metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerateRequest:
    """One `predictLongRunning` call, whatever dialect carried it."""

    model: str
    prompt: str | None = None
    image: MediaRef | None = None
    last_frame: MediaRef | None = None
    reference_images: tuple[ReferenceImage, ...] = ()
    video: MediaRef | None = None
    mask: MediaRef | None = None  # Vertex `instances[0].mask`: white marks the region
    mask_mode: str | None = None  # INSERT | REMOVE | REMOVE_STATIC | OUTPAINT, upper-cased by rules
    negative_prompt: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    duration_seconds: int | None = None
    person_generation: str | None = None
    seed: int | None = None
    sample_count: int | None = None
    enhance_prompt: bool | None = None
    generate_audio: bool | None = None
    compression_quality: str | None = None
    storage_uri: str | None = None
    fps: int | None = None
    resize_mode: str | None = None
    camera_control: str | None = None  # Vertex `instances[0].cameraControl` (image mode)
    webhook: Webhook | None = None
    labels: dict[str, str] = field(default_factory=dict)
    dialect: str = "gemini"  # which API family carried it: gemini | vertex | videos

    @property
    def mode(self) -> Mode:
        if self.video is not None:
            # Vertex: "If mask is also provided, the input video will be edited based on the
            # mask"; never an extension then.
            return Mode.EDIT if self.mask is not None else Mode.EXTENSION
        if self.reference_images:
            return Mode.REFERENCES
        if self.image is not None and self.last_frame is not None:
            return Mode.INTERPOLATION
        if self.image is not None:
            return Mode.IMAGE
        return Mode.TEXT

    def with_(self, **changes: Any) -> GenerateRequest:
        return replace(self, **changes)

    def media(self) -> dict[str, MediaRef]:
        """Every input by a stable name, for persisting and decoding."""
        named: dict[str, MediaRef] = {}
        if self.image is not None:
            named["image"] = self.image
        if self.last_frame is not None:
            named["last_frame"] = self.last_frame
        if self.video is not None:
            named["video"] = self.video
        if self.mask is not None:
            named["mask"] = self.mask
        for index, ref in enumerate(self.reference_images):
            named[f"reference_{index}"] = ref.image
        return named

    def map_media(self, change: Callable[[str, MediaRef], MediaRef]) -> GenerateRequest:
        """A copy with every input replaced by `change(name, ref)`, names as in `media()`."""

        def one(name: str, ref: MediaRef | None) -> MediaRef | None:
            return change(name, ref) if ref is not None else None

        return replace(
            self,
            image=one("image", self.image),
            last_frame=one("last_frame", self.last_frame),
            video=one("video", self.video),
            mask=one("mask", self.mask),
            reference_images=tuple(
                ReferenceImage(change(f"reference_{i}", r.image), r.reference_type)
                for i, r in enumerate(self.reference_images)
            ),
        )
