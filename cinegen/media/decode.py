"""Decode what clients send: still images (Pillow) and MP4 videos (PyAV).

Every failure a client can cause surfaces as `MediaError`, whose message the server returns
as a 400. Images come back as H×W×3 uint8 RGB arrays; videos are streamed frame by frame so
a long 4k input never sits in memory whole.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np
from PIL import Image, ImageOps

from cinegen.core.errors import MediaError
from cinegen.media.clip import AUDIO_RATE

MAX_IMAGE_PIXELS = 64_000_000
"""Larger images are refused: a decompression bomb must not exhaust memory (8k is ~33 Mpx)."""


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    num_frames: int
    fps: float
    duration_seconds: float
    has_audio: bool


# --------------------------------------------------------------------------- images


def decode_image(data: bytes, *, background: tuple[int, int, int] = (0, 0, 0)) -> np.ndarray:
    """Decode JPEG/PNG/WebP (anything Pillow reads) to H×W×3 uint8 RGB, upright.

    EXIF orientation is applied (phone photos are stored sideways); transparency is composited
    on `background` (black by default), since video has no alpha.
    """
    if not data:
        raise MediaError("The image could not be decoded: the image data is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
            _refuse_bombs(image.size)
            image = ImageOps.exif_transpose(image)
            image.load()
    except MediaError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(f"The image could not be decoded: it is too large ({exc}).") from exc
    except Exception as exc:  # Pillow raises many types for corrupt data
        raise MediaError(f"The image could not be decoded: {_reason(exc)}") from exc
    return _to_rgb(image, background)


def _refuse_bombs(size: tuple[int, int]) -> None:
    """Refuse absurd pixel counts before anything is decompressed."""
    width, height = size
    if width <= 0 or height <= 0:
        raise MediaError("The image could not be decoded: it has no pixels.")
    if width * height > MAX_IMAGE_PIXELS:
        raise MediaError(
            f"The image could not be decoded: {width}x{height} pixels is more than the "
            f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels accepted."
        )


def _to_rgb(image: Image.Image, background: tuple[int, int, int]) -> np.ndarray:
    """Flatten any Pillow mode to RGB, compositing alpha on a solid background."""
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        base = Image.new("RGBA", rgba.size, (*background, 255))
        image = Image.alpha_composite(base, rgba)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale PNGs: scale to 8 bits instead of clipping to white.
        wide = np.asarray(image, dtype=np.float64)
        grey = np.clip(wide / max(wide.max(), 1.0) * 255.0, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    return np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8))


def fit_image(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale to cover width×height, then centre-crop to exactly that size.

    INTER_AREA when shrinking (no aliasing), INTER_CUBIC when enlarging (sharper).
    """
    src_h, src_w = img.shape[:2]
    if (src_w, src_h) == (width, height):
        return np.array(img, dtype=np.uint8, copy=True)
    scale = max(width / src_w, height / src_h)
    new_w = max(width, round(src_w * scale))
    new_h = max(height, round(src_h * scale))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
    resized = cv2.resize(img, (new_w, new_h), interpolation=interpolation)
    left = (new_w - width) // 2
    top = (new_h - height) // 2
    return np.ascontiguousarray(resized[top : top + height, left : left + width])


# --------------------------------------------------------------------------- videos


def probe_video(path: str) -> VideoInfo:
    """Size, frame count, rate and audio presence of a video file, or MediaError."""
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise MediaError("The video could not be decoded: it has no video stream.")
            stream = container.streams.video[0]
            fps = _stream_fps(stream)
            num_frames = stream.frames or _count_frames(container)
            if num_frames <= 0:
                raise MediaError("The video could not be decoded: it has no frames.")
            width = stream.codec_context.width
            height = stream.codec_context.height
            has_audio = bool(container.streams.audio)
    except MediaError:
        raise
    except Exception as exc:
        raise MediaError(f"The video could not be decoded: {_reason(exc)}") from exc
    if width <= 0 or height <= 0:
        raise MediaError("The video could not be decoded: its frame size is unknown.")
    return VideoInfo(
        width=width,
        height=height,
        num_frames=num_frames,
        fps=fps,
        duration_seconds=num_frames / fps,
        has_audio=has_audio,
    )


def _stream_fps(stream: av.video.stream.VideoStream) -> float:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate or Fraction(24)
    return float(rate)


def _count_frames(container: av.container.InputContainer) -> int:
    """Count video packets when the container header does not say (rare for MP4)."""
    container.seek(0)
    return sum(1 for packet in container.demux(video=0) if packet.size)


def iter_video_frames(path: str) -> Iterator[np.ndarray]:
    """Yield every frame as H×W×3 uint8 RGB, in presentation order, one at a time."""
    try:
        container = av.open(path)
    except Exception as exc:
        raise MediaError(f"The video could not be decoded: {_reason(exc)}") from exc
    with container:
        try:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
        except av.FFmpegError as exc:
            raise MediaError(f"The video could not be decoded: {_reason(exc)}") from exc


def read_audio(path: str, rate: int = AUDIO_RATE) -> np.ndarray | None:
    """The first audio stream as float32 (samples, 2) at `rate`, or None if there is none."""
    try:
        with av.open(path) as container:
            if not container.streams.audio:
                return None
            resampler = av.AudioResampler(format="flt", layout="stereo", rate=rate)
            chunks: list[np.ndarray] = []
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1, 2))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1, 2))
    except Exception as exc:
        raise MediaError(f"The video's audio could not be decoded: {_reason(exc)}") from exc
    if not chunks:
        return np.zeros((0, 2), dtype=np.float32)
    return np.ascontiguousarray(np.concatenate(chunks).astype(np.float32, copy=False))


def _reason(exc: BaseException) -> str:
    """A short, user-facing reason: the exception's text without internal paths."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, av.FFmpegError) and (strerror := getattr(exc, "strerror", None)):
        text = strerror
    return text.rstrip(".") + "."
