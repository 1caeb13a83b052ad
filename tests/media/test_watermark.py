"""The invisible watermark (media/watermark.py): invisible, robust, and silent on unmarked
videos. The attacks are bench/watermark.py's (which runs the same table over many seeds)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from bench.watermark import ATTACKS, PROMPTS, attack, bits_right, psnr, render, spec
from cinegen.core.errors import MediaError
from cinegen.engines.preview.engine import PreviewEngine
from cinegen.media.clip import Clip
from cinegen.media.watermark import (
    HYPOTHESES,
    THRESHOLD,
    Marker,
    detect_watermark,
    pattern,
    read_frames,
    watermarked,
)
from tests.media.video_checks import shapes_photo

PAYLOAD = 0x5EED_C0DE_1234_ABCD
SEEDS = (3, 8)
SIZE = (640, 360)  # what the preview engine renders a 720p video at (then scaled by the encoder)
SECONDS = 4


@pytest.fixture(scope="module")
def marked(tmp_path_factory: pytest.TempPathFactory) -> dict[int, tuple[Path, int]]:
    """One marked preview video per seed, each with its own payload."""
    folder = tmp_path_factory.mktemp("marked")
    videos = {}
    for seed in SEEDS:
        payload = PAYLOAD ^ (seed * 0x9E3779B97F4A7C15 % 2**64)
        s = spec(seed, *SIZE, SECONDS, PROMPTS[seed % len(PROMPTS)])
        videos[seed] = (render(folder / f"{seed}.mp4", s, payload), payload)
    return videos


def test_marked_frames_are_within_45_db_of_the_unmarked() -> None:
    clip = PreviewEngine().render(spec(1, 1280, 720, 1, PROMPTS[0]), lambda _: None)
    marker = Marker(PAYLOAD, *clip.frame_size)
    values = [psnr(frame, marker(frame)) for frame in clip.frames]
    photo = shapes_photo(2, 1280, 720)
    values.append(psnr(photo, Marker(PAYLOAD, 1280, 720)(photo)))
    assert min(values) >= 45.0, values


@pytest.mark.parametrize("level", [0, 16, 128, 235, 255])
def test_a_flat_area_changes_by_two_levels_at_most_and_not_on_average(level: int) -> None:
    flat = np.full((720, 1280, 3), level, np.uint8)
    change = Marker(PAYLOAD, 1280, 720)(flat).astype(np.int16) - level
    assert np.abs(change).max() <= 2
    assert np.array_equal(change[..., 0], change[..., 1])  # grey stays grey: luma only
    if 2 < level < 253:  # (black and white clip: only half the change is possible)
        assert abs(float(change.mean())) < 0.1  # no brightening or darkening
        assert float(np.sqrt(np.mean(change.astype(np.float64) ** 2))) <= 1.5


def test_the_pattern_follows_the_frame_not_its_pixels() -> None:
    """The same normalised pattern at any size: half the frame is the pattern at half size."""
    big = pattern(PAYLOAD, 1280, 720).astype(np.float32)
    small = pattern(PAYLOAD, 640, 360).astype(np.float32)
    halved = big.reshape(360, 2, 640, 2).mean(axis=(1, 3))
    assert np.corrcoef(halved.ravel(), small.ravel())[0, 1] > 0.9


def test_an_unattacked_video_gives_its_payload_exactly(marked) -> None:
    for path, payload in marked.values():
        reading = detect_watermark(str(path))
        assert reading.found and reading.payload == payload, reading
        assert reading.installation_id == payload >> 40
        assert reading.bit_confidence > 0.99
        assert reading.score >= THRESHOLD


@pytest.mark.parametrize("name", list(ATTACKS))
def test_the_mark_survives(marked, tmp_path: Path, name: str) -> None:
    """≥ 95 % of the bits right and a positive verdict after each attack, on every seed."""
    for seed, (path, payload) in marked.items():
        reading = detect_watermark(str(attack(path, name, tmp_path / f"{seed}.mp4")))
        right = bits_right(reading.bits, payload)
        assert reading.found and right >= 0.95, (seed, right, reading)


def test_a_720p_video_read_after_crf_28(tmp_path: Path) -> None:
    source = render(tmp_path / "a.mp4", spec(5, 1280, 720, 2, PROMPTS[2]), PAYLOAD)
    reading = detect_watermark(str(attack(source, "h264 crf 28", tmp_path / "b.mp4")))
    assert reading.found and reading.payload == PAYLOAD, reading


def test_unmarked_videos_are_not_found(tmp_path: Path) -> None:
    scores = []
    for index in range(12):
        s = spec(500 + index, 320, 180, 1, PROMPTS[index % len(PROMPTS)])
        reading = detect_watermark(str(render(tmp_path / f"{index}.mp4", s, None)))
        assert not reading.found and reading.payload is None, reading
        scores.append(reading.score)
    assert max(scores) < THRESHOLD - 1.0, scores  # clearly below, not just under


def test_flat_and_noise_frames_are_not_found() -> None:
    rng = np.random.default_rng(1)
    assert not read_frames(iter([np.full((360, 640), 90, np.uint8)] * 5)).found
    noise = (rng.normal(128, 20, (360, 640)).clip(0, 255).astype(np.uint8) for _ in range(5))
    assert not read_frames(noise).found


def test_the_threshold_gives_under_one_false_positive_in_a_million() -> None:
    """The docstring's arithmetic: Bonferroni over every shift and zoom searched."""
    tail = 0.5 * math.erfc(THRESHOLD / math.sqrt(2))
    assert HYPOTHESES * tail < 1e-6


def test_marking_is_lazy_and_leaves_the_engines_frames_alone() -> None:
    frames = [np.full((90, 160, 3), 100, np.uint8) for _ in range(3)]
    pulled: list[int] = []

    def source():
        for index, frame in enumerate(frames):
            pulled.append(index)
            yield frame

    clip = watermarked(Clip(source(), 3, 160, 90, 24), PAYLOAD)
    assert pulled == []
    first = next(clip.frames)
    assert pulled == [0] and not np.array_equal(first, frames[0])
    assert all(np.all(frame == 100) for frame in frames)


def test_a_file_that_is_not_a_video_is_a_media_error(tmp_path: Path) -> None:
    path = tmp_path / "x.mp4"
    path.write_bytes(b"not a video at all")
    with pytest.raises(MediaError):
        detect_watermark(str(path))
