"""Measuring helpers shared by the media and engine tests (PyAV is the ground truth)."""

from __future__ import annotations

from dataclasses import dataclass

import av
import cv2
import numpy as np

from cinegen.media.clip import Clip


@dataclass(frozen=True)
class Facts:
    width: int
    height: int
    fps: float
    frames: int
    audio_rate: int | None
    audio_channels: int | None
    audio_seconds: float | None


def facts(path: str) -> Facts:
    """What a player sees in the file: decoded frame count, rate, size, the audio stream."""
    with av.open(path) as container:
        video = container.streams.video[0]
        width, height = video.codec_context.width, video.codec_context.height
        fps = float(video.average_rate)
        frames = sum(1 for _ in container.decode(video=0))
    with av.open(path) as container:
        if not container.streams.audio:
            return Facts(width, height, fps, frames, None, None, None)
        audio = container.streams.audio[0]
        seconds = float(audio.duration * audio.time_base) if audio.duration else None
        return Facts(
            width,
            height,
            fps,
            frames,
            audio.codec_context.sample_rate,
            audio.codec_context.channels,
            seconds,
        )


def decoded_frames(path: str) -> list[np.ndarray]:
    with av.open(path) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def textured(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A photo-like test image: smooth colour regions plus finer luminance detail.

    (Random saturated colour at pixel scale is not photo-like: 4:2:0 chroma alone costs it
    ~7 dB, and PSNR thresholds are about the pipeline, not chroma subsampling.)
    """
    rng = np.random.default_rng(seed)
    colour = rng.uniform(40, 215, (max(2, height // 24), max(2, width // 24), 3))
    colour = cv2.resize(colour.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    detail = rng.uniform(-40, 40, (max(2, height // 6), max(2, width // 6))).astype(np.float32)
    detail = cv2.resize(detail, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.clip(colour + detail[..., None], 0, 255).astype(np.uint8)


def clip_of(frames: list[np.ndarray], audio: np.ndarray | None = None) -> Clip:
    height, width = frames[0].shape[:2]
    return Clip(
        frames=iter(frames), num_frames=len(frames), width=width, height=height, fps=24, audio=audio
    )


def shapes_photo(seed: int, width: int = 480, height: int = 270) -> np.ndarray:
    """Smooth colour, 40 hard-edged discs and boxes, grain (like bench/preview.py's photo)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 255, (9, 16, 3), dtype=np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    for _ in range(40):
        colour = tuple(int(c) for c in rng.integers(0, 255, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.integers(height // 40, height // 6))
        if rng.random() < 0.5:
            cv2.circle(image, (x, y), r, colour, -1, cv2.LINE_AA)
        else:
            cv2.rectangle(image, (x - r, y - r // 2), (x + r, y + r // 2), colour, -1)
    grain = rng.normal(0, 4, (height, width, 1))
    return np.clip(image + grain, 0, 255).astype(np.uint8)
