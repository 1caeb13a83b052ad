"""The extension's frames: the input's, then more that carry on its camera and subjects."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import cv2
import numpy as np

from cinegen.engines.base import InputVideo
from cinegen.engines.preview.extension.camera import as3, measure_motion, small_copy
from cinegen.engines.preview.extension.cutout import Subject, cut_out_subjects
from cinegen.engines.preview.extension.subjects import find_moving_parts
from cinegen.engines.preview.particles import Field, draw_fields
from cinegen.engines.preview.samples import Drift
from cinegen.engines.preview.warp import four_channels, three_channels
from cinegen.media.decode import fit_image, iter_video_frames

MOTION_LONG_SIDE = 320
HISTORY_SECONDS = 2.0
"""How much of the input's end is kept: the camera is measured on its last second; a subject
needs longer to uncover the background behind it (a car its own length)."""
FADE_IN_SECONDS = 1.0


class Extension:
    """The input's frames, then more that carry on its camera and subjects: `num_frames`."""

    def __init__(
        self,
        video: InputVideo,
        width: int,
        height: int,
        fps: int,
        num_frames: int,
        weather: list[Field] | None = None,
        drift: Drift | None = None,
    ) -> None:
        self.video = video
        self.weather = weather or []
        self.drift = drift
        self.size = (width, height)
        self.fps = fps
        self.num_frames = num_frames
        self.scale = min(1.0, MOTION_LONG_SIDE / max(width, height))
        self.input_frames = 0
        self.motion: np.ndarray | None = None
        self.subjects: list[Subject] = []

    def _input(self) -> Iterator[np.ndarray]:
        width, height = self.size
        for frame in iter_video_frames(self.video.path):
            if frame.shape[1] != width or frame.shape[0] != height:
                frame = fit_image(frame, width, height)
            yield frame

    def frames(self) -> Iterator[np.ndarray]:
        kept = round(HISTORY_SECONDS * self.fps) + 1
        recent: deque[np.ndarray] = deque(maxlen=kept)
        for frame in self._input():
            if self.input_frames == self.num_frames:
                return
            recent.append(frame)
            self.input_frames += 1
            yield frame
        if not recent:
            return
        history = [small_copy(frame, self.scale) for frame in recent]
        self.motion = measure_motion(history[-self.fps - 1 :], self.scale)
        parts = find_moving_parts(history, self.motion, self.scale)
        plate, self.subjects = cut_out_subjects(list(recent), parts, self.motion)
        recent.clear()
        yield from self._continue(plate, self.motion, self.num_frames - self.input_frames)

    def _continue(self, plate: np.ndarray, motion: np.ndarray, count: int) -> Iterator[np.ndarray]:
        """Apply the motion again and again to the background (composed, so no drift), and
        draw each subject further along its own way; the sample's `Drift`, where given, moves
        the whole view after that.

        The prompt's weather (rain, snow, sparks) falls over the new part, fading in over a
        second so the seam stays as smooth as the input's own frame steps.
        """
        step = as3(motion)
        total = np.eye(3)
        width, height = self.size
        source = four_channels(plate)
        for index in range(count):
            total = step @ total
            view = None if self.drift is None else self.drift.matrix(index + 1, self.fps, self.size)
            warped = cv2.warpAffine(
                source,
                (total if view is None else view @ total)[:2],
                (width, height),
                flags=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REFLECT101,
            )
            frame = three_channels(warped)
            for subject in self.subjects:
                subject.draw(frame, total, index + 1, view)
            if self.weather:
                seconds = (index + 1) / self.fps
                draw_fields(frame, self.weather, seconds, share=seconds / FADE_IN_SECONDS)
            yield frame
