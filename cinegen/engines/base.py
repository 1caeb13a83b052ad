"""The engine interface: a `RenderSpec` in, a `Clip` out.

An engine knows nothing of HTTP, operations or storage. Frames are streamed (an iterator), so
a 4k clip never has to sit in memory whole; the encoder pulls them one at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from cinegen.core.request import Mode

AUDIO_RATE = 48_000

ProgressFn = Callable[[float], None]
"""Called with a fraction in [0, 1]. It raises `Cancelled` when the job was cancelled."""


class Cancelled(Exception):
    """Raised from a progress callback to abort a render."""


class EngineError(Exception):
    """A render failed for a reason the user should read (bad input video, out of memory)."""


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
    extras: dict[str, object] = field(default_factory=dict)

    @property
    def seam(self) -> frozenset[int]:
        """The frame an extension's new part continues from (its last input frame), as
        `Clip.keyframes`; none in other modes."""
        if self.mode is not Mode.EXTENSION or self.input_video is None:
            return frozenset()
        last = min(self.input_video.num_frames, self.num_frames) - 1
        return frozenset({last}) if last >= 0 else frozenset()


@dataclass
class Clip:
    """What an engine returns: frames to stream, the soundtrack, and facts for the metadata."""

    frames: Iterator[np.ndarray]  # each H×W×3 uint8 RGB, at `frame_size`
    num_frames: int
    width: int
    height: int
    fps: int
    audio: np.ndarray | Future[np.ndarray] | None = None
    """float32 (samples, 2) in [-1, 1] at AUDIO_RATE; or a Future of it, from an engine that
    makes the soundtrack on another thread while the first frames are rendered and encoded."""
    notes: dict[str, object] = field(default_factory=dict)
    work_size: tuple[int, int] | None = None
    """(width, height) of the frames when smaller than the video: an engine that works at a
    smaller size leaves the scaling up to the encoder, which converts them to YUV at that
    size and scales the planes (at half size the chroma is already the right size). No
    full-size RGB frame is made: at 4k that saves about 10 ms a frame."""
    keyframes: frozenset[int] = frozenset()
    """Frames besides the first and the last that are encoded as they are, as keyframes: an
    extension's last input frame, so that the new part continues from the input's own
    picture. (The input's last frame is its finest: a P-frame after coarser ones only
    gets there over several frames, and on a still scene that step is the seam.)"""

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of the frames as they come."""
        return self.work_size or (self.width, self.height)

    def soundtrack(self) -> np.ndarray | None:
        """The audio, waiting for it if it is still being made."""
        if isinstance(self.audio, Future):
            return self.audio.result()
        return self.audio

    def soundtrack_ready(self) -> bool:
        return not isinstance(self.audio, Future) or self.audio.done()


class Engine(Protocol):
    name: str

    def render(self, spec: RenderSpec, progress: ProgressFn) -> Clip:
        """Produce the clip. May return a lazy frame iterator that calls `progress`."""
        ...
