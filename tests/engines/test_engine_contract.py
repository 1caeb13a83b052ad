"""One contract, every engine: what jobs/worker.py and the encoder rely on, checked on the
frames an engine returns (as diffusers' `PipelineTesterMixin` runs one set of tests over every
pipeline).

An engine turns a `RenderSpec` into a `Clip` whose frames come in the number, size and dtype
asked for; the same seed gives the same frames and another seed other frames; progress runs
from 0 up to about 1; a progress callback that raises `Cancelled` stops the render. An engine
that promises to start an image-mode video on the given image (`first_frame_psnr`) is held to
it. Engines: the preview engine, and the diffusers engine on the tiny random-weight
checkpoints (tests/engines/diffusers/tiny.py), whose random weights promise no picture.

Mode-by-mode and encoded-MP4 checks stay with each engine: test_preview_contract.py,
diffusers/test_engine.py.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pytest

from cinegen.core.request import Mode
from cinegen.engines.base import RenderSpec
from tests.media.video_checks import psnr, textured
from tests.support.engines import Cancelled


@dataclass(frozen=True)
class Promises:
    model: str  # RenderSpec.model: the model the engine serves the spec for
    first_frame_psnr: float | None  # image mode starts on the image (dB); None: no promise


ENGINES = {
    "preview": Promises(model="veo-3.1-generate-preview", first_frame_psnr=35.0),
    "diffusers": Promises(model="tiny-wan", first_frame_psnr=None),
}
# Both diffusers suites share one worker under `--dist loadgroup`: the tiny checkpoints are
# built once per worker.
_GROUP = {"diffusers": [pytest.mark.xdist_group("diffusers")]}


def engine_params(names: list[str]) -> list:
    return [pytest.param(name, marks=_GROUP.get(name, []), id=name) for name in names]


ALL = engine_params(list(ENGINES))
FIRST_FRAME = engine_params([n for n, p in ENGINES.items() if p.first_frame_psnr is not None])


@dataclass
class Subject:
    name: str
    engine: object  # an Engine
    promises: Promises

    def spec(self, mode: Mode = Mode.TEXT, **changes: object) -> RenderSpec:
        base = RenderSpec(
            mode=mode,
            prompt="a red fox in the snow, slow pan",
            negative_prompt="",
            width=96,
            height=54,
            fps=24,
            num_frames=12,
            seed=5,
            audio=False,
            model=self.promises.model,
        )
        if mode is Mode.IMAGE and "first_frame" not in changes:
            width, height = changes.get("width", base.width), changes.get("height", base.height)
            changes["first_frame"] = textured(width, height, seed=1)
        return replace(base, **changes)

    def frames(self, spec: RenderSpec, progress: Callable[[float], None] = lambda _: None):
        return list(self.engine.render(spec, progress).frames)


@pytest.fixture(scope="module")
def subject(request: pytest.FixtureRequest) -> Subject:
    """The engine named by the test's parameter, built once per module (pipelines stay warm)."""
    name = request.param
    if name == "preview":
        from cinegen.engines.preview.engine import PreviewEngine

        return Subject(name, PreviewEngine(), ENGINES[name])
    from cinegen.engines.diffusers.config import load_registry
    from cinegen.engines.diffusers.engine import DiffusersEngine
    from cinegen.engines.diffusers.loading import LoadOptions

    registry = load_registry(request.getfixturevalue("registry_file"))
    return Subject(name, DiffusersEngine(registry, LoadOptions(max_loaded=2)), ENGINES[name])


@pytest.mark.parametrize("subject", ALL, indirect=True)
@pytest.mark.parametrize("mode", [Mode.TEXT, Mode.IMAGE], ids=["text", "image"])
@pytest.mark.parametrize(
    ("size", "count"),
    [((160, 90), 12), ((90, 160), 5), ((128, 128), 3), ((250, 142), 7)],
    ids=["16x9", "9x16", "square", "odd-multiple"],
)
def test_frames_come_in_the_count_size_and_dtype_asked_for(
    subject: Subject, mode: Mode, size: tuple[int, int], count: int
) -> None:
    width, height = size
    spec = subject.spec(mode, width=width, height=height, num_frames=count)
    clip = subject.engine.render(spec, lambda _: None)
    assert (clip.width, clip.height, clip.num_frames, clip.fps) == (width, height, count, 24)
    frames = list(clip.frames)
    assert len(frames) == count
    # Frames come at `frame_size`: the video's size, or a smaller one the encoder scales up.
    frame_width, frame_height = clip.frame_size
    assert frame_width <= width and frame_height <= height
    for frame in frames:
        assert frame.dtype == np.uint8
        assert frame.shape == (frame_height, frame_width, 3)


@pytest.mark.parametrize("subject", ALL, indirect=True)
@pytest.mark.parametrize("mode", [Mode.TEXT, Mode.IMAGE], ids=["text", "image"])
def test_the_same_seed_gives_the_same_frames_and_another_seed_others(
    subject: Subject, mode: Mode
) -> None:
    first = subject.frames(subject.spec(mode, seed=11))
    again = subject.frames(subject.spec(mode, seed=11))
    other = subject.frames(subject.spec(mode, seed=12))
    assert len(first) == len(again) == len(other)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("subject", FIRST_FRAME, indirect=True)
def test_image_mode_starts_on_the_image(subject: Subject) -> None:
    image = textured(96, 54, seed=3)
    frames = subject.frames(subject.spec(Mode.IMAGE, first_frame=image, num_frames=24))
    assert psnr(frames[0], image) >= subject.promises.first_frame_psnr
    assert psnr(frames[-1], image) < psnr(frames[0], image)  # and then it moves on


@pytest.mark.parametrize("subject", ALL, indirect=True)
def test_progress_runs_from_zero_up_to_about_one(subject: Subject) -> None:
    seen: list[float] = []
    frames = subject.frames(subject.spec(num_frames=24), seen.append)
    assert len(frames) == 24
    assert len(seen) >= 2
    assert seen == sorted(seen)
    assert all(0.0 <= fraction <= 1.0 for fraction in seen)
    assert seen[0] < 0.5
    assert seen[-1] == pytest.approx(1.0, abs=0.05)


@pytest.mark.parametrize("subject", ALL, indirect=True)
def test_cancel_from_progress_stops_the_render_and_the_engine_goes_on(
    subject: Subject,
) -> None:
    spec = subject.spec(num_frames=24)
    reports: list[float] = []

    def cancel_halfway(fraction: float) -> None:
        reports.append(fraction)
        if fraction >= 0.5:
            raise Cancelled()

    pulled = 0
    with pytest.raises(Cancelled):
        for _ in subject.engine.render(spec, cancel_halfway).frames:
            pulled += 1
    assert pulled < spec.num_frames
    assert reports[-1] >= 0.5  # no report after the one that raised
    assert all(fraction < 0.5 for fraction in reports[:-1])
    assert len(subject.frames(spec)) == spec.num_frames  # the next render is whole
