"""The engine interface: a `RenderSpec` in, a `Clip` (cinegen/media/clip.py) out.

An engine knows nothing of HTTP, operations or storage. Frames are streamed (an iterator), so
a 4k clip never has to sit in memory whole; the encoder pulls them one at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from cinegen.core.request import Mode
from cinegen.media.clip import Clip

ProgressFn = Callable[[float], None]
"""Called with a fraction in [0, 1]. It raises `Cancelled` when the job was cancelled."""


@dataclass(frozen=True)
class InputVideo:
    """A decoded extension input: its frames stay on disk until the engine streams them."""

    path: str
    width: int
    height: int
    num_frames: int
    fps: float
    has_audio: bool


@dataclass(frozen=True)
class RenderSpec:
    mode: Mode
    prompt: str
    negative_prompt: str
    width: int
    height: int
    fps: int
    num_frames: int  # frames of the output, input video included for an extension
    seed: int
    audio: bool
    first_frame: np.ndarray | None = None  # H×W×3 uint8, already fitted to width×height
    last_frame: np.ndarray | None = None
    reference_images: tuple[np.ndarray, ...] = ()  # H×W×3 uint8, native size
    reference_types: tuple[str, ...] = ()
    input_video: InputVideo | None = None
    mask: np.ndarray | None = None  # an edit's region: H×W bool at width×height (white = True)
    mask_mode: str = ""  # an edit's INSERT | REMOVE | REMOVE_STATIC | OUTPAINT
    model: str = ""  # the requested model id (the diffusers engine picks its pipeline by it)
    camera_control: str | None = None  # Vertex's cameraControl: overrides the prompt's move

    @property
    def seam(self) -> frozenset[int]:
        """The frame an extension's new part continues from (its last input frame), as
        `Clip.keyframes`; none in other modes."""
        if self.mode is not Mode.EXTENSION or self.input_video is None:
            return frozenset()
        last = min(self.input_video.num_frames, self.num_frames) - 1
        return frozenset({last}) if last >= 0 else frozenset()


class Engine(Protocol):
    name: str

    def render(self, spec: RenderSpec, progress: ProgressFn) -> Clip:
        """Produce the clip. May return a lazy frame iterator that calls `progress`."""
        ...
