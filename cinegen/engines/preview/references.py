"""Reference images: each asset's subject placed in the prompt's scene, moving; style
references grade the scene toward their colours.

An asset is scaled once (so it stays sharp and recognisable: a template match at that scale
finds it) and pasted at whole-pixel positions along a slow drifting path, with a soft edge.
The scale of each placement is reported in the clip's notes.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

ASSET_HEIGHT = 0.34  # fraction of the frame height an asset occupies
EDGE = 3  # pixels of soft edge around a pasted asset


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
                weight=_soft_edge(size[1], size[0]),
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
    _shadow(frame, fx0, fy0, fx1, fy1)
    src = p.image[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    weight = p.weight[fy0 - y0 : fy1 - y0, fx0 - x0 : fx1 - x0]
    dst = frame[fy0:fy1, fx0:fx1]
    dst[...] = cv2.blendLinear(src, dst, weight, 1.0 - weight)


def _shadow(frame: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> None:
    """A soft drop shadow below and right of a pasted asset, so it sits in the scene."""
    height, width = frame.shape[:2]
    offset = max(2, (y1 - y0) // 25)
    sx0, sy0 = min(x0 + offset, width), min(y0 + offset, height)
    sx1, sy1 = min(x1 + offset, width), min(y1 + offset, height)
    if sx1 > sx0 and sy1 > sy0:
        region = frame[sy0:sy1, sx0:sx1]
        region[...] = cv2.convertScaleAbs(region, alpha=0.6)


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
