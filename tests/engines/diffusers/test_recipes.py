"""Distilled recipes and speed options in the registry (issue 29), on the tiny Wan checkpoint:
LoRA switched per model id on one shared base, the step count, scheduler and shift an entry
names, no CFG pass at guidance 1, each step cache, and the start-up refusals."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cinegen.core.request import Mode
from cinegen.engines.base import RenderSpec
from cinegen.engines.diffusers import loading
from cinegen.engines.diffusers.config import CACHE_KINDS, RegistryError, parse_registry
from cinegen.engines.diffusers.engine import GENERATION_SHARE, DiffusersEngine
from cinegen.engines.diffusers.loading import LoadOptions
from tests.support.diffusers import SMALL

pytestmark = pytest.mark.xdist_group("diffusers")


def _entry(path: Path, **fields: str) -> str:
    lines = [
        'class = "WanPipeline"',
        f'path = "{path}"',
        "fps = 8",
        f"max_area = {SMALL}",
        "max_frames = 33",
        "steps = 2",
        "guidance_scale = 3.0",
    ]
    lines = [line for line in lines if line.split(" = ")[0] not in fields]
    lines += [f"{k} = {v}" for k, v in fields.items()]
    return "\n".join(lines)


def registry(pipelines: dict[str, str]) -> Any:
    """A registry with one model id per pipeline entry (the model id is the entry's name)."""
    text = "".join(f"[pipelines.{name}]\n{body}\n\n" for name, body in pipelines.items())
    text += "".join(f'[models."{name}"]\ntext = "{name}"\n\n' for name in pipelines)
    import tomllib

    return parse_registry(tomllib.loads(text), "test")


def spec(model: str, seed: int = 3) -> RenderSpec:
    return RenderSpec(
        mode=Mode.TEXT,
        prompt="a red cat",
        negative_prompt="",
        width=96,
        height=54,
        fps=24,
        num_frames=24,
        seed=seed,
        audio=False,
        model=model,
    )


@pytest.fixture(scope="module")
def lora_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.engines.diffusers.tiny import save_wan_lora

    return save_wan_lora(tmp_path_factory.mktemp("lora"))


@pytest.fixture(scope="module")
def wan(tiny_dirs: dict[str, Path]) -> Path:
    return tiny_dirs["wan-t2v"]


def lora_value(path: Path, scale: float = 1.0, name: str = "distill") -> str:
    return f'[{{path = "{path}", scale = {scale}, name = "{name}"}}]'


class Calls:
    """What the transformer saw, call by call: the scheduler, its shift, the batch, the cache."""

    def __init__(self, engine: DiffusersEngine, entry_name: str) -> None:
        self.pipe = engine.cache.for_entry(engine.registry.pipelines[entry_name])
        self.seen: list[dict[str, Any]] = []

    def hook(self, _module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        scheduler = self.pipe.scheduler
        self.seen.append(
            {
                "scheduler": type(scheduler).__name__,
                "shift": scheduler.config[loading._shift_keyword(type(scheduler))],
                "batch": kwargs["hidden_states"].shape[0],
                "cache": type(self.pipe.transformer._cache_config).__name__,
            }
        )

    def __enter__(self) -> Calls:
        self.handle = self.pipe.transformer.register_forward_pre_hook(self.hook, with_kwargs=True)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.handle.remove()


def frames(engine: DiffusersEngine, model: str) -> list[np.ndarray]:
    return list(engine.render(spec(model), lambda _f: None).frames)


def steps_reported(engine: DiffusersEngine, model: str) -> tuple[int, list[np.ndarray]]:
    """Progress reports during generation (one per denoising step), then the frames."""
    reports: list[float] = []
    clip = engine.render(spec(model), reports.append)
    generated = len(reports)  # the frames are not made yet: only steps have reported
    assert reports[-1] == pytest.approx(GENERATION_SHARE)
    return generated, list(clip.frames)


# ----------------------------------------------------------------------- LoRA on a shared base


@pytest.fixture(scope="module")
def lora_engine(wan: Path, lora_file: Path) -> Iterator[DiffusersEngine]:
    reg = registry(
        {
            "plain": _entry(wan),
            "with-lora": _entry(wan, lora=lora_value(lora_file)),
            "half-lora": _entry(wan, lora=lora_value(lora_file, scale=0.5)),
        }
    )
    yield DiffusersEngine(reg, LoadOptions(max_loaded=1, device="cpu"))


def test_a_lora_changes_the_output_and_switching_back_restores_it_byte_for_byte(
    lora_engine: DiffusersEngine,
) -> None:
    before = frames(lora_engine, "plain")
    with_lora = frames(lora_engine, "with-lora")
    half = frames(lora_engine, "half-lora")
    after = frames(lora_engine, "plain")
    assert len(before) == len(with_lora) == 24
    changed = np.mean(
        [np.abs(a.astype(int) - b).mean() for a, b in zip(before, with_lora, strict=True)]
    )
    assert changed > 1.0  # the LoRA is applied, not a no-op
    assert any(
        not np.array_equal(a, b) for a, b in zip(with_lora, half, strict=True)
    )  # its scale too
    assert all(
        np.array_equal(a, b) for a, b in zip(before, after, strict=True)
    )  # switched off exactly


def test_entries_that_share_a_path_share_one_loaded_base(lora_engine: DiffusersEngine) -> None:
    frames(lora_engine, "with-lora")
    frames(lora_engine, "plain")
    assert lora_engine.cache.loads == 1  # max_loaded=1, yet nothing was read twice
    assert len(lora_engine.cache.loaded()) == 1
    pipe = lora_engine.cache.for_entry(lora_engine.registry.pipelines["plain"])
    assert pipe.get_list_adapters() == {"transformer": ["distill"]}  # loaded once, kept


# ----------------------------------------------------------------------- distilled recipe


@pytest.fixture(scope="module")
def fast_engine(wan: Path, lora_file: Path) -> DiffusersEngine:
    reg = registry(
        {
            "stock": _entry(wan, steps="2", guidance_scale="3.0"),
            "fast": _entry(
                wan,
                lora=lora_value(lora_file),
                scheduler='"FlowMatchEulerDiscreteScheduler"',
                shift="5.0",
                steps="3",
                guidance_scale="1.0",
            ),
        }
    )
    return DiffusersEngine(reg, LoadOptions(max_loaded=1, device="cpu"))


def test_a_distilled_entry_runs_its_steps_scheduler_and_shift_without_cfg(
    fast_engine: DiffusersEngine,
) -> None:
    with Calls(fast_engine, "fast") as calls:
        steps, made = steps_reported(fast_engine, "fast")
    assert steps == 3 and len(made) == 24
    assert [c["scheduler"] for c in calls.seen] == ["FlowMatchEulerDiscreteScheduler"] * 3
    assert {c["shift"] for c in calls.seen} == {5.0}
    assert [c["batch"] for c in calls.seen] == [1, 1, 1]  # one pass per step: no CFG pass
    # The shared base got its own scheduler back for the next entry.
    pipe = calls.pipe
    assert type(pipe.scheduler).__name__ == "UniPCMultistepScheduler"
    assert pipe.scheduler.config.flow_shift == 3.0


def test_the_stock_entry_on_the_same_base_keeps_its_cfg_and_steps(
    fast_engine: DiffusersEngine,
) -> None:
    frames(fast_engine, "fast")
    with Calls(fast_engine, "stock") as calls:
        steps, _ = steps_reported(fast_engine, "stock")
    assert steps == 2
    # Two passes per step (conditional, unconditional; guidance.py runs them batched): the
    # distilled entry's one pass per step is its guidance_scale = 1, not a quirk of the hook.
    assert [c["scheduler"] for c in calls.seen] == ["UniPCMultistepScheduler"] * 4
    assert fast_engine.cache.loads == 1


# ----------------------------------------------------------------------- step caches


CACHE_FIELDS = {
    "first_block": "threshold = 0.05",
    "taylorseer": "cache_interval = 2, disable_cache_before_step = 1",
    "faster": "spatial_attention_block_skip_range = 2",
    "pab": "spatial_attention_block_skip_range = 2",
}


@pytest.mark.parametrize("kind", CACHE_KINDS)
def test_each_cache_kind_runs_on_cpu_and_is_removed_after_the_call(wan: Path, kind: str) -> None:
    cache = f'{{kind = "{kind}", {CACHE_FIELDS[kind]}}}'
    reg = registry({"cached": _entry(wan, cache=cache, steps="4", guidance_scale="1.0")})
    engine = DiffusersEngine(reg, LoadOptions(max_loaded=1, device="cpu"))
    with Calls(engine, "cached") as calls:
        steps, made = steps_reported(engine, "cached")
    assert steps == 4 and len(made) == 24
    assert all(f.shape == (54, 96, 3) for f in made)
    names = {c["cache"] for c in calls.seen}
    assert len(names) == 1 and names.pop().endswith("Config")  # on during the call
    assert calls.pipe.transformer._cache_config is None  # off after it


# ----------------------------------------------------------------------- start-up refusals


def refused(reg_pipelines: dict[str, str], opts: LoadOptions | None = None) -> str:
    with pytest.raises(RegistryError) as info:
        DiffusersEngine(registry(reg_pipelines), opts or LoadOptions(device="cpu"))
    return str(info.value)


def test_a_missing_lora_file_is_refused(wan: Path, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="does not exist"):
        registry({"x": _entry(wan, lora=lora_value(tmp_path / "gone.safetensors"))})
    with pytest.raises(RegistryError, match="safetensors"):
        registry({"x": _entry(wan, lora=lora_value(tmp_path / "w.bin"))})


def test_an_unknown_scheduler_is_refused(wan: Path) -> None:
    message = refused({"x": _entry(wan, scheduler='"NoSuchScheduler"')})
    assert "[pipelines.x]" in message and "not a diffusers scheduler class" in message


def test_a_shift_on_a_scheduler_without_one_is_refused(wan: Path) -> None:
    message = refused({"x": _entry(wan, scheduler='"DDIMScheduler"', shift="5.0")})
    assert "DDIMScheduler has no flow shift" in message


def test_a_shift_on_the_checkpoints_own_scheduler_is_checked_too(
    wan: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry_ok = registry({"x": _entry(wan, shift="7.0")})  # UniPC: flow_shift
    DiffusersEngine(registry_ok, LoadOptions(device="cpu"))
    monkeypatch.setattr(loading, "_checkpoint_scheduler", lambda _path: "DDIMScheduler")
    message = refused({"x": _entry(wan, shift="7.0")})
    assert "DDIMScheduler has no flow shift" in message


def test_a_shift_alone_changes_the_checkpoints_scheduler(wan: Path) -> None:
    engine = DiffusersEngine(
        registry({"x": _entry(wan, shift="7.0")}), LoadOptions(max_loaded=1, device="cpu")
    )
    with Calls(engine, "x") as calls:
        frames(engine, "x")
    assert {(c["scheduler"], c["shift"]) for c in calls.seen} == {("UniPCMultistepScheduler", 7.0)}


def test_lora_without_peft_is_refused(
    wan: Path, lora_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real(name, *a)
    )
    message = refused({"x": _entry(wan, lora=lora_value(lora_file))})
    assert "`lora` needs peft" in message


def test_lora_on_a_class_without_lora_support_is_refused(
    wan: Path, lora_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loading, "pipeline_class", lambda name: type(name, (), {}))
    message = refused({"x": _entry(wan, lora=lora_value(lora_file))})
    assert "WanPipeline does not support LoRA" in message


def test_one_lora_name_for_two_files_is_refused(wan: Path, lora_file: Path, tmp_path: Path) -> None:
    other = tmp_path / "other.safetensors"
    other.write_bytes(lora_file.read_bytes())
    message = refused(
        {"a": _entry(wan, lora=lora_value(lora_file)), "b": _entry(wan, lora=lora_value(other))}
    )
    assert "already names" in message


def test_bad_cache_settings_are_refused(wan: Path) -> None:
    with pytest.raises(RegistryError, match="cache `kind` must be one of"):
        registry({"x": _entry(wan, cache='{kind = "teacache"}')})
    message = refused({"x": _entry(wan, cache='{kind = "first_block", speed = 2}')})
    assert "cache kind 'first_block'" in message and "speed" in message


def test_fp8_is_refused_on_cpu_with_the_reason(wan: Path) -> None:
    message = refused({"x": _entry(wan, fp8="true")})
    assert "`fp8 = true` cannot run here" in message
    assert "FP8 needs a CUDA GPU" in message
    assert "torchao is not installed" in message  # not in this environment


def test_fp8_is_refused_below_compute_capability_8_9(
    wan: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda _d=None: (8, 0))
    message = refused({"x": _entry(wan, fp8="true")}, LoadOptions(device="cuda:0"))
    assert "compute capability 8.0; FP8 needs 8.9 or newer" in message


def test_per_entry_kernel_settings_default_to_the_settings(wan: Path) -> None:
    reg = registry({"a": _entry(wan), "b": _entry(wan, attention_backend='"native"')})
    opts = LoadOptions(attention_backend="flash", compile=True)
    assert opts.for_entry(reg.pipelines["a"]).attention_backend == "flash"
    assert opts.for_entry(reg.pipelines["b"]).attention_backend == "native"
    assert opts.for_entry(reg.pipelines["a"]).compile is True
    # Another kernel setting is another loaded base, not a shared one.
    assert (
        opts.for_entry(reg.pipelines["a"]).variant() != opts.for_entry(reg.pipelines["b"]).variant()
    )
