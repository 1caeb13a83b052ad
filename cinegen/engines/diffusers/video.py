"""The output contract, whatever the model's native shape.

- size: generate at the model's multiple near the requested aspect (1280×704 for 720p), then
  scale to cover and centre-crop to the exact 1280×720 (no stretching);
- rate: a 16 fps model is resampled to 24 fps by motion interpolation (dense optical flow,
  both directions, warped and blended), never by repeating frames;
- length: the model makes 4k+1 (or 8k+1) frames, enough to cover the request; the output is
  trimmed to exactly durationSeconds × 24;
- 1080p / 4k: generated at the model's size and upscaled (Lanczos unless an upscaler
  pipeline is configured; the notes say which).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import cv2
import numpy as np

from cinegen.media.clip import FPS

FLOW_LONG_SIDE = 512  # optical flow is measured on a copy this big, then scaled up


def generation_size(
    width: int, height: int, multiple: int, max_area: int, fixed: tuple[int, int] | None = None
) -> tuple[int, int]:
    """(w, h) to generate: the output's aspect, at most `max_area` pixels, at `multiple`."""
    if fixed is not None:
        w, h = fixed
        return (h, w) if height > width else (w, h)
    scale = min(1.0, math.sqrt(max_area / (width * height)))
    w = max(multiple, round(width * scale / multiple) * multiple)
    h = max(multiple, round(height * scale / multiple) * multiple)
    return w, h


def model_frame_count(frames: int, frames_per_latent: int) -> int:
    """The smallest valid count (k·n + 1) holding at least `frames` frames."""
    k = max(1, math.ceil((frames - 1) / frames_per_latent))
    return k * frames_per_latent + 1


def frames_needed(output_frames: int, model_fps: int) -> int:
    """Model frames whose time span covers `output_frames` frames at 24 fps."""
    last = (output_frames - 1) * model_fps / FPS
    return math.ceil(last - 1e-9) + 1


def positions(output_frames: int, model_fps: int) -> np.ndarray:
    """Where each 24 fps output frame falls on the model's frame axis (fractional)."""
    return np.arange(output_frames) * (model_fps / FPS)


def fit_frame(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to cover, centre-crop to exactly width×height; Lanczos up, area down."""
    src_h, src_w = frame.shape[:2]
    if (src_w, src_h) == (width, height):
        return frame
    scale = max(width / src_w, height / src_h)
    new_w, new_h = max(width, round(src_w * scale)), max(height, round(src_h * scale))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LANCZOS4
    resized = cv2.resize(frame, (new_w, new_h), interpolation=interp)
    left, top = (new_w - width) // 2, (new_h - height) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


def to_uint8(frames: np.ndarray) -> np.ndarray:
    """Pipeline output (floats in [0, 1]) as uint8 RGB frames."""
    if frames.dtype == np.uint8:
        return frames
    return (np.clip(frames, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def _flow(a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    """Dense flow a→b in full-resolution pixels (DIS, deterministic)."""
    ga, gb = (cv2.cvtColor(x, cv2.COLOR_RGB2GRAY) for x in (a, b))
    if scale < 1.0:
        size = (max(16, round(a.shape[1] * scale)), max(16, round(a.shape[0] * scale)))
        ga, gb = (cv2.resize(x, size, interpolation=cv2.INTER_AREA) for x in (ga, gb))
    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    # cv2's stubs make calc's `flow` required; None asks for a new array.
    flow = dis.calc(ga, gb, None)  # type: ignore[call-overload]
    if scale < 1.0:
        flow = cv2.resize(flow, (a.shape[1], a.shape[0]), interpolation=cv2.INTER_LINEAR)
        flow /= scale
    return flow


def _warp(image: np.ndarray, flow: np.ndarray, t: float) -> np.ndarray:
    h, w = image.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return cv2.remap(
        image,
        grid_x + t * flow[..., 0],
        grid_y + t * flow[..., 1],
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )


def between(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """The frame a fraction `t` of the way from a to b, by motion (not a cross-fade alone)."""
    scale = min(1.0, FLOW_LONG_SIDE / max(a.shape[:2]))
    forward = _flow(a, b, scale)  # a(x) moves to b(x + F)
    backward = _flow(b, a, scale)
    from_a = _warp(a, backward, t)  # sample a at x - t·F ≈ x + t·B
    from_b = _warp(b, forward, 1.0 - t)
    mixed = (1.0 - t) * from_a.astype(np.float32) + t * from_b.astype(np.float32)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def resample(frames: Sequence[np.ndarray], where: np.ndarray) -> Iterator[np.ndarray]:
    """Frames at fractional positions `where`: exact frames where integral, else motion."""
    last = len(frames) - 1
    for pos in where:
        pos = min(max(float(pos), 0.0), float(last))
        low = math.floor(pos + 1e-6)
        frac = pos - low
        if frac < 1e-3 or low >= last:
            yield frames[min(low, last)]
        elif frac > 1 - 1e-3:
            yield frames[low + 1]
        else:
            yield between(frames[low], frames[low + 1], frac)


def cross_fade(previous: np.ndarray, current: np.ndarray, t: float) -> np.ndarray:
    """Blend where two chunks overlap, so the seam has no jump."""
    mixed = (1.0 - t) * previous.astype(np.float32) + t * current.astype(np.float32)
    return np.clip(mixed + 0.5, 0, 255).astype(np.uint8)


def sample_times(count: int, model_fps: int, input_fps: float, input_frames: int) -> list[int]:
    """Indices of the last `count` input frames spaced at the model's frame interval."""
    step = input_fps / model_fps
    last = input_frames - 1
    picks = [round(last - i * step) for i in range(count)]
    return [max(0, p) for p in reversed(picks)]
