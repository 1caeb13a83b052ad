"""The models cinegen serves and what each one accepts (shared/spec/veo-rules.md §1).

A `ModelInfo` is a capability row: the rules read it, the model routes render it. Engines
(preview, diffusers) serve these ids; open-weight engines may add rows of their own.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

ASPECT_RATIOS = ("16:9", "9:16")
RESOLUTIONS = ("720p", "1080p", "4k")
EXTENSION_SECONDS = 7
MAX_EXTENSION_INPUT_SECONDS = 141

_SIZES = {"720p": (1280, 720), "1080p": (1920, 1080), "4k": (3840, 2160)}


def frame_size(resolution: str, aspect_ratio: str) -> tuple[int, int]:
    """Exact (width, height) in pixels: 720p is 1280×720, or 720×1280 in portrait."""
    width, height = _SIZES[resolution]
    return (height, width) if aspect_ratio == "9:16" else (width, height)


@dataclass(frozen=True)
class ModelInfo:
    id: str
    display_name: str
    description: str
    family: str  # "veo-3.1" | "veo-3.0" | "veo-2"
    audio: str  # "always" | "optional" (generateAudio on Vertex) | "never"
    durations: tuple[int, ...]
    default_duration: int
    resolutions: tuple[str, ...]
    max_references_asset: int = 0
    style_reference: bool = False
    extension: bool = False
    enhance_prompt: bool = True
    hd_landscape_only: bool = False  # 1080p only in 16:9 (Veo 3.0)
    resolution_param: bool = True  # Veo 2 refuses `resolution` outright
    max_samples_gemini: int = 4
    engine: str = "preview"
    aliases: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_veo2(self) -> bool:
        return self.family == "veo-2"

    def audio_default(self) -> bool:
        return self.audio != "never"


_PREVIEW_NOTE = (
    " Served by cinegen's CPU preview engine: a procedural renderer (classical graphics and "
    "signal processing, not a learned model) that honours every input of the request."
)


def _veo31(model_id: str, name: str, fast: bool) -> ModelInfo:
    return ModelInfo(
        id=model_id,
        display_name=name,
        description=f"{name}: text, first frame, first + last frame, "
        + ("" if fast else "reference images, ")
        + "extension; 4/6/8 s; 720p, 1080p, 4k; native audio."
        + _PREVIEW_NOTE,
        family="veo-3.1",
        audio="always",
        durations=(4, 6, 8),
        default_duration=8,
        resolutions=RESOLUTIONS,
        max_references_asset=0 if fast else 3,
        extension=True,
    )


def _veo30(model_id: str, name: str, enhance: bool) -> ModelInfo:
    return ModelInfo(
        id=model_id,
        display_name=name,
        description=f"{name}: text, first frame, first + last frame; 4/6/8 s; 720p, "
        "1080p (16:9); audio." + _PREVIEW_NOTE,
        family="veo-3.0",
        audio="optional",
        durations=(4, 6, 8),
        default_duration=8,
        resolutions=("720p", "1080p"),
        enhance_prompt=enhance,
        hd_landscape_only=True,
    )


def _veo2(model_id: str, name: str, exp: bool) -> ModelInfo:
    return ModelInfo(
        id=model_id,
        display_name=name,
        description=f"{name}: text, first frame, first + last frame"
        + (", reference images (asset or style)" if exp else "")
        + "; 5-8 s; 720p; silent."
        + _PREVIEW_NOTE,
        family="veo-2",
        audio="never",
        durations=(5, 6, 7, 8),
        default_duration=8,
        resolutions=("720p",),
        max_references_asset=3 if exp else 0,
        style_reference=exp,
        resolution_param=False,
        max_samples_gemini=2,
    )


MODELS: Mapping[str, ModelInfo] = MappingProxyType(
    {
        m.id: m
        for m in (
            _veo31("veo-3.1-generate-preview", "Veo 3.1", fast=False),
            _veo31("veo-3.1-fast-generate-preview", "Veo 3.1 Fast", fast=True),
            _veo30("veo-3.0-generate-001", "Veo 3", enhance=False),
            _veo30("veo-3.0-generate-preview", "Veo 3 (preview)", enhance=True),
            _veo30("veo-3.0-fast-generate-001", "Veo 3 Fast", enhance=False),
            _veo30("veo-3.0-fast-generate-preview", "Veo 3 Fast (preview)", enhance=True),
            _veo2("veo-2.0-generate-001", "Veo 2", exp=False),
            _veo2("veo-2.0-generate-exp", "Veo 2 (experimental)", exp=True),
        )
    }
)
"""Veo's models as the preview engine serves them: the rows every catalog starts from."""


class Catalog:
    """The models one server serves: Veo's rows, and what its engines add or re-route at
    start-up (the diffusers engine). One instance per runtime; nothing mutates `MODELS`."""

    def __init__(self, rows: Iterable[ModelInfo] = MODELS.values()) -> None:
        self._rows = {row.id: row for row in rows}

    def get(self, model: str) -> ModelInfo | None:
        """The row for `model` (with or without a `models/` prefix, or an alias), or None."""
        bare = model.strip().removeprefix("models/")
        row = self._rows.get(bare)
        if row is not None:
            return row
        return next((r for r in self._rows.values() if bare in r.aliases), None)

    def add(self, row: ModelInfo) -> None:
        """Add or replace a row."""
        self._rows[row.id] = row

    def rows(self) -> list[ModelInfo]:
        return list(self._rows.values())

    def engine_for(self, model: str) -> str:
        row = self.get(model)
        return row.engine if row is not None else "preview"


def served_by(row: ModelInfo, engine: str, note: str) -> ModelInfo:
    """`row` routed to another engine, its description saying which instead of the preview."""
    return replace(row, engine=engine, description=row.description.replace(_PREVIEW_NOTE, note))
