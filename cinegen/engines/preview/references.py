"""Reference images: each asset's subject placed in the prompt's scene, moving; style
references grade the scene toward their colours.

An asset is scaled once (so it stays sharp and recognisable: a template match at that scale
finds it) and pasted at whole-pixel positions along a slow drifting path, with a soft edge.
An asset shot on a plain background (a studio white, or a transparent PNG, which decoding
puts on black) is pasted without it: only its subject enters the scene (`subject_weight`).
The scale of each placement is reported in the clip's notes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

ASSET_HEIGHT = 0.34  # fraction of the frame height an asset occupies
EDGE = 3  # pixels of soft edge around a pasted asset
PLAIN_BORDER = 12.0
"""Levels (standard deviation of each channel) under which an asset's border is one plain
background colour."""
BACKGROUND_TOLERANCE = 24
"""Levels (each channel) a pixel may differ from the border's colour and be background."""


@dataclass(frozen=True)
class Placement:
    image: np.ndarray  # the asset at its placed scale, uint8 RGB
    weight: np.ndarray  # float32 H×W in [0, 1], soft edge
    scale: float
    anchor: tuple[float, float]  # centre at t = 0, fraction of the frame
    drift: tuple[float, float]  # fraction of the frame per second
    bob: float  # vertical bob amplitude, fraction of the frame
    phase: float


def _soft_edge(height: int, width: int) -> np.ndarray:
    ramp_y = np.clip((np.minimum(np.arange(height), np.arange(height)[::-1]) + 1) / EDGE, 0, 1)
    ramp_x = np.clip((np.minimum(np.arange(width), np.arange(width)[::-1]) + 1) / EDGE, 0, 1)
    return np.minimum(ramp_y[:, None], ramp_x[None, :]).astype(np.float32)


def subject_weight(image: np.ndarray) -> np.ndarray:
    """Where an asset is its subject (float32 H×W in [0, 1], softened by EDGE pixels): all of
    it, unless its border is one plain colour; then not the background, which is what
    floods in from the border within BACKGROUND_TOLERANCE. Left whole when that would leave
    almost nothing, or take almost nothing away."""
    height, width = image.shape[:2]
    whole = _soft_edge(height, width)
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]]).astype(np.float32)
    if min(height, width) < 8 or float(border.std(axis=0).max()) > PLAIN_BORDER:
        return whole
    filled = np.zeros((height + 2, width + 2), np.uint8)
    tolerance = (BACKGROUND_TOLERANCE,) * 3
    flags = 4 | cv2.FLOODFILL_MASK_ONLY | cv2.FLOODFILL_FIXED_RANGE | (1 << 8)
    seed_colour = np.median(border, axis=0)
    for y, x in ((0, 0), (0, width - 1), (height - 1, 0), (height - 1, width - 1)):
        if filled[y + 1, x + 1] == 0 and np.abs(image[y, x] - seed_colour).max() <= PLAIN_BORDER:
            cv2.floodFill(image, filled, (x, y), 0, tolerance, tolerance, flags)
    subject = filled[1:-1, 1:-1] == 0
    if not 0.02 < subject.mean() < 0.98:
        return whole
    soft = cv2.GaussianBlur(subject.astype(np.float32), (0, 0), EDGE / 2)
    return np.minimum(soft, whole)


def place_assets(
    assets: tuple[np.ndarray, ...], width: int, height: int, rng: np.random.Generator
) -> list[Placement]:
    """Scale each asset and give it its own lane across the frame."""
    placements = []
    count = len(assets)
    for index, asset in enumerate(assets):
        src_h, src_w = asset.shape[:2]
        target_h = ASSET_HEIGHT * height * (1.0 if count == 1 else 0.85)
        scale = min(target_h / src_h, 0.3 * width / src_w)
        size = (max(4, round(src_w * scale)), max(4, round(src_h * scale)))
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
        image = cv2.resize(asset, size, interpolation=interpolation)
        lane = (index + 0.5) / count
        anchor = (0.2 + 0.6 * lane, 0.62 - 0.05 * (index % 2))
        direction = 1.0 if index % 2 == 0 else -1.0
        placements.append(
            Placement(
                image=image,
                weight=subject_weight(image),
                scale=scale,
                anchor=anchor,
                drift=(direction * rng.uniform(0.02, 0.035), 0.0),
                bob=rng.uniform(0.01, 0.02),
                phase=rng.uniform(0, 2 * np.pi),
            )
        )
    return placements


def paste(frame: np.ndarray, p: Placement, seconds: float) -> None:
    """Paste one placement at its position at `seconds` (whole pixels: no resampling blur)."""
    height, width = frame.shape[:2]
    ph, pw = p.image.shape[:2]
    cx = (p.anchor[0] + p.drift[0] * seconds) * width
    cy = (p.anchor[1] + p.bob * np.sin(seconds * 1.5 + p.phase)) * height
    x0 = int(round(cx - pw / 2))
    y0 = int(round(cy - ph / 2))
    x0 = min(max(x0, 0), width - pw) if pw <= width else (width - pw) // 2
    y0 = min(max(y0, 0), height - ph) if ph <= height else (height - ph) // 2
    fx0, fy0 = max(x0, 0), max(y0, 0)
    fx1, fy1 = min(x0 + pw, width), min(y0 + ph, height)
    if fx1 <= fx0 or fy1 <= fy0:
        return
    _shadow(frame, p.weight, x0, y0)
    src = p.image[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    weight = p.weight[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    dst = frame[fy0:fy1, fx0:fx1]
    dst[...] = cv2.blendLinear(src, dst, weight, 1.0 - weight)


def _shadow(frame: np.ndarray, weight: np.ndarray, x0: int, y0: int) -> None:
    """A soft drop shadow of the asset's shape (`weight`, placed at x0, y0), below and right
    of it, so it sits in the scene."""
    height, width = frame.shape[:2]
    ph, pw = weight.shape
    offset = max(2, ph // 25)
    sx0, sy0 = max(0, x0 + offset), max(0, y0 + offset)
    sx1, sy1 = min(x0 + offset + pw, width), min(y0 + offset + ph, height)
    if sx1 > sx0 and sy1 > sy0:
        shade = weight[sy0 - y0 - offset : sy1 - y0 - offset, sx0 - x0 - offset : sx1 - x0 - offset]
        region = frame[sy0:sy1, sx0:sx1]
        dark = cv2.convertScaleAbs(region, alpha=0.6)
        region[...] = cv2.blendLinear(dark, region, shade, 1.0 - shade)


@dataclass(frozen=True)
class StyleGrade:
    """Per-channel gain and offset that move the scene's colour statistics toward a style."""

    gain: np.ndarray
    offset: np.ndarray

    def apply(self, frame: np.ndarray) -> np.ndarray:
        matrix = np.concatenate([np.diag(self.gain), self.offset[:, None]], axis=1)
        return cv2.transform(frame, matrix.astype(np.float32))


def style_grade(scene_sample: np.ndarray, styles: tuple[np.ndarray, ...]) -> StyleGrade | None:
    """Reinhard-style mean/std transfer (per RGB channel), half strength so the scene survives."""
    if not styles:
        return None
    target = np.concatenate([s.reshape(-1, 3) for s in styles]).astype(np.float32)
    source = scene_sample.reshape(-1, 3).astype(np.float32)
    s_mean, s_std = source.mean(0), source.std(0) + 1e-3
    t_mean, t_std = target.mean(0), target.std(0) + 1e-3
    full_gain = t_std / s_std
    gain = 1.0 + 0.6 * (np.clip(full_gain, 0.3, 3.0) - 1.0)
    offset = 0.6 * t_mean + 0.4 * s_mean - gain * s_mean
    return StyleGrade(gain.astype(np.float32), offset.astype(np.float32))
