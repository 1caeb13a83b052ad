"""A `Clip`: what an engine hands the encoder, and the rates every video and soundtrack has.

Frames are streamed (an iterator), so a 4k clip never has to sit in memory whole; the encoder
pulls them one at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

FPS = 24
"""Frames a second of every video cinegen writes."""

AUDIO_RATE = 48_000
"""Samples a second of every soundtrack (and of input audio, as it is read)."""


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
    full-size RGB frame is made, nor converted."""
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
