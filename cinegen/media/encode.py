"""Write a `Clip` to MP4 with PyAV: H.264 yuv420p at exactly 24 fps, AAC 48 kHz stereo.

Frames are pulled from the clip's iterator one at a time and encoded as they come, so a 4k
clip never sits in memory whole. The audio is interleaved with the video as it goes, trimmed
or padded to exactly the video's length. The moov atom is moved to the front (`+faststart`)
so browsers can start playing before the download ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import queue
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import TypeVar

import av
import cv2
import numpy as np

from cinegen.media.clip import AUDIO_RATE, FPS, Clip

VIDEO_TIME_BASE = Fraction(1, FPS)
AUDIO_TIME_BASE = Fraction(1, AUDIO_RATE)
AUDIO_CHUNK = 1024  # samples per AAC frame


@dataclass(frozen=True)
class _Quality:
    x264: dict[str, str]
    aac_coder: str


# crf: lower is better quality. "lossless" in the Veo API means "as good as it gets" for a
# download, not mathematically lossless (which most players cannot decode). "optimized" uses
# x264's ultrafast preset: at the same crf it gives the same PSNR as superfast for 2.3x less
# encoder CPU (a 720p 8 s clip: 1.65 vs 3.83 CPU-s), for a file about 40 % larger; and
# FFmpeg's fast AAC coder, 3.5x cheaper than its default two-loop search (8 s of stereo:
# 0.06 vs 0.21 CPU-s). On two cores the encoder is most of a preview's cost, and the file only
# crosses loopback.
_QUALITY = {
    "optimized": _Quality({"crf": "20", "preset": "ultrafast"}, aac_coder="fast"),
    "lossless": _Quality({"crf": "10", "preset": "veryfast"}, aac_coder="twoloop"),
}

ENCODER_THREADS = 2
"""Fixed, so output bytes do not depend on the machine's core count."""

X264_PARAMS = "mbtree=0:ipratio=3"
"""mbtree=0: x264's macroblock-tree rate control reads uninitialised memory in some frame
sizes and contents (the same frames then encode to different bytes from run to run); without
it the encoder is deterministic, at a few percent of compression.
ipratio=3 (x264's default is 1.4): keyframes, here the first and the last frame, are
quantised 9.5 QP finer than the frames between (2.9 by default). Those are the frames that
must match an input image, and the first is the reference the others are predicted from: on
the bench's photo of saturated shapes, +0.7 dB on the first frame and +0.6 dB on the second,
for a file 3 % larger."""


@dataclass(frozen=True)
class EncodedVideo:
    path: str
    size_bytes: int
    num_frames: int
    duration_seconds: float


def encode_clip(
    clip: Clip,
    path: str,
    *,
    quality: str = "optimized",
    metadata: dict[str, str] | None = None,
    progress: Callable[[float], None] | None = None,
) -> EncodedVideo:
    """Encode `clip` to `path`; on any error (including Cancelled) the partial file is removed."""
    _check_clip(clip)
    _keep_freed_memory()
    settings = _QUALITY.get(quality.lower() if quality else "optimized", _QUALITY["optimized"])
    try:
        written = _write(clip, path, settings, metadata or {}, progress)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(path)
        raise
    return EncodedVideo(
        path=path,
        size_bytes=os.path.getsize(path),
        num_frames=written,
        duration_seconds=written / FPS,
    )


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt() parameters, <malloc.h>


@functools.cache
def _keep_freed_memory() -> None:
    """Have glibc keep freed frames for reuse instead of handing them back to the kernel.

    Every frame (and every intermediate image of a render) is megabytes, freed after use. By
    default glibc returns such blocks to the kernel (munmap, heap trimming) and the next frame
    faults them back in, zero-filled: an 8 s 4k first + last frame clip took 506k page faults
    and ~3 CPU-s in the kernel; with a fixed 32 MB mmap threshold (glibc's most) and a 1 GB
    trim threshold, 38k. Freed memory then stays with the process up to its high-water mark.
    Without glibc (musl, macOS) nothing changes.
    """
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024)
    mallopt(_M_TRIM_THRESHOLD, 1024 * 1024 * 1024)


def _check_clip(clip: Clip) -> None:
    if clip.num_frames <= 0:
        raise ValueError("a clip needs at least one frame")
    if clip.width % 2 or clip.height % 2:
        raise ValueError(f"H.264 4:2:0 needs even sizes, got {clip.width}x{clip.height}")
    if clip.fps != FPS:
        raise ValueError(f"clips are {FPS} fps, got {clip.fps}")


def _write(
    clip: Clip,
    path: str,
    settings: _Quality,
    metadata: dict[str, str],
    progress: Callable[[float], None] | None,
) -> int:
    """Mux video and audio; return the number of video frames written."""
    options = {"movflags": "+faststart+use_metadata_tags"}
    with av.open(path, mode="w", format="mp4", options=options) as container:
        for key, value in metadata.items():
            container.metadata[key] = value
        video = _add_video_stream(container, clip, settings)
        audio = _add_audio_stream(container, settings) if clip.audio is not None else None
        track: np.ndarray | None = None  # the soundtrack, once the engine has it
        audio_sent = 0

        written = 0
        for frame in _converted_ahead(clip):
            if written == clip.num_frames - 1 or written in clip.keyframes:
                # The last frame is a keyframe: it is often the next clip's first frame, and
                # unreferenced frames otherwise get the coarsest quantiser (mb-tree). So is
                # any frame the clip names (an extension's last input frame).
                frame.pict_type = av.video.frame.PictureType.I
            frame.pts = written
            frame.time_base = VIDEO_TIME_BASE
            container.mux(video.encode(frame))
            written += 1
            if audio is not None and track is None and clip.soundtrack_ready():
                track = _prepare_audio(clip.soundtrack(), clip.num_frames)
            if audio is not None and track is not None:
                target = written * AUDIO_RATE // FPS
                audio_sent = _mux_audio(container, audio, track, audio_sent, target)
            if progress is not None:
                progress(written / clip.num_frames)
        if written != clip.num_frames:
            raise ValueError(f"the clip promised {clip.num_frames} frames, gave {written}")

        container.mux(video.encode(None))
        if audio is not None:
            if track is None:
                track = _prepare_audio(clip.soundtrack(), clip.num_frames)
            _mux_audio(container, audio, track, audio_sent, track.shape[1])
            container.mux(audio.encode(None))
    return written


PREFETCH_FRAMES = 8
"""At most this many frames are rendered and not yet encoded (in the queues and threads)."""


def _converted_ahead(clip: Clip) -> Iterator[av.VideoFrame]:
    """The clip's frames as NV12: rendered on one thread, converted on another.

    The engine's work (a preview render, or a VAE decode), the RGB → NV12 conversion and x264
    then run side by side, each on the frames the next stage has not reached yet, instead of
    taking turns. An error (Cancelled included) is raised here, in order; when the consumer
    stops early, both threads stop at their next frame. Engines must not change a frame after
    yielding it (it waits in a queue).
    """
    convert = _Nv12Converter(clip.width, clip.height, clip.frame_size)
    ends = {0, clip.num_frames - 1, *clip.keyframes}

    def converted(numbered: tuple[int, np.ndarray]) -> av.VideoFrame:
        index, rgb = numbered
        return convert(rgb, match_colours=index in ends)

    depth = PREFETCH_FRAMES // 2 - 1  # per queue: each thread holds one more frame
    rendered = _ahead(_checked(clip), depth, "cinegen-render")
    return _ahead(_mapped(converted, rendered), depth, "cinegen-convert")


def _checked(clip: Clip) -> Iterator[tuple[int, np.ndarray]]:
    """The clip's first `num_frames` frames, numbered, each checked for size and type; the
    engine's iterator is closed at the end, early or not (it may hold a decoder open)."""
    try:
        for index, frame in enumerate(clip.frames):
            if index == clip.num_frames:
                return
            _check_frame(frame, clip, index)
            yield index, frame
    finally:
        close = getattr(clip.frames, "close", None)
        if close is not None:
            close()


T = TypeVar("T")
U = TypeVar("U")


def _mapped(function: Callable[[T], U], items: Generator[T, None, None]) -> Iterator[U]:
    """`map`, closing `items` when it is closed (so a stage's thread stops with it)."""
    try:
        for item in items:
            yield function(item)
    finally:
        items.close()


def _ahead(items: Iterator[T], depth: int, name: str) -> Generator[T, None, None]:
    """`items`, produced on a thread of their own up to `depth` ahead of the caller."""
    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(end)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    producer = threading.Thread(target=produce, name=name, daemon=True)
    producer.start()
    try:
        while (item := ready.get()) is not end:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        producer.join()


def _add_video_stream(
    container: av.container.OutputContainer, clip: Clip, settings: _Quality
) -> av.video.stream.VideoStream:
    options = {**settings.x264, "x264-params": X264_PARAMS}
    stream = container.add_stream("libx264", rate=FPS, options=options)
    stream.width = clip.width
    stream.height = clip.height
    stream.pix_fmt = "nv12"  # 4:2:0 like yuv420p; decoders output yuv420p (see _Nv12Converter)
    stream.time_base = VIDEO_TIME_BASE
    stream.codec_context.time_base = VIDEO_TIME_BASE
    stream.codec_context.thread_count = ENCODER_THREADS
    stream.codec_context.thread_type = "FRAME"  # x264 pipelines frames while we render
    # Say what the pixels are (BT.601, limited range), or HD players guess BT.709.
    stream.codec_context.colorspace = 6  # AVCOL_SPC_SMPTE170M
    stream.codec_context.color_primaries = 6  # AVCOL_PRI_SMPTE170M
    stream.codec_context.color_trc = 6  # AVCOL_TRC_SMPTE170M
    stream.codec_context.color_range = 1  # AVCOL_RANGE_MPEG
    return stream


# OpenCV's YCrCb is full range; H.264 here is limited range (luma 16-235, chroma 16-240).
_LIMITED_CHROMA = np.clip(np.round((np.arange(256) - 128) * (224 / 255) + 128), 0, 255).astype(
    np.uint8
)
_LIMITED_LUMA = np.round(16 + np.arange(256) * (219 / 255)).astype(np.uint8)


class _Nv12Converter:
    """RGB → NV12 (BT.601 limited range, as swscale does), several times faster than swscale.

    Chroma comes from the half-size image: the 2×2-averaged frame (OpenCV's own I420 chroma
    picks one pixel per block, which aliases and costs ~3 dB), or the frame itself when the
    clip comes at half size. It is converted with OpenCV's integer YCrCb path, scaled to
    limited range by a lookup table and interleaved as NV12 wants. Luma comes from OpenCV's
    I420 conversion of a full-size frame (for a clip's first and last frames, from
    `_luma_matching_colours`), or is a smaller frame's YCrCb luma scaled up
    (bicubic: a 720p photo's 1080p frame, worked at 1280×720, decodes 1.2 dB closer to it than
    with bilinear).
    A frame at another size below the video's (a 1080p video worked at 1280×720) is turned
    into YCrCb at its own size, whose planes are then scaled: the luma up to the video's
    size, the chroma to half of it. No full-size RGB frame is made.
    The intermediate images live in buffers kept for the whole clip: fresh megabyte-sized
    arrays per frame cost more in page faults than the conversion.
    NV12 rather than I420 also matters for determinism: x264's SIMD I420→NV12 interleave can
    read past the end of the last chroma row (into uninitialised padding) when the chroma
    width is not a multiple of 32.
    """

    def __init__(self, width: int, height: int, frame_size: tuple[int, int]) -> None:
        self.width, self.height = width, height
        self.full_size = frame_size == (width, height)
        self.half = np.empty((height // 2, width // 2, 3), np.uint8)
        self.ycrcb = np.empty_like(self.half)
        self.i420 = np.empty((height * 3 // 2, width), np.uint8) if self.full_size else None
        other_size = not self.full_size and frame_size != (width // 2, height // 2)
        self.own_ycrcb = np.empty((*frame_size[::-1], 3), np.uint8) if other_size else None

    def __call__(self, rgb: np.ndarray, *, match_colours: bool = False) -> av.VideoFrame:
        width, height = self.width, self.height
        frame = av.VideoFrame(width, height, "nv12")
        # The planes' rows may be padded: write into views of them, not into copies.
        luma = np.frombuffer(frame.planes[0], np.uint8).reshape(height, -1)[:, :width]
        chroma = np.frombuffer(frame.planes[1], np.uint8).reshape(height // 2, -1)[:, :width]
        pairs = chroma.reshape(height // 2, width // 2, 2)
        if self.full_size:
            cv2.resize(rgb, (width // 2, height // 2), dst=self.half, interpolation=cv2.INTER_AREA)
            cv2.cvtColor(self.half, cv2.COLOR_RGB2YCrCb, dst=self.ycrcb)
            self._write_chroma(pairs)
            if match_colours:
                _luma_matching_colours(rgb, pairs, luma)
            else:
                cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420, dst=self.i420)
                luma[:] = self.i420[:height]
            return frame
        own = self.ycrcb if self.own_ycrcb is None else self.own_ycrcb
        cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb, dst=own)
        if own is not self.ycrcb:
            shrink = own.shape[1] > width // 2
            interpolation = cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            cv2.resize(own, (width // 2, height // 2), dst=self.ycrcb, interpolation=interpolation)
        small_luma = cv2.LUT(cv2.extractChannel(own, 0), _LIMITED_LUMA)
        cv2.resize(small_luma, (width, height), dst=luma, interpolation=cv2.INTER_CUBIC)
        self._write_chroma(pairs)
        return frame

    def _write_chroma(self, pairs: np.ndarray) -> None:
        """NV12's interleaved Cb Cr, limited range, from the half-size YCrCb image."""
        cr, cb = cv2.extractChannel(self.ycrcb, 1), cv2.extractChannel(self.ycrcb, 2)
        cv2.merge([cv2.LUT(cb, _LIMITED_CHROMA), cv2.LUT(cr, _LIMITED_CHROMA)], dst=pairs)


# A decoder rebuilds R, G and B from one luma value and the 2x2 block's shared chroma: the
# chroma adds 1.402 Cr to R, -0.344 Cb - 0.714 Cr to G and 1.772 Cb to B (BT.601). The luma
# that brings the three closest to the frame's own (least squares) is the mean of R, G and B
# less the mean of those additions, a value per block: (1.772 - 0.344) Cb + (1.402 - 0.714)
# Cr, over 3.
_CB_ADDED = 1.772 - 0.344136
_CR_ADDED = 1.402 - 0.714136
_LIMITED_SCALE = 219 / 255  # full-range RGB to limited-range luma steps
_CHROMA_STEP = 255 / 224  # one limited-range chroma step in full-range units
_MEAN_RGB = np.array([[_LIMITED_SCALE / 3] * 3 + [16.0]], np.float32)
_CHROMA_SHARE = np.float32([[_CB_ADDED, _CR_ADDED, -128 * (_CB_ADDED + _CR_ADDED)]]) * np.float32(
    _CHROMA_STEP * _LIMITED_SCALE / 3
)  # applied to NV12's (Cb, Cr) pairs


def _luma_matching_colours(rgb: np.ndarray, pairs: np.ndarray, luma: np.ndarray) -> None:
    """Luma that makes up for 4:2:0, given the chroma already chosen (`pairs`, NV12 Cb Cr).

    Where colours change within a 2x2 block the shared chroma is wrong for every pixel of it,
    and BT.601's own luma leaves that error in: the bench's photo of saturated shapes decodes
    to 34.9 dB against itself even without quantising. This luma takes out what one value
    per pixel can (+0.6 dB there after x264; unchanged where a block is one colour), in the
    way libwebp's "sharp YUV" does. It costs about 4x the plain conversion (4k: 39 against
    10 ms), so it is used for the frames that must match an input image, a clip's first and
    last, when they come at the video's size.
    """
    height, width = luma.shape
    share = cv2.transform(pairs.astype(np.float32), _CHROMA_SHARE)
    per_pixel = cv2.resize(
        np.round(share).astype(np.int16), (width, height), interpolation=cv2.INTER_NEAREST
    )
    cv2.subtract(cv2.transform(rgb, _MEAN_RGB), per_pixel, dst=luma, dtype=cv2.CV_8U)


def _add_audio_stream(
    container: av.container.OutputContainer, settings: _Quality
) -> av.audio.stream.AudioStream:
    options = {"aac_coder": settings.aac_coder}
    stream = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo", options=options)
    stream.time_base = AUDIO_TIME_BASE
    stream.bit_rate = 192_000
    return stream


def _prepare_audio(audio: np.ndarray | None, num_frames: int) -> np.ndarray:
    """Planar float32 (2, samples), trimmed or zero-padded to exactly the video's length."""
    samples = num_frames * AUDIO_RATE // FPS
    track = np.zeros((0, 2), np.float32) if audio is None else np.asarray(audio, np.float32)
    if track.ndim == 1:
        track = np.stack([track, track], axis=1)
    if track.shape[1] == 1:
        track = np.repeat(track, 2, axis=1)
    track = track[:samples, :2]
    if len(track) < samples:
        track = np.concatenate([track, np.zeros((samples - len(track), 2), np.float32)])
    return np.ascontiguousarray(np.clip(track, -1.0, 1.0).T)


def _mux_audio(
    container: av.container.OutputContainer,
    stream: av.audio.stream.AudioStream,
    track: np.ndarray,
    sent: int,
    target: int,
) -> int:
    """Encode whole AAC-sized chunks of `track` up to sample `target` (the rest at the end)."""
    total = track.shape[1]
    while sent < target and sent < total:
        end = min(sent + AUDIO_CHUNK, total)
        if end - sent < AUDIO_CHUNK and end < total:
            break
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(track[:, sent:end]), format="fltp", layout="stereo"
        )
        frame.sample_rate = AUDIO_RATE
        frame.pts = sent
        frame.time_base = AUDIO_TIME_BASE
        container.mux(stream.encode(frame))
        sent = end
    return sent


def _check_frame(frame: np.ndarray, clip: Clip, index: int) -> None:
    width, height = clip.frame_size
    expected = (height, width, 3)
    if frame.shape != expected or frame.dtype != np.uint8:
        raise ValueError(f"frame {index} is {frame.shape} {frame.dtype}, expected {expected} uint8")
