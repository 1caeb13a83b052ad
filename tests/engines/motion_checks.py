"""Measuring motion in rendered frames with OpenCV: global flow, divergence, seams."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Motion:
    dx: float  # median horizontal flow, pixels per frame (+ = scene moves right)
    dy: float  # median vertical flow (+ = scene moves down)
    divergence: float  # relative scale change per frame (+ = zooming in)


def flow(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    grey_a = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY)
    grey_b = cv2.cvtColor(b, cv2.COLOR_RGB2GRAY)
    return cv2.calcOpticalFlowFarneback(grey_a, grey_b, None, 0.5, 4, 15, 3, 5, 1.2, 0)


def global_motion(frames: list[np.ndarray], step: int = 2) -> Motion:
    """Median flow and divergence over frame pairs `step` apart, per frame."""
    dxs, dys, divs = [], [], []
    for a, b in zip(frames[:-step:step], frames[step::step], strict=False):
        f = flow(a, b) / step
        h, w = f.shape[:2]
        dxs.append(float(np.median(f[..., 0])))
        dys.append(float(np.median(f[..., 1])))
        ys, xs = np.mgrid[0:h, 0:w]
        rx, ry = xs - w / 2, ys - h / 2
        radial = (f[..., 0] * rx + f[..., 1] * ry) / (rx**2 + ry**2 + 1e-6)
        divs.append(float(np.median(radial[(rx**2 + ry**2) > (0.1 * w) ** 2])))
    return Motion(float(np.median(dxs)), float(np.median(dys)), float(np.median(divs)))


def mean_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
