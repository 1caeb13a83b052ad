"""Portrait and every Veo resolution work in every mode (first frames only: it is the size and
the inputs that matter here, not the length)."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from cinegen.core.catalog import frame_size
from cinegen.core.request import Mode
from cinegen.engines.base import InputVideo
from cinegen.engines.preview.engine import PreviewEngine
from cinegen.engines.preview.resolution import DETAIL_PSNR
from cinegen.media.clip import Clip
from cinegen.media.decode import fit_image
from cinegen.media.encode import encode_clip
from tests.media.video_checks import decoded_frames, facts, psnr, textured
from tests.support.preview import spec_for

ENGINE = PreviewEngine()
SIZES = [("720p", "16:9"), ("720p", "9:16"), ("1080p", "9:16"), ("4k", "16:9")]


def tiny_input(tmp_path, width: int, height: int) -> InputVideo:
    frames = [fit_image(textured(320, 180, seed=i), width, height) for i in range(2)]
    path = str(tmp_path / f"in_{width}x{height}.mp4")
    encode_clip(Clip(iter(frames), 2, width, height, 24), path)
    return InputVideo(path, width, height, 2, 24.0, False)


@pytest.mark.parametrize(("resolution", "aspect"), SIZES)
def test_every_mode_at_every_size(tmp_path, resolution: str, aspect: str) -> None:
    width, height = frame_size(resolution, aspect)
    first = fit_image(textured(320, 180, seed=1), width, height)
    last = fit_image(textured(320, 180, seed=2), width, height)
    specs = {
        Mode.TEXT: spec_for(),
        Mode.IMAGE: spec_for(Mode.IMAGE, first_frame=first),
        Mode.INTERPOLATION: spec_for(Mode.INTERPOLATION, first_frame=first, last_frame=last),
        Mode.REFERENCES: spec_for(Mode.REFERENCES, reference_images=(textured(300, 400),)),
        Mode.EXTENSION: spec_for(
            Mode.EXTENSION, input_video=tiny_input(tmp_path, width, height), num_frames=2 + 168
        ),
    }
    for mode, spec in specs.items():
        spec = spec.__class__(**{**spec.__dict__, "width": width, "height": height})
        clip = ENGINE.render(spec, lambda _: None)
        frames = list(itertools.islice(clip.frames, 3))
        frame_w, frame_h = clip.frame_size
        assert (frame_w, frame_h) in ((width, height), (width // 2, height // 2))
        assert all(f.shape == (frame_h, frame_w, 3) and f.dtype == np.uint8 for f in frames), mode
        if mode in (Mode.IMAGE, Mode.INTERPOLATION):
            # Smooth inputs (textured() is 320×180 scaled up) are worked at half size.
            assert clip.frame_size == (width // 2, height // 2)
            assert psnr(cv2.resize(frames[0], (width, height)), first) >= DETAIL_PSNR
        del clip, frames


@pytest.mark.parametrize("resolution", ["720p", "4k"])
def test_footage_with_fine_detail_is_worked_at_full_size(resolution: str) -> None:
    width, height = frame_size(resolution, "16:9")
    sharp = np.random.default_rng(3).integers(0, 256, (height, width, 3), dtype=np.uint8)
    spec = spec_for(Mode.IMAGE, first_frame=sharp, width=width, height=height, num_frames=2)
    clip = ENGINE.render(spec, lambda _: None)
    assert clip.work_size is None and clip.notes["work_size"] == f"{width}x{height}"
    assert psnr(next(iter(clip.frames)), sharp) == float("inf")


def grainy_photo(width: int, height: int, seed: int) -> np.ndarray:
    """A photo with grain at its own pixel scale: it has detail down to its size, not below."""
    grain = np.random.default_rng(seed).normal(0, 5, (height, width, 1))
    return np.clip(textured(width, height, seed=seed) + grain, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("aspect", ["16:9", "9:16"])
@pytest.mark.parametrize("mode", [Mode.IMAGE, Mode.INTERPOLATION])
def test_1080p_footage_from_720p_photos_is_worked_at_720p(tmp_path, aspect: str, mode) -> None:
    width, height = frame_size("1080p", aspect)
    first, last = (
        fit_image(grainy_photo(width * 2 // 3, height * 2 // 3, seed), width, height)
        for seed in (1, 2)
    )
    last_frame = last if mode is Mode.INTERPOLATION else None
    spec = spec_for(
        mode, width=width, height=height, num_frames=6, first_frame=first, last_frame=last_frame
    )
    clip = ENGINE.render(spec, lambda _: None)
    assert clip.frame_size == (width * 2 // 3, height * 2 // 3)
    decoded = decoded_frames(encode_clip(clip, str(tmp_path / "f.mp4")).path)
    assert decoded[0].shape == (height, width, 3)
    assert psnr(decoded[0], first) >= 35
    if mode is Mode.INTERPOLATION:
        assert psnr(decoded[-1], last) >= 35


def test_text_scenes_come_at_half_size_and_encode_at_full_size(tmp_path) -> None:
    width, height = frame_size("720p", "16:9")
    spec = spec_for(
        prompt="a harbour at dusk, rain, pan right", width=width, height=height, num_frames=12
    )
    clip = ENGINE.render(spec, lambda _: None)
    assert clip.frame_size == (640, 360)
    assert clip.notes["work_size"] == "640x360"
    facts_ = facts(encode_clip(clip, str(tmp_path / "t.mp4")).path)
    assert (facts_.width, facts_.height, facts_.frames) == (width, height, 12)
