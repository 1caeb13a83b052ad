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
VEO30_RETIREMENT = "2026-06-30"  # Veo 3.0's ids on Vertex AI (see the sources below)
_VEO31_GA = "veo-3.1-generate-001"
_VEO31_FAST_GA = "veo-3.1-fast-generate-001"

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
    # Whether the engine serving the row edits videos under a mask (Vertex `mask`, on the ids
    # rules.MASK_MODELS names): the preview engine does; the diffusers engine where its
    # registry configures `edit` for the model.
    mask_edit: bool = True
    aliases: tuple[str, ...] = field(default_factory=tuple)
    # Why and when Google retires the id ("" while current). A deprecated id is still served,
    # with the same rules; the words are also in `description`, which the model routes show.
    deprecation: str = ""

    @property
    def is_veo2(self) -> bool:
        return self.family == "veo-2"

    @property
    def deprecated(self) -> bool:
        return bool(self.deprecation)

    def audio_default(self) -> bool:
        return self.audio != "never"


_PREVIEW_NOTE = (
    " Served by cinegen's CPU preview engine: a procedural renderer (classical graphics and "
    "signal processing, not a learned model) that honours every input of the request."
)


# The capability rows, in spec/veo-rules.md §1's style, with the source of each new row.
#
# | model id | text | image | lastFrame | referenceImages | video (extension) | resolutions |
# |---|---|---|---|---|---|---|
# | `veo-3.1-generate-preview` | yes | yes | yes | up to 3, `asset` | yes | 720p, 1080p, 4k |
# | `veo-3.1-fast-generate-preview` | yes | yes | yes | no | yes | 720p, 1080p, 4k |
# | `veo-3.1-lite-generate-preview` | yes | yes | yes | no | no | 720p, 1080p |
# | `veo-3.1-generate-001` | yes | yes | yes | up to 3, `asset` | yes | 720p, 1080p, 4k |
# | `veo-3.1-fast-generate-001` | yes | yes | yes | no | yes | 720p, 1080p, 4k |
# | `veo-3.1-lite-generate-001` | yes | yes | yes | no | no | 720p, 1080p |
# | `veo-3.0-*` (deprecated) | yes | yes | yes | no | no | 720p, 1080p (16:9 only) |
#
# Every Veo 3.1 row: 4, 6 or 8 s (1080p, 4k, first + last frame, references and extension
# need 8 s), native audio, 16:9 or 9:16. The refusals are the rules' usual words: 4k on Lite
# is "`resolution` does not support `4k` as a valid value. ...", a video to extend or
# reference images on a model without them "`video` (or `referenceImages`) isn't supported by
# this model. ...".
#
# Sources:
# - veo-3.1-generate-001: Google's model page
#   https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/veo/3-1-generate.md.txt
#   (text to video, image to video, from first and last frame; extend videos; reference images:
#   asset images; sound generation: all "Supported").
# - veo-3.1-fast-generate-001: Google's page for it was not available here. Choice: the row of
#   veo-3.1-fast-generate-preview (spec/veo-rules.md §1: no reference images). Google's sample
#   app (github.com/GoogleCloudPlatform/vertex-ai-creative-studio, config/veo_models.py) lists
#   reference images for it too; not shown on a Google model page, so refused (conservative).
# - veo-3.1-lite-generate-001 and veo-3.1-lite-generate-preview: Google's pages for Lite
#   (.../models/veo/3-1-lite-generate, the model table of ai.google.dev/gemini-api/docs/video)
#   were not available here. Google's sample app (same file) gives Lite text, image and first +
#   last frame, 720p and 1080p, 4/6/8 s; so do most third-party pages (gmicloud, jiekou,
#   vidmachine; civitai says text and image only). 4k: refused (only one reseller lists it).
#   Reference images: refused (no source shows them). Choice: extension refused too: the
#   sample app lists it, but no Google page and no other source does (vidmachine says Lite
#   omits it), so the conservative reading.
# - veo-3.0-*: https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/veo/3-0-generate
#   ("Retirement date: June 30, 2026"; migrate veo-3.0-generate-001 to veo-3.1-generate-001 and
#   veo-3.0-fast-generate-001 to veo-3.1-fast-generate-001). cinegen keeps serving them.
# - veo-2.0-generate-preview: Google's Veo 2 model page
#   https://cloud.google.com/vertex-ai/generative-ai/docs/models/veo/2-0-generate-001 lists it
#   beside veo-2.0-generate-exp with the same capabilities (text and image to video, prompt
#   rewriting, extend, first and last frames, reference images, insert and remove objects;
#   Preview), 16:9 and 9:16, 720p, 24 fps, 5 to 8 s, at most 4 videos a request: the same row.

_FRAMES = "text, first frame, first + last frame"
_VEO31_TIERS = {
    # tier: (reference images, extension, resolutions, modes for the description)
    "standard": (3, True, RESOLUTIONS, _FRAMES + ", reference images, extension"),
    "fast": (0, True, RESOLUTIONS, _FRAMES + ", extension"),
    "lite": (0, False, ("720p", "1080p"), _FRAMES),
}


def _veo31(model_id: str, name: str, tier: str) -> ModelInfo:
    references, extension, resolutions, modes = _VEO31_TIERS[tier]
    return ModelInfo(
        id=model_id,
        display_name=name,
        description=f"{name}: {modes}; 4/6/8 s; {', '.join(resolutions)}; native audio."
        + _PREVIEW_NOTE,
        family="veo-3.1",
        audio="always",
        durations=(4, 6, 8),
        default_duration=8,
        resolutions=resolutions,
        max_references_asset=references,
        extension=extension,
    )


def _retired(replacement: str) -> str:
    return (
        f"Deprecated: retired on Vertex AI on {VEO30_RETIREMENT}; use {replacement}. "
        "cinegen still serves it."
    )


def _veo30(model_id: str, name: str, enhance: bool, replacement: str) -> ModelInfo:
    deprecation = _retired(replacement)
    return ModelInfo(
        id=model_id,
        display_name=name,
        description=f"{name}: text, first frame, first + last frame; 4/6/8 s; 720p, "
        f"1080p (16:9); audio. {deprecation}" + _PREVIEW_NOTE,
        family="veo-3.0",
        audio="optional",
        durations=(4, 6, 8),
        default_duration=8,
        resolutions=("720p", "1080p"),
        enhance_prompt=enhance,
        hd_landscape_only=True,
        deprecation=deprecation,
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
            _veo31("veo-3.1-generate-preview", "Veo 3.1", "standard"),
            _veo31("veo-3.1-fast-generate-preview", "Veo 3.1 Fast", "fast"),
            _veo31("veo-3.1-lite-generate-preview", "Veo 3.1 Lite", "lite"),
            _veo31("veo-3.1-generate-001", "Veo 3.1 (GA)", "standard"),
            _veo31("veo-3.1-fast-generate-001", "Veo 3.1 Fast (GA)", "fast"),
            _veo31("veo-3.1-lite-generate-001", "Veo 3.1 Lite (GA)", "lite"),
            _veo30("veo-3.0-generate-001", "Veo 3", False, _VEO31_GA),
            _veo30("veo-3.0-generate-preview", "Veo 3 (preview)", True, _VEO31_GA),
            _veo30("veo-3.0-fast-generate-001", "Veo 3 Fast", False, _VEO31_FAST_GA),
            _veo30("veo-3.0-fast-generate-preview", "Veo 3 Fast (preview)", True, _VEO31_FAST_GA),
            _veo2("veo-2.0-generate-001", "Veo 2", exp=False),
            _veo2("veo-2.0-generate-exp", "Veo 2 (experimental)", exp=True),
            _veo2("veo-2.0-generate-preview", "Veo 2 (preview)", exp=True),
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


def served_by(row: ModelInfo, engine: str, note: str, mask_edit: bool = False) -> ModelInfo:
    """`row` routed to another engine, its description saying which instead of the preview;
    it takes a mask only where that engine says it edits."""
    description = row.description.replace(_PREVIEW_NOTE, note)
    return replace(row, engine=engine, description=description, mask_edit=mask_edit)
