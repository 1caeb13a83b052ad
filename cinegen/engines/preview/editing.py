"""Masked editing (Vertex `mask`): the input video, as long as it is, edited under a mask.

Each of Vertex's four modes done with the classical tools the extension already uses:

- REMOVE: the object under the mask on frame 1 is tracked by background subtraction against
  the temporal median of the video (a car that drives through leaves the median clean), its
  pixels replaced by that background in every frame; an object that never moves is part of
  the median, so it is inpainted from its surroundings instead (said in the notes).
- REMOVE_STATIC: the fixed region (a logo, a watermark) is inpainted from the pixels around
  it, frame by frame (OpenCV's Telea inpainting).
- INSERT: the prompt's object (a sprite the text engine draws: car, person, boat, bird; a
  ball where the prompt names none of those) moves across the masked rectangle; nothing
  outside the mask changes.
- OUTPAINT: the input, scaled into the masked rectangle, is left exactly as it is; the rest is
  the prompt's landscape scene blended with a blurred reflection of the input's edges, so the
  picture carries on past the rectangle.

The camera is taken to be still (Veo's edits are of locked-off shots too in Google's samples):
a moving camera makes REMOVE's median background a blur, and the object is then inpainted.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import cv2
import numpy as np

from cinegen.core.errors import EngineError
from cinegen.engines.base import InputVideo, RenderSpec
from cinegen.engines.preview.extension.parts import bounding_box
from cinegen.engines.preview.scene import LandscapeScene
from cinegen.engines.preview.sprites import Sprite, draw_sprites
from cinegen.engines.prompt import ScenePlan
from cinegen.engines.tracking import DISC, mask_at, moves, tracked
from cinegen.engines.tracking import median_background as median_of
from cinegen.media.decode import fit_image, iter_video_frames

INPAINT_RADIUS = 5
SMOOTHING_STEPS = 60
FADE_SHARE = 0.12
"""OUTPAINT: over this share of the frame's long side, the reflection of the input fades into
the prompt's scene."""
_SPRITE_KINDS = ("cars", "people", "boats", "birds")


def edit_frames(spec: RenderSpec, plan: ScenePlan) -> tuple[Iterator[np.ndarray], dict]:
    """The edited frames (as many as the input has) and notes on how they were made."""
    if spec.input_video is None or spec.mask is None:
        raise EngineError("A masked edit needs an input video and a mask.")
    mask = mask_at(spec.mask, spec.width, spec.height)
    if not mask.any():
        raise EngineError("The mask marks no region: white pixels mark what to edit.")
    frames = _input(spec.input_video, spec.width, spec.height)
    mode = spec.mask_mode.upper()
    notes: dict[str, object] = {"mode": "edit", "mask_mode": mode}
    if mode == "REMOVE":
        background = median_background(spec.input_video, spec.width, spec.height)
        if moves(frames_first(spec.input_video, spec.width, spec.height), mask, background):
            notes["removed_by"] = "tracked against the median background"
            return _removed(frames, mask, background), notes
        notes["removed_by"] = "inpainted (the object does not move)"
        return _inpainted(frames, mask), notes
    if mode == "REMOVE_STATIC":
        return _inpainted(frames, mask), notes
    if mode == "INSERT":
        kind = next((s for s in plan.subjects if s in _SPRITE_KINDS), "ball")
        notes["inserted"] = kind
        return _inserted(frames, mask, kind, spec, plan), notes
    if mode == "OUTPAINT":
        return _outpainted(frames, mask, spec, plan), notes
    raise EngineError(f"Unknown mask mode {spec.mask_mode!r}.")


def _input(video: InputVideo, width: int, height: int) -> Generator[np.ndarray, None, None]:
    for frame in iter_video_frames(video.path):
        if frame.shape[1] != width or frame.shape[0] != height:
            frame = fit_image(frame, width, height)
        yield frame


def frames_first(video: InputVideo, width: int, height: int) -> np.ndarray:
    """The input's first frame at the output size."""
    frames = _input(video, width, height)
    try:
        return next(frames)
    except StopIteration:
        raise EngineError("The input video has no frames.") from None
    finally:
        frames.close()


def median_background(video: InputVideo, width: int, height: int) -> np.ndarray:
    """The per-pixel median of frames spread over the input: what stays still."""
    return median_of(_input(video, width, height), video.num_frames)


def _removed(
    frames: Iterator[np.ndarray], mask: np.ndarray, background: np.ndarray
) -> Iterator[np.ndarray]:
    for frame, hole in tracked(frames, mask, background):
        frame[hole] = background[hole]
        yield frame


def _inpainted(frames: Iterator[np.ndarray], mask: np.ndarray) -> Iterator[np.ndarray]:
    """Each frame's masked region inpainted from the pixels around it (in a crop of the
    region and a margin: inpainting costs what it is given)."""
    hole = cv2.dilate(mask.astype(np.uint8), DISC)
    x, y, w, h = bounding_box(hole)
    margin = 4 * INPAINT_RADIUS
    height, width = mask.shape
    x0, y0 = max(0, x - margin), max(0, y - margin)
    x1, y1 = min(width, x + w + margin), min(height, y + h + margin)
    crop_hole = hole[y0:y1, x0:x1]
    for frame in frames:
        crop = np.ascontiguousarray(frame[y0:y1, x0:x1])
        filled = cv2.inpaint(crop, crop_hole, INPAINT_RADIUS, cv2.INPAINT_TELEA)
        frame[y0:y1, x0:x1] = _smoothed_in(filled, crop_hole > 0)
        yield frame


def _smoothed_in(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """The hole relaxed towards the smoothest surface through its edge (Jacobi steps of
    Laplace's equation, started from Telea's fill): Telea's fill keeps streaks along the
    directions it marched in, which a sky or a wall does not have."""
    work = image.astype(np.float32)
    known = work.copy()
    inside = hole[..., None]
    for _ in range(SMOOTHING_STEPS):
        work = np.where(inside, cv2.blur(work, (3, 3), borderType=cv2.BORDER_REPLICATE), known)
    return np.clip(np.rint(work), 0, 255).astype(np.uint8)


def _inserted(
    frames: Iterator[np.ndarray], mask: np.ndarray, kind: str, spec: RenderSpec, plan: ScenePlan
) -> Iterator[np.ndarray]:
    """The object crosses the mask's rectangle over the clip; only masked pixels change."""
    x, y, w, h = bounding_box(mask.astype(np.uint8))
    inside = mask[y : y + h, x : x + w]
    rng = np.random.default_rng([spec.seed, 11])
    sprite = _sprite(kind, w, h, spec.num_frames / spec.fps, rng)
    night = plan.time_of_day == "night"
    for index, frame in enumerate(frames):
        region = frame[y : y + h, x : x + w]
        drawn = np.ascontiguousarray(region)
        seconds = index / spec.fps
        if kind == "ball":
            _ball(drawn, sprite, seconds)
        else:
            screen = {sprite.nearness: (1.0, 0.0, 0.0)}
            draw_sprites(drawn, [sprite], seconds, screen, (-10.0 * w, 10.0 * w), night)
        region[inside] = drawn[inside]
        yield frame


def _sprite(kind: str, w: int, h: int, seconds: float, rng: np.random.Generator) -> Sprite:
    """A sprite that fits the rectangle and crosses most of it in `seconds`."""
    size, base = {
        "cars": (min(w / 5.0, h / 1.3), 0.9),
        "people": (min(h * 0.9, w * 0.8), 0.97),
        "boats": (min(w / 5.0, h / 2.0), 0.65),
        "birds": (min(w, h) * 0.25, 0.5),
        "ball": (min(w, h) * 0.3, 0.5),
    }[kind]
    half = size * (1.2 if kind in ("cars", "boats") else 0.6)
    start, end = half, max(half, w - half)
    if rng.random() < 0.5:
        start, end = end, start
    colour = tuple(int(c) for c in rng.integers(40, 230, 3))
    return Sprite(
        kind,
        start,
        base * h,
        (end - start) / max(seconds, 1e-3),
        size,
        1.0,
        float(rng.uniform(0, 6.3)),
        (colour[0], colour[1], colour[2]),
    )


def _ball(region: np.ndarray, sprite: Sprite, seconds: float) -> None:
    """A shaded ball bouncing along: the object where the prompt names no sprite."""
    radius = max(2, int(sprite.size))
    x = sprite.x + sprite.vx * seconds
    y = sprite.y - abs(np.sin(seconds * 3.0 + sprite.phase)) * sprite.size * 0.5
    centre = (int(x), int(y))
    cv2.circle(region, centre, radius, sprite.colour, -1, cv2.LINE_AA)
    light = tuple(min(255, c + 70) for c in sprite.colour)
    cv2.circle(region, (centre[0] - radius // 3, centre[1] - radius // 3), radius // 3, light, -1)


def _outpainted(
    frames: Iterator[np.ndarray], mask: np.ndarray, spec: RenderSpec, plan: ScenePlan
) -> Iterator[np.ndarray]:
    """The input scaled into the mask's rectangle, untouched; around it the prompt's scene,
    with the input's edges reflected outwards and blurred, fading into it."""
    x, y, w, h = bounding_box(mask.astype(np.uint8))
    width, height = spec.width, spec.height
    scene = LandscapeScene(plan, width, height, spec.fps, spec.num_frames, spec.seed)
    outside = np.ones((height, width), np.uint8)
    outside[y : y + h, x : x + w] = 0
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, 5)
    fade = np.float32(FADE_SHARE * max(width, height))
    weight = np.exp(-distance / fade)[..., None]
    borders = (y, height - y - h, x, width - x - w)
    for index, frame in enumerate(frames):
        inner = cv2.resize(frame, (w, h), interpolation=cv2.INTER_AREA)
        reflected = cv2.copyMakeBorder(inner, *borders, cv2.BORDER_REFLECT_101)
        reflected = _blurred(reflected)
        ground = cv2.resize(scene.frame(index), (width, height), interpolation=cv2.INTER_LINEAR)
        out = ground + (reflected.astype(np.float32) - ground) * weight
        out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
        out[y : y + h, x : x + w] = inner
        yield out


def _blurred(image: np.ndarray) -> np.ndarray:
    """A wide blur, made on an eighth-size copy (a large kernel at full size is slow)."""
    height, width = image.shape[:2]
    small = cv2.resize(
        image, (max(1, width // 8), max(1, height // 8)), interpolation=cv2.INTER_AREA
    )
    small = cv2.GaussianBlur(small, (0, 0), 2.0)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
