"""The personGeneration `dont_allow` check (media/people.py) against the preview engine's own
time for the same sample, as ratios in one run.

For each case a 720p 16:9 sample of `--seconds` seconds is rendered by the preview engine and
encoded to MP4 (the reference: what a preview job costs per sample), then the check the worker
runs on it is timed: `people.shows_person` on the `SAMPLED_FRAMES` frames `FrameSampler` keeps
(a frame with no one runs every cascade: frontal face, profile face and its mirror, upper body,
full body; a hit ends it early). Then each cascade alone on those frames, to show where the
time goes, and a drawn face (tests/engines/test_person_filter.py's), for the early exit. Best of
`--repeat` runs each.

    python bench/people_check.py [--seconds 8] [--repeat 3]

It decides README "Safety: people and prompts": whether the check is cheap enough to run for
the preview engine (which draws no people), and what it adds to a GPU sample.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cinegen.core.request import Mode  # noqa: E402
from cinegen.engines.base import RenderSpec  # noqa: E402
from cinegen.engines.preview.engine import PreviewEngine  # noqa: E402
from cinegen.media import people  # noqa: E402
from cinegen.media.encode import encode_clip  # noqa: E402
from tests.engines.test_person_filter import drawn_face  # noqa: E402

PROMPTS = ("a mountain lake at sunset, slow pan right", "a crowd in a city street at night")


def best(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """The least wall time and the least CPU time (all threads) of `repeat` runs: on a
    shared machine the CPU time is the steadier figure."""
    walls, cpus = [], []
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return min(walls), min(cpus)


def preview_sample(prompt: str, seconds: int, out: Path) -> list[np.ndarray]:
    """Render and encode one 720p sample; the frames the worker's sampler keeps."""
    spec = RenderSpec(
        mode=Mode.TEXT,
        prompt=prompt,
        negative_prompt="",
        width=1280,
        height=720,
        fps=24,
        num_frames=24 * seconds,
        seed=7,
        audio=False,
    )
    clip = PreviewEngine().render(spec, lambda _f: None)
    sampler = people.FrameSampler(clip.frames, clip.num_frames)
    clip.frames = iter(sampler)
    encode_clip(clip, str(out))
    return sampler.kept


def each_hits(cascade: people.Cascade, grays: list[np.ndarray]) -> None:
    for gray in grays:
        people.hits(cascade, gray)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    people.classifiers()  # loaded once per thread, not counted
    with tempfile.TemporaryDirectory() as scratch:
        for prompt in PROMPTS:
            out = Path(scratch) / "s.mp4"
            reference = best(partial(preview_sample, prompt, args.seconds, out), args.repeat)
            kept = preview_sample(prompt, args.seconds, out)
            check = best(partial(people.shows_person, kept), args.repeat)
            print(
                f"preview {args.seconds} s 720p {prompt!r}: render+encode "
                f"{reference[0]:.2f} s ({reference[1]:.2f} s CPU); check ({len(kept)} frames, "
                f"no one) {check[0]:.2f} s ({check[1]:.2f} s CPU); ratio "
                f"{check[0] / reference[0]:.2f} wall, {check[1] / reference[1]:.2f} CPU"
            )
            grays = [people.analysis_gray(frame) for frame in kept]
            for cascade in people.CASCADES:
                alone = best(partial(each_hits, cascade, grays), args.repeat)
                print(f"  {cascade.file}: {alone[1]:.2f} s CPU ({alone[1] / reference[1]:.2f})")
        face = [drawn_face(1280, 720, scale=1.5)] * people.SAMPLED_FRAMES
        found = best(partial(people.shows_person, face), args.repeat)
        print(f"check with a face in the first frame: {found[0]:.2f} s ({found[1]:.2f} s CPU)")


if __name__ == "__main__":
    main()
