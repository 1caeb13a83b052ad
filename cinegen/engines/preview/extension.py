"""Extension: the input video, unchanged, then more seconds that continue its last motion.

Steps: stream the input frames through (never holding the video: only small grey copies of
the last second and the last full frame are kept); measure the global camera motion of the
last second as an affine per frame (dense DIS flow, robust least squares: deterministic, no
RANSAC); then keep applying that motion to the last frame, so the seam is no bigger a step
than the input's own frame steps. Only the camera's motion is carried on: a subject moving
within the frame stops at the seam (the last frame is all there is to warp).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import cv2
import numpy as np

from cinegen.engines.base import InputVideo
from cinegen.engines.preview.particles import Field, draw_fields
from cinegen.engines.preview.warp import four_channels, three_channels
from cinegen.media.decode import fit_image, iter_video_frames

MOTION_LONG_SIDE = 320
FADE_IN_SECONDS = 1.0
GRID_STEP = 4


def _small_grey(frame: np.ndarray, scale: float) -> np.ndarray:
    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    if scale == 1.0:
        return grey
    size = (max(8, round(frame.shape[1] * scale)), max(8, round(frame.shape[0] * scale)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


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


def _as3(m: np.ndarray) -> np.ndarray:
    return np.vstack([m, [0.0, 0.0, 1.0]])


def measure_motion(history: list[np.ndarray], scale: float, stride: int = 4) -> np.ndarray:
    """The typical per-frame affine of the frames in `history` (element-wise median).

    Measured between frames `stride` apart and divided back down to one frame: a zoom changes
    the scale by a fraction of a percent per frame, which encoding noise would swamp in the
    flow between neighbouring frames.
    """
    if len(history) < 2:
        return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    stride = min(stride, len(history) - 1)
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    identity = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    affines = []
    for before, after in zip(history[:-stride], history[stride:], strict=True):
        flow = dis.calc(before, after, None)
        affines.append(identity + (_to_full(fit_affine(flow), scale) - identity) / stride)
    recent = np.stack(affines[-12:])
    return np.median(recent, axis=0)


class Extension:
    """The input's frames, then more that carry on its camera motion: `num_frames` in all."""

    def __init__(
        self,
        video: InputVideo,
        width: int,
        height: int,
        fps: int,
        num_frames: int,
        weather: list[Field] | None = None,
    ) -> None:
        self.video = video
        self.weather = weather or []
        self.size = (width, height)
        self.fps = fps
        self.num_frames = num_frames
        self.scale = min(1.0, MOTION_LONG_SIDE / max(width, height))
        self.input_frames = 0
        self.motion: np.ndarray | None = None

    def _input(self) -> Iterator[np.ndarray]:
        width, height = self.size
        for frame in iter_video_frames(self.video.path):
            if frame.shape[1] != width or frame.shape[0] != height:
                frame = fit_image(frame, width, height)
            yield frame

    def frames(self) -> Iterator[np.ndarray]:
        history: deque[np.ndarray] = deque(maxlen=self.fps + 1)
        last: np.ndarray | None = None
        for frame in self._input():
            if self.input_frames == self.num_frames:
                return
            history.append(_small_grey(frame, self.scale))
            last = frame
            self.input_frames += 1
            yield frame
        if last is None:
            return
        self.motion = measure_motion(list(history), self.scale)
        yield from self._continue(last, self.motion, self.num_frames - self.input_frames)

    def _continue(self, last: np.ndarray, motion: np.ndarray, count: int) -> Iterator[np.ndarray]:
        """Apply the motion again and again to the last frame (composed, so no drift).

        The prompt's weather (rain, snow, sparks) falls over the new part, fading in over a
        second so the seam stays as smooth as the input's own frame steps.
        """
        step = _as3(motion)
        total = np.eye(3)
        width, height = self.size
        source = four_channels(last)
        for index in range(count):
            total = step @ total
            warped = cv2.warpAffine(
                source,
                total[:2],
                (width, height),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT101,
            )
            frame = three_channels(warped)
            if self.weather:
                seconds = (index + 1) / self.fps
                draw_fields(frame, self.weather, seconds, share=seconds / FADE_IN_SECONDS)
            yield frame
