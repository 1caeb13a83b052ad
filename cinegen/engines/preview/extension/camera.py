"""The camera of the input's last second: its global motion as an affine per frame, and
small frames moved into the last frame's camera.
"""

from __future__ import annotations

import cv2
import numpy as np

GRID_STEP = 4


def small_copy(frame: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return frame
    size = (max(8, round(frame.shape[1] * scale)), max(8, round(frame.shape[0] * scale)))
    return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)


def to_grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def fit_affine(flow: np.ndarray, step: int = GRID_STEP) -> np.ndarray:
    """The 2×3 affine that best explains `flow` (iteratively reweighted least squares)."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h:step, 0:w:step].astype(np.float64)
    src = np.stack([xs.ravel(), ys.ravel()], 1)
    dst = src + flow[::step, ::step].reshape(-1, 2).astype(np.float64)
    design = np.concatenate([src, np.ones((len(src), 1))], 1)
    weights = np.ones(len(src))
    params = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    for _ in range(5):
        sw = np.sqrt(weights)[:, None]
        params, *_ = np.linalg.lstsq(design * sw, dst * sw, rcond=None)
        residual = np.linalg.norm(design @ params - dst, axis=1)
        scale = max(1e-3, float(np.median(residual)) * 1.5)
        weights = 1.0 / np.maximum(1.0, residual / scale)  # Huber-like
    return params.T


def _to_full(affine: np.ndarray, scale: float) -> np.ndarray:
    """An affine measured on a copy scaled by `scale`, in full-resolution pixels."""
    full = affine.copy()
    full[:, 2] /= scale
    return full


def as3(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0.0, 0.0, 1.0]])


def translation(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def measure_motion(history: list[np.ndarray], scale: float, stride: int = 4) -> np.ndarray:
    """The typical per-frame affine of the small RGB frames in `history` (element-wise median).

    Measured between frames `stride` apart and divided back down to one frame: a zoom changes
    the scale by a fraction of a percent per frame, which encoding noise would swamp in the
    flow between neighbouring frames.
    """
    if len(history) < 2:
        return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    stride = min(stride, len(history) - 1)
    dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    affines = []
    greys = [to_grey(frame) for frame in history]
    for before, after in zip(greys[:-stride], greys[stride:], strict=True):
        # cv2's stubs make calc's `flow` required; None asks for a new array.
        flow = dis.calc(before, after, None)  # type: ignore[call-overload]
        affines.append(identity + (_to_full(fit_affine(flow), scale) - identity) / stride)
    recent = np.stack(affines[-12:])
    return np.median(recent, axis=0)


def in_last_camera(
    frame: np.ndarray,
    motion: np.ndarray,
    scale: float,
    back: int,
    border: int = cv2.BORDER_REPLICATE,
) -> np.ndarray:
    """A small frame from `back` frames before the last, moved into the last one's camera
    (what it did not show filled by `border`)."""
    to_small = np.diag([scale, scale, 1.0])
    undo = to_small @ np.linalg.matrix_power(np.linalg.inv(as3(motion)), back)
    undo = undo @ np.linalg.inv(to_small)  # last frame's pixel → that frame's pixel
    return cv2.warpAffine(
        frame,
        undo[:2],
        (frame.shape[1], frame.shape[0]),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=border,
    )
