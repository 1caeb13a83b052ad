"""The diffusers engine called directly: the output contract's pieces, the registry, offline
loading, warm reuse, cancel and memory errors, with the tiny checkpoints on disk."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from cinegen.core.errors import Cancelled, EngineError, OutOfMemory
from cinegen.core.request import Mode
from cinegen.engines.base import RenderSpec
from cinegen.engines.diffusers import video
from cinegen.engines.diffusers.config import RegistryError, load_registry, parse_registry
from cinegen.engines.diffusers.engine import DiffusersEngine
from cinegen.engines.diffusers.loading import LoadOptions, check_source, set_offline

pytestmark = pytest.mark.xdist_group("diffusers")


def spec(model: str, mode: Mode = Mode.TEXT, frames: int = 24, seed: int = 1, **kw) -> RenderSpec:
    return RenderSpec(
        mode=mode,
        prompt="a red cat",
        negative_prompt="",
        width=96,
        height=54,
        fps=24,
        num_frames=frames,
        seed=seed,
        audio=False,
        model=model,
        **kw,
    )


@pytest.fixture(scope="module")
def engine(registry_file: Path) -> DiffusersEngine:
    return DiffusersEngine(load_registry(registry_file), LoadOptions(max_loaded=1))


# ----------------------------------------------------------------------- contract pieces


def test_generation_size_is_the_models_multiple_near_the_aspect() -> None:
    assert video.generation_size(1280, 720, 32, 1280 * 704) == (1280, 704)
    assert video.generation_size(720, 1280, 32, 1280 * 704) == (704, 1280)
    assert video.generation_size(1920, 1080, 16, 832 * 480) == (848, 480)
    assert video.generation_size(1280, 720, 16, 10**9, fixed=(832, 480)) == (832, 480)
    assert video.generation_size(720, 1280, 16, 10**9, fixed=(832, 480)) == (480, 832)


def test_frame_counts_are_4k_or_8k_plus_one_and_cover_the_request() -> None:
    assert video.frames_needed(192, 24) == 192
    assert video.model_frame_count(192, 4) == 193
    assert video.model_frame_count(192, 8) == 193
    assert video.frames_needed(192, 16) == 129  # 8 s at 16 fps
    assert video.model_frame_count(129, 4) == 129
    assert video.model_frame_count(10, 4) == 13


def test_fit_frame_gives_the_exact_size() -> None:
    frame = np.zeros((704, 1280, 3), np.uint8)
    assert video.fit_frame(frame, 1280, 720).shape == (720, 1280, 3)
    assert video.fit_frame(frame, 3840, 2160).shape == (2160, 3840, 3)


def _texture(shift: int) -> np.ndarray:
    """A smooth random texture moved `shift` pixels to the right."""
    import cv2

    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (96, 200, 3)).astype(np.uint8), (0, 0), 2.0)
    return np.ascontiguousarray(base[16:80, 40 - shift : 168 - shift])


def test_16_to_24_fps_is_motion_interpolation_not_duplication() -> None:
    model = [_texture(0), _texture(9), _texture(18)]  # 9 px per frame at 16 fps
    out = list(video.resample(model, video.positions(3, 16)))  # 0, 2/3, 4/3 of a frame
    assert np.array_equal(out[0], model[0])
    truth, fade = _texture(6), ((model[0].astype(float) + 2 * model[1]) / 3).astype(np.uint8)
    assert psnr(out[1], truth) > psnr(out[1], model[1]) + 3  # not a repeated frame
    assert psnr(out[1], truth) > psnr(fade, truth) + 3  # not a cross-fade
    assert psnr(out[2], _texture(12)) > 25


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    inner = (slice(8, -8), slice(16, -16))  # borders are reflected, not known
    mse = np.mean((a[inner].astype(float) - b[inner].astype(float)) ** 2)
    return 10 * np.log10(255.0**2 / max(mse, 1e-9))


# ----------------------------------------------------------------------- registry, loading


def test_registry_refuses_bad_entries() -> None:
    base = {"pipelines": {"p": {"class": "WanPipeline", "path": "/x"}}}
    with pytest.raises(RegistryError, match="class"):
        parse_registry({"pipelines": {"p": {"class": "Nope", "path": "/x"}}, "models": {}})
    with pytest.raises(RegistryError, match="unknown pipeline"):
        parse_registry({**base, "models": {"m": {"text": "q"}}})
    with pytest.raises(RegistryError, match="cannot serve `image`"):
        parse_registry({**base, "models": {"m": {"image": "p"}}})
    with pytest.raises(RegistryError, match="no model"):
        parse_registry(base)
    ti2v = {"class": "WanImageToVideoPipeline", "path": "/x", "last_frame": False}
    with pytest.raises(RegistryError, match="interpolation"):
        parse_registry({"pipelines": {"p": ti2v}, "models": {"m": {"interpolation": "p"}}})


def test_weights_load_from_local_directories_only(tmp_path: Path) -> None:
    with pytest.raises(EngineError, match="local directories only"):
        check_source("Wan-AI/Wan2.2-TI2V-5B-Diffusers", allow_network=False)
    with pytest.raises(EngineError, match="not a diffusers checkpoint"):
        check_source(str(tmp_path), allow_network=False)
    check_source("Wan-AI/Wan2.2-TI2V-5B-Diffusers", allow_network=True)  # allowed by setting


def test_offline_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    set_offline(allow_network=True)
    assert "HF_HUB_OFFLINE" not in os.environ
    set_offline(allow_network=False)
    assert os.environ["HF_HUB_OFFLINE"] == "1"


def test_missing_checkpoint_fails_the_job_clearly(tmp_path: Path) -> None:
    registry = parse_registry(
        {
            "pipelines": {"p": {"class": "WanPipeline", "path": str(tmp_path / "absent")}},
            "models": {"m": {"text": "p"}},
        }
    )
    with pytest.raises(EngineError, match="does not exist"):
        DiffusersEngine(registry, LoadOptions()).render(spec("m"), lambda f: None)


# ----------------------------------------------------------------------- engine behaviour


def test_pipeline_is_loaded_once_and_reused(engine: DiffusersEngine) -> None:
    before = engine.cache.loads
    fractions: list[float] = []
    for seed in (1, 2):
        clip = engine.render(spec("tiny-wan", seed=seed), fractions.append)
        frames = list(clip.frames)
        assert len(frames) == 24 and frames[0].shape == (54, 96, 3)
    assert engine.cache.loads - before <= 1  # the second render found it warm
    assert all(0.0 <= f <= 1.0 for f in fractions)
    assert any(0.0 < f <= 0.9 for f in fractions)  # from callback_on_step_end


def test_cancel_raises_from_the_step_callback_and_the_engine_keeps_working(
    engine: DiffusersEngine,
) -> None:
    calls = []

    def progress(fraction: float) -> None:
        calls.append(fraction)
        if len(calls) == 1:
            raise Cancelled()

    with pytest.raises(Cancelled):
        engine.render(spec("tiny-wan"), progress)
    assert len(calls) == 1  # aborted at the first step: nothing decoded or resampled
    clip = engine.render(spec("tiny-wan"), lambda f: None)
    assert sum(1 for _ in clip.frames) == 24


def test_out_of_memory_is_a_typed_error(engine: DiffusersEngine) -> None:
    with pytest.raises(OutOfMemory, match="out of memory"):
        engine.render(spec("tiny-oom"), lambda f: None)
    assert sum(1 for _ in engine.render(spec("tiny-wan"), lambda f: None).frames) == 24


# ----------------------------------------------------------------------- batched guidance


@pytest.mark.parametrize("name", ["wan-t2v", "wan-vace"])
def test_paired_guidance_matches_the_stock_loop_in_half_the_forwards(
    engine: DiffusersEngine, name: str
) -> None:
    """One batched forward per step gives the video of diffusers' two forwards per step."""
    import torch

    from cinegen.engines.diffusers.guidance import encode_prompts, paired_guidance

    entry = engine.registry.pipelines[name]
    pipe = engine.cache.get(entry.cls, entry.path, entry.dtype, entry.vae_dtype)
    calls: list[int] = []
    # Count the transformer's real forwards by its first layer's batch (the pipeline's own
    # calls into the module stay two per step; the second is answered from the batch).
    hook = pipe.transformer.patch_embedding.register_forward_pre_hook(
        lambda _m, args: calls.append(args[0].shape[0])
    )
    common = dict(
        height=48,
        width=64,
        num_frames=9,
        num_inference_steps=2,
        guidance_scale=3.0,
        output_type="np",
    )
    try:
        with torch.inference_mode():
            stock = pipe(
                prompt="a red cat",
                negative_prompt="blurry",
                generator=torch.Generator("cpu").manual_seed(5),
                **common,
            ).frames[0]
            stock_calls, calls[:] = list(calls), []
            positive, negative = encode_prompts(pipe, "a red cat", "blurry")
            with paired_guidance(pipe, negative) as paired:
                batched = pipe(
                    prompt_embeds=positive,
                    negative_prompt_embeds=negative,
                    generator=torch.Generator("cpu").manual_seed(5),
                    **common,
                ).frames[0]
    finally:
        hook.remove()
    assert stock_calls == [1, 1, 1, 1]  # two steps, two forwards each
    assert calls == [2, 2] and paired[0].forwards == 2  # two steps, one batch of 2 each
    assert np.abs(np.asarray(stock) - np.asarray(batched)).max() < 1e-4
    assert "forward" not in vars(pipe.transformer)  # unpatched afterwards


# ----------------------------------------------------------------------- speed settings


def _tiny_video(pipe) -> np.ndarray:  # noqa: ANN001
    import torch

    with torch.inference_mode():
        return pipe(
            prompt="a red cat",
            height=48,
            width=64,
            num_frames=9,
            num_inference_steps=2,
            generator=torch.Generator("cpu").manual_seed(3),
            output_type="np",
        ).frames[0]


def test_attention_backend_and_compile_keep_the_video(tiny_dirs: dict[str, Path]) -> None:
    """The speed settings change kernels, not results; a bad backend name is a clear error."""
    from cinegen.engines.diffusers.loading import load_pipeline

    path = str(tiny_dirs["wan-t2v"])

    def load(**opts: object):  # noqa: ANN202
        return load_pipeline("WanPipeline", path, "float32", "float32", LoadOptions(**opts))

    eager = _tiny_video(load(device="cpu"))
    native = _tiny_video(load(device="cpu", attention_backend="native"))
    compiled_pipe = load(device="cpu", compile=True)
    assert np.abs(native - eager).max() < 1e-5
    assert np.abs(_tiny_video(compiled_pipe) - eager).max() < 1e-3
    # nn.Module.compile (what compile_repeated_blocks uses) sets _compiled_call_impl.
    assert all(b._compiled_call_impl is not None for b in compiled_pipe.transformer.blocks)
    with pytest.raises(EngineError, match="Attention backend 'nonsense' is not usable"):
        load(device="cpu", attention_backend="nonsense")


def test_paired_guidance_restores_a_forward_that_was_already_wrapped(
    engine: DiffusersEngine,
) -> None:
    """accelerate's offload hooks replace `forward` on the instance; they must survive."""
    from cinegen.engines.diffusers.guidance import paired_guidance

    entry = engine.registry.pipelines["wan-t2v"]
    pipe = engine.cache.get(entry.cls, entry.path, entry.dtype, entry.vae_dtype)
    original = pipe.transformer.forward

    def hooked(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        return original(*args, **kwargs)

    pipe.transformer.forward = hooked
    try:
        with paired_guidance(pipe, negative_embeds=None):
            assert pipe.transformer.forward is not hooked
        assert pipe.transformer.forward is hooked
    finally:
        del pipe.transformer.forward
