"""Portrait and every Veo resolution work in every mode (first frames only: it is the size and
the inputs that matter here, not the length)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from cinegen.core.catalog import frame_size
from cinegen.core.request import Mode
from cinegen.engines.base import Clip, InputVideo
from cinegen.engines.preview.engine import PreviewEngine
from cinegen.media.decode import fit_image
from cinegen.media.encode import encode_clip
from tests.engines.test_preview_contract import spec_for
from tests.media.video_checks import psnr, textured

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
        assert all(f.shape == (height, width, 3) and f.dtype == np.uint8 for f in frames), mode
        if mode in (Mode.IMAGE, Mode.INTERPOLATION):
            assert psnr(frames[0], first) == float("inf")
        del clip, frames
