"""Encoding clips: exact frames and rate, AAC 48 kHz stereo iff audio, faststart, provenance,
quality levels, determinism, and cleanup on failure."""

from __future__ import annotations

import hashlib
import os
import threading
from concurrent.futures import Future
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from cinegen.core.errors import Cancelled
from cinegen.media.clip import Clip
from cinegen.media.encode import encode_clip
from cinegen.media.pipeline import PREFETCH_FRAMES
from cinegen.media.provenance import is_ai_generated, provenance_tags, read_provenance
from tests.media.video_checks import (
    clip_of,
    decoded_frames,
    facts,
    psnr,
    shapes_photo,
    textured,
)

W, H = 160, 90


def _frames(count: int) -> list[np.ndarray]:
    base = textured(W * 2, H, seed=3)
    return [np.ascontiguousarray(base[:, i * 2 : i * 2 + W]) for i in range(count)]


def _tone(samples: int) -> np.ndarray:
    t = np.arange(samples) / 48000
    mono = 0.3 * np.sin(2 * np.pi * 440 * t)
    return np.stack([mono, mono], 1).astype(np.float32)


def test_video_only_has_exact_frames_rate_and_no_audio(tmp_path) -> None:
    path = str(tmp_path / "a.mp4")
    result = encode_clip(clip_of(_frames(30)), path)
    f = facts(path)
    assert (f.width, f.height, f.fps, f.frames) == (W, H, 24.0, 30)
    assert f.audio_rate is None
    assert result.num_frames == 30 and result.duration_seconds == pytest.approx(1.25)
    assert result.size_bytes == os.path.getsize(path) > 0


@pytest.mark.parametrize("samples", [12_000, 48_000 + 7, 200_000])
def test_audio_is_aac_48k_stereo_trimmed_or_padded_to_the_video(tmp_path, samples: int) -> None:
    path = str(tmp_path / "b.mp4")
    encode_clip(clip_of(_frames(24), _tone(samples)), path)
    f = facts(path)
    assert (f.audio_rate, f.audio_channels) == (48000, 2)
    assert f.audio_seconds == pytest.approx(1.0, abs=0.01)


def test_frames_survive_encoding(tmp_path) -> None:
    frames = _frames(10)
    path = str(tmp_path / "c.mp4")
    encode_clip(clip_of(frames), path)
    decoded = decoded_frames(path)
    assert min(psnr(a, b) for a, b in zip(frames, decoded, strict=True)) > 35


@pytest.mark.parametrize("seed", [2, 4])
def test_the_first_and_last_frames_decode_closest_to_their_pictures(tmp_path, seed) -> None:
    # They are the frames that must match an input image (image to video, first + last
    # frame): their luma makes up for the chroma 4:2:0 shares between 4 pixels, and they are
    # quantised finer. Saturated shapes, the hardest case for 4:2:0: measured, the ends lead
    # the frames between by 0.6-0.7 dB, 0.5-0.8 dB with the luma alone, 0.0-0.2 dB without it.
    picture = shapes_photo(seed)
    frames = [np.ascontiguousarray(np.roll(picture, 2 * i, axis=1)) for i in range(8)]
    path = str(tmp_path / "ends.mp4")
    encode_clip(clip_of(frames), path)
    scores = [psnr(a, b) for a, b in zip(decoded_frames(path), frames, strict=True)]
    between = float(np.median(scores[1:-1]))
    assert scores[0] > between + 0.4
    assert scores[-1] > between + 0.4


def test_a_clip_keyframe_is_encoded_as_finely_as_its_last_frame(tmp_path) -> None:
    # An extension marks its last input frame so: the new part continues from it.
    picture = shapes_photo(5)
    frames = [np.ascontiguousarray(np.roll(picture, 2 * i, axis=1)) for i in range(10)]
    path = str(tmp_path / "seam.mp4")
    clip = clip_of(frames)
    clip.keyframes = frozenset({4})
    encode_clip(clip, path)
    with av.open(path) as container:
        keys = [frame.key_frame for frame in container.decode(video=0)]
    assert [i for i, key in enumerate(keys) if key] == [0, 4, 9]
    scores = [psnr(a, b) for a, b in zip(decoded_frames(path), frames, strict=True)]
    assert scores[4] > float(np.median(scores[1:4] + scores[5:9])) + 0.4


def test_lossless_is_better_and_larger(tmp_path) -> None:
    frames = [textured(W, H, seed=i) for i in range(12)]
    optimized = encode_clip(clip_of(frames), str(tmp_path / "o.mp4"))
    lossless = encode_clip(clip_of(frames), str(tmp_path / "l.mp4"), quality="lossless")
    assert lossless.size_bytes > optimized.size_bytes
    q_opt = psnr(frames[5], decoded_frames(optimized.path)[5])
    q_max = psnr(frames[5], decoded_frames(lossless.path)[5])
    assert q_max > q_opt + 3


def test_moov_atom_comes_first(tmp_path) -> None:
    path = str(tmp_path / "f.mp4")
    encode_clip(clip_of(_frames(5), _tone(10_000)), path)
    head = Path(path).read_bytes()[:4096]
    assert head.find(b"moov") != -1 and (
        head.find(b"mdat") == -1 or head.find(b"moov") < head.find(b"mdat")
    )


def test_same_clip_gives_identical_bytes(tmp_path) -> None:
    digests = set()
    for name in ("x.mp4", "y.mp4"):
        path = str(tmp_path / name)
        encode_clip(
            clip_of(_frames(20), _tone(40_000)),
            path,
            metadata=provenance_tags("preview", "veo-3.1", 7),
        )
        digests.add(hashlib.sha256(Path(path).read_bytes()).hexdigest())
    assert len(digests) == 1


def test_a_soundtrack_still_being_made_is_muxed_as_if_it_was_ready(tmp_path) -> None:
    """An engine may hand over its audio as a Future and finish it while frames encode."""
    frames, tone = _frames(30), _tone(60_000)
    ready = str(tmp_path / "ready.mp4")
    encode_clip(clip_of(frames, tone), ready)

    pending: Future = Future()

    def frames_then_audio():
        for index, frame in enumerate(frames):
            if index == 20:
                assert not pending.done()  # the encoder did not wait for it
                pending.set_result(tone)
            yield frame

    late = str(tmp_path / "late.mp4")
    clip = clip_of(frames)
    clip.frames, clip.audio = frames_then_audio(), pending
    encode_clip(clip, late)
    assert Path(late).read_bytes() == Path(ready).read_bytes()

    never = Future()  # the soundtrack arrives only after the last frame
    clip = clip_of(frames)
    clip.audio = never
    pulled = iter(frames)

    def last_then_audio():
        yield from pulled
        never.set_result(tone)

    clip.frames = last_then_audio()
    after = str(tmp_path / "after.mp4")
    encode_clip(clip, after)
    f = facts(after)
    assert (f.frames, f.audio_rate) == (30, 48000)
    assert f.audio_seconds == pytest.approx(1.25, abs=0.01)


def test_a_failed_soundtrack_fails_the_encode(tmp_path) -> None:
    broken: Future = Future()
    broken.set_exception(RuntimeError("no sound"))
    clip = clip_of(_frames(5))
    clip.audio = broken
    path = tmp_path / "broken.mp4"
    with pytest.raises(RuntimeError, match="no sound"):
        encode_clip(clip, str(path))
    assert not path.exists()


def test_provenance_marks_the_file(tmp_path) -> None:
    path = str(tmp_path / "p.mp4")
    tags = provenance_tags("preview", "veo-3.1-generate-preview", 42)
    encode_clip(clip_of(_frames(3)), path, metadata=tags)
    found = read_provenance(path)
    assert found["comment"] == "AI-generated by cinegen (preview)"
    assert found["cinegen_ai_generated"] == "true"
    assert found["cinegen_seed"] == "42" and found["cinegen_model"] == "veo-3.1-generate-preview"
    assert is_ai_generated(path)
    plain = str(tmp_path / "plain.mp4")
    encode_clip(clip_of(_frames(3)), plain)
    assert not is_ai_generated(plain)


def test_progress_is_reported_per_frame(tmp_path) -> None:
    seen: list[float] = []
    encode_clip(clip_of(_frames(8)), str(tmp_path / "g.mp4"), progress=seen.append)
    assert seen == [pytest.approx((i + 1) / 8) for i in range(8)]


def test_frames_are_pulled_a_bounded_way_ahead(tmp_path) -> None:
    """The producer thread renders ahead of the encoder, but never the whole clip."""
    pulled: list[int] = []
    count = PREFETCH_FRAMES * 4

    def source():
        for i, frame in enumerate(_frames(count)):
            pulled.append(i)
            yield frame

    clip = Clip(frames=source(), num_frames=count, width=W, height=H, fps=24)
    seen_when: list[int] = []
    encode_clip(clip, str(tmp_path / "h.mp4"), progress=lambda _: seen_when.append(len(pulled)))
    assert len(seen_when) == count
    ahead = [pulled_then - encoded for encoded, pulled_then in enumerate(seen_when, start=1)]
    assert min(ahead) >= 0 and max(ahead) <= PREFETCH_FRAMES + 1


def test_a_cancel_from_progress_stops_every_stage(tmp_path) -> None:
    """Cancelled mid-clip: the render and conversion threads end and the engine is closed."""
    closed = threading.Event()

    def source():
        try:
            yield from _frames(PREFETCH_FRAMES * 4)
        finally:
            closed.set()

    def progress(done: float) -> None:
        if done > 0.1:
            raise Cancelled()

    clip = Clip(source(), PREFETCH_FRAMES * 4, W, H, 24)
    with pytest.raises(Cancelled):
        encode_clip(clip, str(tmp_path / "c.mp4"), progress=progress)
    assert closed.wait(5)
    stages = [t for t in threading.enumerate() if t.name.startswith("cinegen-")]
    assert not any(t.is_alive() for t in stages if t.name in ("cinegen-render", "cinegen-convert"))


def test_a_producer_error_stops_the_encode(tmp_path) -> None:
    path = tmp_path / "bad.mp4"

    def source():
        yield from _frames(2)
        raise RuntimeError("engine broke")

    with pytest.raises(RuntimeError, match="engine broke"):
        encode_clip(Clip(frames=source(), num_frames=5, width=W, height=H, fps=24), str(path))
    assert not path.exists()


def test_cancel_removes_the_partial_file(tmp_path) -> None:
    path = tmp_path / "i.mp4"

    def source():
        yield from _frames(3)
        raise Cancelled()

    with pytest.raises(Cancelled):
        encode_clip(Clip(source(), 10, W, H, 24), str(path))
    assert not path.exists()


def test_short_or_wrong_frames_are_errors(tmp_path) -> None:
    with pytest.raises(ValueError, match="promised 5"):
        encode_clip(Clip(iter(_frames(3)), 5, W, H, 24), str(tmp_path / "j.mp4"))
    with pytest.raises(ValueError, match="expected"):
        encode_clip(
            Clip(iter([np.zeros((10, 10, 3), np.uint8)]), 1, W, H, 24), str(tmp_path / "k.mp4")
        )
    with pytest.raises(ValueError, match="even"):
        encode_clip(Clip(iter([]), 1, 161, 90, 24), str(tmp_path / "l.mp4"))
    assert not any(tmp_path.iterdir())


def test_extra_frames_are_ignored(tmp_path) -> None:
    path = str(tmp_path / "m.mp4")
    encode_clip(Clip(iter(_frames(9)), 4, W, H, 24), path)
    assert facts(path).frames == 4


@pytest.mark.parametrize(
    ("size", "work_size"),
    [((1280, 720), (640, 360)), ((720, 1280), (360, 640)), ((1920, 1080), (1280, 720))],
)
def test_smaller_frames_encode_like_the_same_frames_scaled_up(tmp_path, size, work_size) -> None:
    width, height = size
    small = [textured(*work_size, seed=i) for i in range(6)]
    scaled_up = [cv2.resize(f, (width, height), interpolation=cv2.INTER_CUBIC) for f in small]
    clip = Clip(iter(small), 6, width, height, 24, work_size=work_size)
    small_out = decoded_frames(encode_clip(clip, str(tmp_path / "s.mp4")).path)
    full_out = decoded_frames(encode_clip(clip_of(scaled_up), str(tmp_path / "f.mp4")).path)
    assert [f.shape for f in small_out] == [(height, width, 3)] * 6
    for source, from_small, from_full in zip(scaled_up, small_out, full_out, strict=True):
        assert psnr(source, from_small) >= 30
        assert psnr(source, from_small) >= psnr(source, from_full) - 0.5


def test_clips_at_a_work_size_refuse_full_size_frames(tmp_path) -> None:
    clip = Clip(iter([np.zeros((H, W, 3), np.uint8)]), 1, W, H, 24, work_size=(W // 2, H // 2))
    with pytest.raises(ValueError, match="expected"):
        encode_clip(clip, str(tmp_path / "x.mp4"))
