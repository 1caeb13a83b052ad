"""An engine whose progress reports, failure and output a test controls (jobs tests).

The imports from cinegen name where `Clip` and `Cancelled` live; a move of either is one fix
here.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from cinegen.core.errors import Cancelled
from cinegen.engines.base import RenderSpec
from cinegen.media.clip import Clip

__all__ = ["Cancelled", "ScriptedEngine"]


class ScriptedEngine:
    """Each render reports progress `steps` times (`before_step(step)` runs first, `pause`
    seconds pass after), then raises `error` if this is render number `fail_on` (1-based;
    None: every render), else returns `frames` flat frames at the spec's size.

    `renders` counts the renders begun, `reported` the progress reports that returned (a
    report that raised `Cancelled` is not counted)."""

    name = "scripted"

    def __init__(
        self,
        steps: int = 2,
        *,
        before_step: Callable[[int], None] | None = None,
        pause: float = 0.0,
        error: BaseException | None = None,
        fail_on: int | None = None,
        frames: int = 2,
    ) -> None:
        self.steps = steps
        self.before_step = before_step
        self.pause = pause
        self.error = error
        self.fail_on = fail_on
        self.frames = frames
        self.renders = 0
        self.reported = 0

    def render(self, spec: RenderSpec, progress: Callable[[float], None]) -> Clip:
        self.renders += 1
        for step in range(self.steps):
            if self.before_step is not None:
                self.before_step(step)
            progress(step / self.steps)
            self.reported += 1
            if self.pause:
                time.sleep(self.pause)
        if self.error is not None and self.fail_on in (None, self.renders):
            raise self.error
        frame = np.full((spec.height, spec.width, 3), 96, np.uint8)
        return Clip(
            frames=iter([frame] * self.frames),
            num_frames=self.frames,
            width=spec.width,
            height=spec.height,
            fps=spec.fps,
        )
