"""A landscape to film and the measures of how the camera moved over it (cameraControl tests).

The sky (top 40 %) is soft and pale, so the preview engine's depth cues put it far; the ground
below is sharp and saturated, so near. Shifts are measured by phase correlation (OpenCV's,
over a Hann window), per horizontal band; scale by the best match of one frame grown about the
centre.
"""

from __future__ import annotations

import cv2
import numpy as np


def landscape(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Soft pale sky over the top 40 %, sharp green ground below (uint8 RGB)."""
    rng = np.random.default_rng(seed)
    horizon = int(height * 0.4)
    sky = cv2.GaussianBlur(rng.uniform(0, 1, (horizon, width)).astype(np.float32), (0, 0), 3.0)
    sky = (sky - sky.min()) / (np.ptp(sky) + 1e-6)
    sky_rgb = np.stack([150 + 60 * sky, 170 + 60 * sky, 200 + 50 * sky], -1)
    noise = rng.uniform(0, 1, (height - horizon, width)).astype(np.float32)
    ground = cv2.GaussianBlur(noise, (0, 0), 1.0)
    ground = (ground - ground.min()) / (np.ptp(ground) + 1e-6)
    ground_rgb = np.stack([40 + 200 * ground, 120 + 120 * ground, 20 + 40 * ground], -1)
    return np.clip(np.concatenate([sky_rgb, ground_rgb]), 0, 255).astype(np.uint8)


def sky_band(height: int) -> slice:
    return slice(int(height * 0.04), int(height * 0.34))


def ground_band(height: int) -> slice:
    return slice(int(height * 0.6), int(height * 0.98))


def _grey(frame: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY).astype(np.float32)


def shift(a: np.ndarray, b: np.ndarray, rows: slice) -> tuple[float, float]:
    """(dx, dy) in pixels that the band `rows` moved from `a` to `b` (+x right, +y down)."""
    grey_a, grey_b = _grey(a)[rows], _grey(b)[rows]
    window = cv2.createHanningWindow(grey_a.shape[::-1], cv2.CV_32F)
    (dx, dy), _ = cv2.phaseCorrelate(grey_a, grey_b, window)
    return dx, dy


def scale(a: np.ndarray, b: np.ndarray, rows: slice) -> float:
    """How much `b` is `a` grown about the frame's centre, within the band `rows` (to 0.005)."""
    height, width = a.shape[:2]
    cols = slice(width // 8, width - width // 8)
    grey_a, grey_b = _grey(a), _grey(b)[rows, cols]
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)

    def error(s: float) -> float:
        grown = cv2.warpAffine(grey_a, cv2.getRotationMatrix2D(centre, 0.0, s), (width, height))
        return float(np.abs(grown[rows, cols] - grey_b).mean())

    return float(min(np.linspace(0.8, 1.25, 91), key=error))
