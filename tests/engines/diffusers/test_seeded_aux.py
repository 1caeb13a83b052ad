"""The diffusers engine's auxiliary pipelines draw their noise from the sample's seed.

The video pipelines get `generator=` seeded per sample and chunk in every mode (engine.py's
`_call`). The upscaler, used in every mode at 1080p and 4k, got none: it drew from torch's
global generator, so neither the same seed repeated nor did a request's samples follow their
own seeds. A stand-in pipeline records what it was called with (no checkpoint needed).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch

from cinegen.core.request import Mode
from cinegen.engines.base import RenderSpec
from cinegen.engines.diffusers.audio import from_pipeline
from cinegen.engines.diffusers.config import AuxEntry, Registry
from cinegen.engines.diffusers.engine import DiffusersEngine
from cinegen.engines.diffusers.loading import LoadOptions

pytestmark = pytest.mark.xdist_group("diffusers")


class NoisyUpscaler:
    """Upscales by repeating pixels, plus noise from the generator it is given."""

    def __init__(self) -> None:
        self.seeds: list[int] = []

    def __call__(
        self,
        prompt: str,
        image: Any,
        num_inference_steps: int,
        output_type: str,
        generator: torch.Generator | None = None,
    ) -> Any:
        self.seeds.append(generator.initial_seed() if generator is not None else -1)
        big = np.repeat(np.repeat(np.asarray(image, np.float32) / 255, 2, 0), 2, 1)
        noise = torch.rand(big.shape, generator=generator).numpy() * 0.1
        return SimpleNamespace(images=[np.clip(big + noise, 0, 1)])


class Deaf:
    """A pipeline whose call takes no generator."""

    def __call__(self, prompt: str, image: Any, num_inference_steps: int, output_type: str) -> Any:
        return SimpleNamespace(images=[np.asarray(image, np.float32) / 255])


def upscaled(pipe: Any, seed: int) -> np.ndarray:
    engine = DiffusersEngine(
        Registry(pipelines={}, models={}, upscaler=AuxEntry("Stand-in", "nowhere", steps=1)),
        LoadOptions(device="cpu"),
    )
    engine.cache.get = lambda *_args, **_kw: pipe  # type: ignore[method-assign]
    spec = RenderSpec(Mode.IMAGE, "a cat", "", 64, 32, 24, 1, seed, False)
    plan = SimpleNamespace(width=32, height=16)
    upscale = engine._upscaler(spec, plan)  # type: ignore[arg-type]
    assert upscale is not None
    return upscale(np.full((16, 32, 3), 100, np.uint8))


def test_the_upscaler_draws_its_noise_from_the_sample_seed() -> None:
    pipe = NoisyUpscaler()
    first, again, other = upscaled(pipe, 11), upscaled(pipe, 11), upscaled(pipe, 12)
    assert pipe.seeds == [11, 11, 12]
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)


def test_a_pipeline_without_a_generator_is_called_without_one() -> None:
    assert upscaled(Deaf(), 11).shape == (32, 64, 3)


class Audio:
    """A text-to-audio stand-in: silence, and the seed it was given."""

    def __init__(self) -> None:
        self.seeds: list[int] = []

    def __call__(self, prompt: str, num_inference_steps: int, generator: torch.Generator) -> Any:
        self.seeds.append(generator.initial_seed())
        return SimpleNamespace(audios=np.zeros((1, 2, 1600), np.float32))


def test_the_audio_pipeline_still_gets_the_seed() -> None:
    pipe = Audio()
    from_pipeline(pipe, RenderSpec(Mode.TEXT, "rain", "", 64, 32, 24, 24, 99, True), 1.0, 1, {})
    assert pipe.seeds == [99]
