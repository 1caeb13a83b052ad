"""The preview engine's output contract, measured on the encoded MP4 with PyAV.

What every engine promises (frame count, size and dtype in text and image mode, seeds,
progress, cancel) is test_engine_contract.py's, run over this engine too.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from cinegen.core.errors import Cancelled
from cinegen.core.request import Mode
from cinegen.engines.base import RenderSpec
from cinegen.media.clip import AUDIO_RATE
from cinegen.media.decode import read_audio
from tests.media.video_checks import decoded_frames, facts, psnr, textured
from tests.support.preview import ENGINE, H, W, input_video, render_to, spec_for


def mode_specs(tmp_path) -> dict[str, RenderSpec]:
    first, last = textured(W, H, seed=1), textured(W, H, seed=2)
    return {
        "text": spec_for(),
        "image": spec_for(Mode.IMAGE, first_frame=first),
        "interpolation": spec_for(Mode.INTERPOLATION, first_frame=first, last_frame=last),
        "references": spec_for(
            Mode.REFERENCES,
            reference_images=(textured(60, 80, seed=4),),
            reference_types=("asset",),
        ),
        "extension": spec_for(
            Mode.EXTENSION, input_video=input_video(tmp_path), num_frames=24 + 7 * 24
        ),
    }


@pytest.mark.parametrize("mode", ["text", "image", "interpolation", "references", "extension"])
@pytest.mark.parametrize("audio", [False, True])
def test_every_mode_honours_size_rate_count_and_audio(tmp_path, mode: str, audio: bool) -> None:
    spec = replace(mode_specs(tmp_path)[mode], audio=audio)
    path = render_to(tmp_path / "out.mp4", spec)
    f = facts(path)
    assert (f.width, f.height, f.fps, f.frames) == (W, H, 24.0, spec.num_frames)
    if audio:
        assert (f.audio_rate, f.audio_channels) == (48000, 2)
        assert f.audio_seconds == pytest.approx(spec.num_frames / 24, abs=0.03)
        sound = read_audio(path)
        assert sound is not None and np.sqrt(np.mean(sound**2)) > 0.01  # not silent
    else:
        assert f.audio_rate is None


def test_clip_audio_is_float32_stereo_of_the_right_length() -> None:
    audio = ENGINE.render(spec_for(audio=True, num_frames=30), lambda _: None).soundtrack()
    assert audio is not None and audio.dtype == np.float32
    assert audio.shape == (30 * AUDIO_RATE // 24, 2)
    assert np.abs(audio).max() <= 1.0 and np.abs(audio).max() > 0.1
    assert ENGINE.render(spec_for(audio=False), lambda _: None).soundtrack() is None


def test_image_mode_starts_on_the_image(tmp_path) -> None:
    first = textured(W, H, seed=1)
    path = render_to(tmp_path / "i.mp4", spec_for(Mode.IMAGE, first_frame=first))
    frames = decoded_frames(path)
    assert psnr(frames[0], first) >= 35
    assert psnr(frames[-1], first) < 30  # and then the camera moves


def test_interpolation_starts_and_ends_on_the_frames(tmp_path) -> None:
    first, last = textured(W, H, seed=1), textured(W, H, seed=2)
    path = render_to(
        tmp_path / "f.mp4", spec_for(Mode.INTERPOLATION, first_frame=first, last_frame=last)
    )
    frames = decoded_frames(path)
    assert psnr(frames[0], first) >= 35
    assert psnr(frames[-1], last) >= 35


def test_extension_keeps_the_input_then_adds_seven_seconds(tmp_path) -> None:
    video = input_video(tmp_path)
    path = render_to(
        tmp_path / "e.mp4",
        spec_for(
            Mode.EXTENSION, input_video=video, num_frames=video.num_frames + 7 * 24, audio=True
        ),
    )
    source = decoded_frames(video.path)
    out = decoded_frames(path)
    assert len(out) == len(source) + 168
    assert min(psnr(a, b) for a, b in zip(source, out, strict=False)) >= 40
    before = read_audio(video.path)
    after = read_audio(path)
    assert before is not None and after is not None
    n = 24_000  # the first half second of audio continues unchanged (AAC is lossy)
    corr = np.corrcoef(before[2048:n, 0], after[2048:n, 0])[0, 1]
    assert corr > 0.9
    assert np.sqrt(np.mean(after[-48_000:] ** 2)) > 0.01  # and goes on, not silence


def test_text_mode_is_a_scene_not_a_colour_bar() -> None:
    frames = list(ENGINE.render(spec_for(num_frames=12), lambda _: None).frames)
    frame = frames[0]
    assert frame.std() > 15
    assert len(np.unique(frame.reshape(-1, 3), axis=0)) > 500
    rows = frame.mean(axis=1)
    assert np.abs(np.diff(rows, axis=0)).mean() < 20  # smooth, not stripes
    assert np.abs(frames[-1].astype(int) - frames[0]).mean() > 1  # it moves


@pytest.mark.parametrize("mode", ["text", "image", "interpolation", "references", "extension"])
def test_same_seed_same_bytes_other_seed_other_video(tmp_path, mode: str) -> None:
    spec = replace(mode_specs(tmp_path)[mode], audio=True, prompt="rain in a forest, birds")
    digests = []
    for index, seed in enumerate((11, 11, 12)):
        path = render_to(tmp_path / f"d{index}.mp4", replace(spec, seed=seed))
        digests.append(hashlib.sha256(Path(path).read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    assert digests[0] != digests[2]


def test_progress_runs_up_to_one_and_cancel_stops_the_render() -> None:
    seen: list[float] = []
    frames = list(ENGINE.render(spec_for(num_frames=10), seen.append).frames)
    assert len(frames) == 10
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)

    def cancel_after_three(fraction: float) -> None:
        if fraction >= 0.3:
            raise Cancelled()

    clip = ENGINE.render(spec_for(num_frames=10), cancel_after_three)
    pulled = []
    with pytest.raises(Cancelled):
        for frame in clip.frames:
            pulled.append(frame)
    assert len(pulled) == 3


def test_frames_are_rendered_lazily() -> None:
    seen: list[float] = []
    clip = ENGINE.render(spec_for(num_frames=50), seen.append)
    assert seen == []
    next(iter(clip.frames))
    assert seen == [0.0]
