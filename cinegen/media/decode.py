"""Decode what clients send: still images (Pillow) and MP4 videos (PyAV).

Every failure a client can cause surfaces as `MediaError`, whose message the server returns
as a 400. Images come back as H×W×3 uint8 RGB arrays; videos are streamed frame by frame so
a long 4k input never sits in memory whole.
"""

from __future__ import annotations

import io
import struct
import threading
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import BinaryIO

import av
import cv2
import numpy as np
from PIL import ExifTags, Image, ImageFile

from cinegen.core import rules
from cinegen.core.errors import MediaError
from cinegen.media.clip import AUDIO_RATE

MAX_IMAGE_PIXELS = rules.MAX_IMAGE_PIXELS
"""Larger images are refused from their header, before anything is decompressed: no output
uses more than 4x the pixels of a 4k frame, and a small PNG can declare gigabytes of pixels."""

MAX_CONCURRENT_DECODES = 2
"""Images decoded at once in this process (submit checks and jobs together): each may hold up to
~133 MB (MAX_IMAGE_PIXELS at 4 bytes a pixel) while it is decoded."""

REDUCING_GAP = 2
"""Decode at no less than this many times the output size (Pillow's `reducing_gap`): an image
at least 2 x REDUCING_GAP times the output in both directions is reduced by a whole factor
while it is decoded, which changes its fitted pixels slightly, never its framing."""

_DECODES = threading.BoundedSemaphore(MAX_CONCURRENT_DECODES)
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_INFLATE_CHUNK = 1 << 20
# EXIF orientation → the transposition that makes the image upright (as ImageOps.exif_transpose)
_UPRIGHT = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    num_frames: int
    fps: float
    duration_seconds: float
    has_audio: bool


# --------------------------------------------------------------------------- images


def decode_image(
    data: bytes,
    *,
    background: tuple[int, int, int] = (0, 0, 0),
    fit: tuple[int, int] | None = None,
) -> np.ndarray:
    """Decode JPEG/PNG/WebP (anything Pillow reads) to H×W×3 uint8 RGB, upright.

    EXIF orientation is applied (phone photos are stored sideways); transparency is composited
    on `background` (black by default), since video has no alpha. Images over MAX_IMAGE_PIXELS
    are refused from the header. With `fit=(width, height)` (the size `fit_image` will make), an
    image at least 2 x REDUCING_GAP times that size in both directions is decoded reduced by a
    whole factor (JPEG at a smaller DCT scale, others box-reduced), so that it still covers
    REDUCING_GAP times the output; a smaller one is decoded at full size, exactly as without.
    """
    image: Image.Image = _open(data)
    with _DECODES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                upright = _UPRIGHT.get(_orientation(image))
                if fit is not None:
                    image = _reduced(image, fit, swapped=upright in _SWAPS)
                image.load()
                if upright is not None:
                    image = image.transpose(upright)
        except MediaError:
            raise
        except Exception as exc:  # Pillow raises many types for corrupt data
            raise MediaError(f"The image could not be decoded: {_reason(exc)}") from exc
        return _to_rgb(image, background)


def check_image(data: bytes) -> tuple[int, int]:
    """Validate an image without decoding it at full size; its (width, height) as stored.

    The header is read and its pixel count checked first; then JPEG is decoded at 1/8 scale,
    PNG's compressed stream is inflated and discarded chunk by chunk (CRCs, length and end
    checked), and other formats are decoded in their own mode (bounded by MAX_IMAGE_PIXELS).
    Everything runs under the decode semaphore.
    """
    image = _open(data)
    width, height = size = image.size
    with _DECODES:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                if image.format == "PNG":
                    _check_png(data)
                else:
                    image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
                    image.load()
        except MediaError:
            raise
        except Exception as exc:
            raise MediaError(f"The image could not be decoded: {_reason(exc)}") from exc
    return size


_SWAPS = (
    Image.Transpose.TRANSPOSE,
    Image.Transpose.ROTATE_270,
    Image.Transpose.TRANSVERSE,
    Image.Transpose.ROTATE_90,
)


def _open(data: bytes) -> ImageFile.ImageFile:
    """The image with only its header read; empty, unreadable or too large data refused."""
    if not data:
        raise MediaError("The image could not be decoded: the image data is empty.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise MediaError(f"The image could not be decoded: it is too large ({exc}).") from exc
    except Exception as exc:
        raise MediaError(f"The image could not be decoded: {_reason(exc)}") from exc
    _refuse_bombs(image.size)
    return image


def _refuse_bombs(size: tuple[int, int]) -> None:
    """Refuse absurd pixel counts before anything is decompressed."""
    width, height = size
    if width <= 0 or height <= 0:
        raise MediaError("The image could not be decoded: it has no pixels.")
    if width * height > MAX_IMAGE_PIXELS:
        raise MediaError(
            f"The image is too large: {width}x{height} pixels is more than the "
            f"{MAX_IMAGE_PIXELS / 1_000_000:.1f} megapixels accepted (4 times a 4k frame, "
            "more than any output uses). Please scale it down, e.g. to 3840x2160."
        )


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # a broken EXIF block: treat the image as upright, as Pillow does
        return 1


def reduction_factor(size: tuple[int, int], fit: tuple[int, int]) -> int:
    """The whole factor an image of `size` may be reduced by and still cover REDUCING_GAP
    times `fit` in both directions; 1 (no reduction) below 2 x REDUCING_GAP times."""
    width, height = size
    target_w, target_h = fit
    if target_w <= 0 or target_h <= 0:
        return 1
    factor = min(width // (REDUCING_GAP * target_w), height // (REDUCING_GAP * target_h))
    return factor if factor >= 2 else 1


def _reduced(image: Image.Image, fit: tuple[int, int], *, swapped: bool) -> Image.Image:
    """The image decoded at a reduced size when it is much larger than `fit`."""
    width, height = image.size
    target = (fit[1], fit[0]) if swapped else fit  # `fit` is upright; the file may be sideways
    factor = reduction_factor((width, height), target)
    if factor == 1:
        return image
    if image.format == "JPEG":  # decode at 1/2, 1/4 or 1/8 scale, no larger than needed
        image.draft(image.mode, (-(-width // factor), -(-height // factor)))
    image.load()
    factor = reduction_factor(image.size, target)  # what the DCT scale left to reduce
    return image.reduce(factor) if factor > 1 else image


def _check_png(data: bytes) -> None:
    """Walk a PNG's chunks (CRCs checked) and inflate its image data without keeping it."""
    view = memoryview(data)
    if bytes(view[:8]) != _PNG_SIGNATURE:
        raise MediaError("The image could not be decoded: not a PNG file.")
    inflater = zlib.decompressobj()
    inflated = 0
    expected: int | None = None
    position = 8
    while True:
        if position + 12 > len(view):
            raise MediaError("The image could not be decoded: the PNG data is truncated.")
        (length,) = struct.unpack(">I", view[position : position + 4])
        kind = bytes(view[position + 4 : position + 8])
        end = position + 8 + length
        if end + 4 > len(view):
            raise MediaError("The image could not be decoded: the PNG data is truncated.")
        body = view[position + 8 : end]
        (crc,) = struct.unpack(">I", view[end : end + 4])
        if zlib.crc32(view[position + 4 : end]) != crc:
            name = kind.decode("latin-1")
            raise MediaError(f"The image could not be decoded: the PNG {name} chunk is corrupt.")
        if kind == b"IHDR" and length >= 13:
            width, height, depth, color, _c, _f, interlace = struct.unpack(">IIBBBBB", body[:13])
            if not interlace:
                row = -(-(width * depth * _PNG_CHANNELS.get(color, 4)) // 8)
                expected = height * (1 + row)
        elif kind == b"IDAT":
            inflated += _inflate(inflater, bytes(body))
        elif kind == b"IEND":
            break
        position = end + 4
    if not inflater.eof or (expected is not None and inflated != expected):
        raise MediaError("The image could not be decoded: the PNG image data is incomplete.")


def _inflate(inflater: zlib._Decompress, chunk: bytes) -> int:
    """Feed one IDAT chunk, discarding the output a megabyte at a time; bytes produced."""
    produced = 0
    try:
        while chunk and not inflater.eof:
            produced += len(inflater.decompress(chunk, _INFLATE_CHUNK))
            chunk = inflater.unconsumed_tail
    except zlib.error as exc:
        raise MediaError(f"The image could not be decoded: corrupt PNG data ({exc}).") from exc
    return produced


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
    if image.mode != "RGB":
        image = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(image, dtype=np.uint8))


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


def pad_image(
    img: np.ndarray, width: int, height: int, fill: tuple[int, int, int] = (0, 0, 0)
) -> np.ndarray:
    """Scale to fit inside width×height, centred on `fill` (black bars): the whole image kept.

    Vertex's `resizeMode: pad`; `fit_image` is its `crop`. Same interpolation choice.
    """
    src_h, src_w = img.shape[:2]
    if (src_w, src_h) == (width, height):
        return np.array(img, dtype=np.uint8, copy=True)
    scale = min(width / src_w, height / src_h)
    new_w = max(1, min(width, round(src_w * scale)))
    new_h = max(1, min(height, round(src_h * scale)))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
    resized = cv2.resize(img, (new_w, new_h), interpolation=interpolation)
    canvas = np.empty((height, width, 3), np.uint8)
    canvas[:] = fill
    left = (width - new_w) // 2
    top = (height - new_h) // 2
    canvas[top : top + new_h, left : left + new_w] = resized
    return canvas


# --------------------------------------------------------------------------- videos


def probe_video(source: str | BinaryIO) -> VideoInfo:
    """Size, frame count, rate and audio presence of a video (a path, or a seekable stream
    read from its start), or MediaError."""
    if not isinstance(source, str):
        source.seek(0)
    try:
        with av.open(source, mode="r") as container:
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
