"""Masked editing (Vertex `mask`) with Wan VACE: masked video-to-video.

Per mode, each frame of the input has a *hole*, the pixels VACE makes anew (white in its mask),
and a *source*, what the output keeps around the hole:

- REMOVE: the object under the mask on frame 1, tracked over the frames against the median
  background (engines/tracking.py, as the preview engine does); an object that never moves
  keeps the mask's region on every frame.
- REMOVE_STATIC: the mask's region on every frame (a logo, a watermark).
- INSERT: the mask's bounding rectangle on every frame; the prompt says what appears there.
- OUTPAINT: the input scaled into the mask's rectangle is the source; the hole is everything
  outside the rectangle (the source there is the input's edges reflected, for the feather).

VACE sees the input with the hole grey (its pixels would otherwise hint at what to remove)
and regenerates every pixel through the VAE, so the output pastes the source back outside
the hole: only the hole's pixels change, feathered over FEATHER_SHARE inside its edge.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from cinegen.core.errors import EngineError
from cinegen.engines.base import RenderSpec
from cinegen.engines.diffusers.calls import GREY
from cinegen.engines.tracking import DISC, bounding_box, mask_at, median_background, moves, tracked
from cinegen.media.clip import FPS
from cinegen.media.decode import fit_image, iter_video_frames

EDIT_MODES = ("REMOVE", "REMOVE_STATIC", "INSERT", "OUTPAINT")
FEATHER_SHARE = 0.008
"""The feather, as a share of the output's long side (10 px at 720p): the hole's edge fades
from the source into VACE's pixels over it."""


@dataclass(frozen=True)
class EditPlan:
    """What an edit changes: the mode, the mask at the output size, and how it was found."""

    mode: str
    mask: np.ndarray  # H×W bool at the output size
    rect: tuple[int, int, int, int]  # the mask's bounding box (x, y, w, h)
    background: np.ndarray | None  # REMOVE of a moving object: the median background
    note: str


def edit_plan(spec: RenderSpec) -> EditPlan:
    """The edit the spec asks for, or EngineError saying why it cannot be made."""
    if spec.input_video is None or spec.mask is None:
        raise EngineError("A masked edit needs an input video and a mask.")
    mode = spec.mask_mode.strip().upper()
    if mode not in EDIT_MODES:
        raise EngineError(f"Unknown mask mode {spec.mask_mode!r}.")
    mask = mask_at(spec.mask, spec.width, spec.height)
    if not mask.any():
        raise EngineError("The mask marks no region: white pixels mark what to edit.")
    rect = bounding_box(mask.astype(np.uint8))
    background = None
    note = {
        "REMOVE_STATIC": "the mask's region regenerated on every frame",
        "INSERT": "the prompt's content generated in the mask's rectangle",
        "OUTPAINT": "the input scaled into the mask's rectangle, the rest generated",
    }.get(mode, "")
    if mode == "REMOVE":
        background = median_background(input_frames(spec), spec.input_video.num_frames)
        first = next(iter(input_frames(spec)))
        if moves(first, mask, background):
            note = "the object tracked over the frames against the median background"
        else:
            background = None
            note = "the mask's region regenerated on every frame (the object does not move)"
    return EditPlan(mode, mask, rect, background, note)


def input_frames(spec: RenderSpec) -> Iterator[np.ndarray]:
    """Exactly the output's frames of the input at the output size (the last one held if the
    file holds fewer than it said)."""
    assert spec.input_video is not None
    last: np.ndarray | None = None
    produced = 0
    for frame in iter_video_frames(spec.input_video.path):
        if produced == spec.num_frames:
            return
        if frame.shape[:2] != (spec.height, spec.width):
            frame = fit_image(frame, spec.width, spec.height)
        last = frame
        yield frame
        produced += 1
    if last is None:
        raise EngineError("The input video has no frames.")
    while produced < spec.num_frames:
        yield last.copy()
        produced += 1


def sources_and_holes(spec: RenderSpec, plan: EditPlan) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per output frame: the source (what stays) and the hole (H×W bool: what VACE makes)."""
    frames = input_frames(spec)
    if plan.mode == "REMOVE" and plan.background is not None:
        yield from tracked(frames, plan.mask, plan.background)
        return
    if plan.mode == "OUTPAINT":
        yield from _outpaint(frames, plan.rect)
        return
    if plan.mode == "INSERT":
        x, y, w, h = plan.rect
        hole = np.zeros_like(plan.mask)
        hole[y : y + h, x : x + w] = True
    else:  # REMOVE_STATIC, or REMOVE of an object that stands still: its soft edge too
        hole = cv2.dilate(plan.mask.astype(np.uint8), DISC) > 0
    for frame in frames:
        yield frame, hole


def _outpaint(
    frames: Iterable[np.ndarray], rect: tuple[int, int, int, int]
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    x, y, w, h = rect
    first = True
    hole = np.ones((1, 1), bool)
    for frame in frames:
        height, width = frame.shape[:2]
        if first:
            hole = np.ones((height, width), bool)
            hole[y : y + h, x : x + w] = False
            first = False
        inner = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        borders = (y, height - y - h, x, width - x - w)
        # A reflection needs two pixels to reflect; a one-pixel-wide rectangle is repeated.
        edge = cv2.BORDER_REFLECT_101 if min(w, h) > 1 else cv2.BORDER_REPLICATE
        yield cv2.copyMakeBorder(inner, *borders, edge), hole


def model_index(model_frame: int, model_fps: int, num_frames: int) -> int:
    """The output frame a model frame falls on (the model's frame j is at j / model_fps s)."""
    return min(num_frames - 1, round(model_frame * FPS / model_fps))


def conditioning(
    spec: RenderSpec, plan: EditPlan, model_fps: int, need: int, size: tuple[int, int]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """VACE's `video` and `mask` for `need` model frames at the generation size `size`: the
    source with the hole grey, and the hole (True = generate)."""
    wanted = {model_index(j, model_fps, spec.num_frames) for j in range(need)}
    picked: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for index, (source, hole) in enumerate(sources_and_holes(spec, plan)):
        if index in wanted:
            picked[index] = _at_size(source, hole, size)
    video, masks = [], []
    for j in range(need):
        frame, hole = picked[model_index(j, model_fps, spec.num_frames)]
        video.append(frame)
        masks.append(hole)
    return video, masks


def _at_size(
    source: np.ndarray, hole: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    width, height = size
    frame = cv2.resize(source, size, interpolation=cv2.INTER_AREA)
    small = cv2.resize(hole.astype(np.uint8), size, interpolation=cv2.INTER_AREA) > 0
    frame[small] = GREY
    assert frame.shape[:2] == (height, width)
    return frame, small


def composite(source: np.ndarray, made: np.ndarray, hole: np.ndarray, feather: int) -> np.ndarray:
    """`made` inside the hole, `source` everywhere else, exactly; the hole's edge fades from
    the source into `made` over `feather` pixels inside it."""
    if not hole.any():
        return source
    distance = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 5)
    alpha = np.minimum(1.0, distance / max(1, feather))[..., None]
    mixed = source.astype(np.float32) + (made.astype(np.float32) - source) * alpha
    out = np.clip(np.rint(mixed), 0, 255).astype(np.uint8)
    out[~hole] = source[~hole]
    return out


def feather_of(spec: RenderSpec) -> int:
    return max(2, round(FEATHER_SHARE * max(spec.width, spec.height)))
