"""Write a `Clip` to MP4 with PyAV: H.264 yuv420p at exactly 24 fps, AAC 48 kHz stereo.

Frames are pulled from the clip's iterator one at a time and encoded as they come, so a 4k
clip never sits in memory whole. The audio is interleaved with the video as it goes, trimmed
or padded to exactly the video's length. The moov atom is moved to the front (`+faststart`)
so browsers can start playing before the download ends.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from cinegen.media.clip import AUDIO_RATE, FPS, Clip
from cinegen.media.pipeline import converted_ahead

VIDEO_TIME_BASE = Fraction(1, FPS)
AUDIO_TIME_BASE = Fraction(1, AUDIO_RATE)
AUDIO_CHUNK = 1024  # samples per AAC frame


@dataclass(frozen=True)
class _Quality:
    x264: dict[str, str]
    aac_coder: str


# crf: lower is better quality. "lossless" in the Veo API means "as good as it gets" for a
# download, not mathematically lossless (which most players cannot decode). "optimized" uses
# x264's ultrafast preset: at the same crf it gives the same PSNR as superfast for much less
# encoder CPU, for a file about 40 % larger; and FFmpeg's fast AAC coder, much cheaper than
# its default two-loop search. On a small CPU the encoder is most of a preview's cost, and
# the file only crosses loopback.
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
        for frame in converted_ahead(clip):
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


def _add_video_stream(
    container: av.container.OutputContainer, clip: Clip, settings: _Quality
) -> av.video.stream.VideoStream:
    options = {**settings.x264, "x264-params": X264_PARAMS}
    stream = container.add_stream("libx264", rate=FPS, options=options)
    stream.width = clip.width
    stream.height = clip.height
    stream.pix_fmt = "nv12"  # 4:2:0 like yuv420p; decoders output yuv420p (see media/nv12.py)
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
