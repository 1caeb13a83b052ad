"""Loading pipelines: local directories only unless the network is allowed; a warm cache.

Why the care: `from_pretrained` with a hub id quietly downloads gigabytes, and setting
`HF_HUB_OFFLINE` after `huggingface_hub` was imported is ignored (spec pitfall 2). So the
variables are set before the first diffusers import, every local load passes
`local_files_only=True`, and a path that is not a directory is refused unless allowed.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import inspect
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cinegen.core.errors import EngineError
from cinegen.engines.diffusers.config import PipelineEntry, Registry, RegistryError

log = logging.getLogger("cinegen.diffusers")

_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
# `from_pretrained` is not thread-safe: accelerate's empty-weights loading patches
# torch.nn.Module for the whole process while it runs, so a second load at the same time
# (another device's engine, `DevicePool`) gets meta tensors. Loads take turns; calls do not.
_LOADING = threading.Lock()


@dataclass(frozen=True)
class LoadOptions:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    offload: str = "none"  # none | model (enable_model_cpu_offload) | sequential
    vae_tiling: bool = False
    allow_network: bool = False
    max_loaded: int = 1
    attention_backend: str = ""  # "" keeps torch SDPA; else diffusers' dispatcher name
    compile: bool = False  # torch.compile the transformer's repeated blocks
    fp8: bool = False  # torchao dynamic float8 weights and activations (CUDA, sm 8.9+)

    def for_entry(self, entry: PipelineEntry) -> LoadOptions:
        """These options with the entry's own weight and kernel settings over the defaults."""
        return replace(
            self,
            attention_backend=(
                self.attention_backend
                if entry.attention_backend is None
                else entry.attention_backend
            ),
            compile=self.compile if entry.compile is None else entry.compile,
            fp8=entry.fp8,
        )

    def variant(self) -> str:
        """What a loaded base differs by besides its path: another value loads another one."""
        return f"fp8={self.fp8},attention={self.attention_backend},compile={self.compile}"


def set_offline(allow_network: bool) -> None:
    """HF_HUB_OFFLINE=1 unless the network is allowed; call before importing diffusers."""
    if allow_network:
        return
    for name in _OFFLINE_VARS:
        os.environ.setdefault(name, "1")


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def torch_dtype(name: str, device: str) -> Any:
    """The compute dtype: as configured on a GPU, float32 on a CPU (bf16 CPU kernels are slow)."""
    import torch

    if not device.startswith("cuda"):
        return torch.float32
    try:
        return getattr(torch, name)
    except AttributeError as exc:
        raise EngineError(f"Unknown dtype {name!r} in the diffusers registry.") from exc


def check_source(path: str, allow_network: bool) -> None:
    """A local checkpoint directory, or a hub id only when the network is allowed."""
    local = Path(path).expanduser()
    if local.is_dir():
        if not (local / "model_index.json").is_file() and not (local / "config.json").is_file():
            raise EngineError(
                f"{path} is not a diffusers checkpoint directory (no model_index.json)."
            )
        return
    if not allow_network:
        raise EngineError(
            f"The checkpoint directory {path} does not exist. cinegen loads weights from local "
            "directories only (set CINEGEN_DIFFUSERS_ALLOW_NETWORK=true to allow hub ids)."
        )


def pipeline_class(name: str) -> Any:
    diffusers = importlib.import_module("diffusers")
    try:
        return getattr(diffusers, name)
    except AttributeError as exc:
        raise EngineError(f"diffusers {diffusers.__version__} has no class {name}.") from exc


def _dtype_keyword() -> str:
    """`dtype` from diffusers 0.42 on (`torch_dtype` is deprecated there), else `torch_dtype`."""
    import diffusers

    major, minor = (int(x) for x in diffusers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (0, 42) else "torch_dtype"


def _realign_cpu_params(pipe: Any) -> None:
    """Copy mmapped safetensors weights into aligned memory: same numbers run to run (§3)."""
    for component in pipe.components.values():
        for param in getattr(component, "parameters", lambda: [])():
            param.data = param.data.clone()


def load_pipeline(cls_name: str, path: str, dtype: str, vae_dtype: str, opts: LoadOptions) -> Any:
    """Load `cls_name` from `path` onto the configured device with the memory options."""
    check_source(path, opts.allow_network)
    cls = pipeline_class(cls_name)
    _quiet_progress_bars()
    device = resolve_device(opts.device)
    local = Path(path).expanduser().is_dir()
    kwargs: dict[str, Any] = {_dtype_keyword(): torch_dtype(dtype, device)}
    if local:
        kwargs["local_files_only"] = True
    try:
        with _LOADING:
            pipe = cls.from_pretrained(str(Path(path).expanduser()) if local else path, **kwargs)
    except (OSError, ValueError, TypeError) as exc:
        raise EngineError(f"Could not load {cls_name} from {path}: {exc}") from exc
    vae = getattr(pipe, "vae", None)
    if vae is not None:
        if vae.dtype != torch_dtype(vae_dtype, device):  # Wan's VAE is kept in float32
            vae.to(torch_dtype(vae_dtype, device))
        if opts.vae_tiling and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
    _place(pipe, device, opts.offload)
    speed_up(pipe, opts)
    if device == "cpu":
        _realign_cpu_params(pipe)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def speed_up(pipe: Any, opts: LoadOptions) -> list[str]:
    """The transformer speed settings: a fused attention kernel other than torch's SDPA, and
    torch.compile of the repeated blocks (compiled once, on the first call; every later call
    with the same shapes reuses it). Returns what was applied, for logs and the benchmark."""
    applied = []
    for name in ("transformer", "transformer_2"):
        model = getattr(pipe, name, None)
        if model is None:
            continue
        if opts.fp8:
            _float8(model)
            applied.append(f"{name}: torchao dynamic float8")
        if opts.attention_backend:
            try:
                model.set_attention_backend(opts.attention_backend)
            except (ValueError, RuntimeError, ImportError) as exc:
                raise EngineError(
                    f"Attention backend {opts.attention_backend!r} is not usable here: {exc}"
                ) from exc
            applied.append(f"{name}: attention backend {opts.attention_backend}")
        if opts.compile:
            model.compile_repeated_blocks(fullgraph=True)
            applied.append(f"{name}: torch.compile repeated blocks")
    return applied


def _float8(model: Any) -> None:
    """Dynamic float8 weights and activations (torchao), per row: Hopper's FP8 tensor cores."""
    from torchao.quantization import (
        Float8DynamicActivationFloat8WeightConfig,
        PerRow,
        quantize_,
    )

    quantize_(model, Float8DynamicActivationFloat8WeightConfig(granularity=PerRow()))


def _quiet_progress_bars() -> None:
    """Loading bars are for terminals; a server logs one line per load instead."""
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.disable_progress_bar()
    try:
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    except ImportError:  # pragma: no cover
        pass


def _place(pipe: Any, device: str, offload: str) -> None:
    if offload == "model" and device.startswith("cuda"):
        pipe.enable_model_cpu_offload(device=device)
    elif offload == "sequential" and device.startswith("cuda"):
        pipe.enable_sequential_cpu_offload(device=device)
    else:
        pipe.to(device)


def free_memory() -> None:
    """Drop what a failed or cancelled call left behind, on the GPU too."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:  # pragma: no cover - freeing must never raise
        pass


class PipelineCache:
    """Pipelines kept warm, at most `max_loaded` at once (least recently used goes first).

    One call at a time per process: pipelines keep per-call state on `self` (pitfall 11),
    and one GPU runs one denoising loop at a time anyway.
    """

    def __init__(self, opts: LoadOptions) -> None:
        self.opts = opts
        self.lock = threading.RLock()
        # (class, path, variant): entries that differ only in their recipe (LoRA, scheduler,
        # steps, cache) share one; the recipe is switched per call (`recipe`).
        self._loaded: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
        self.loads = 0  # how many times a checkpoint was read from disk

    def get(  # noqa: ANN201
        self,
        cls_name: str,
        path: str,
        dtype: str = "bfloat16",
        vae_dtype: str = "float32",
        opts: LoadOptions | None = None,
    ):
        opts = opts or self.opts
        base = (path, opts.variant())
        key = (cls_name, *base)
        with self.lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            sibling = next((p for (_, *b), p in self._loaded.items() if tuple(b) == base), None)
            if sibling is not None:  # same weights, another class: share the components
                pipe = pipeline_class(cls_name).from_pipe(sibling)
                pipe.set_progress_bar_config(disable=True)
            else:
                self._evict(self.opts.max_loaded - 1)
                log.info("loading %s from %s", cls_name, path)
                pipe = load_pipeline(cls_name, path, dtype, vae_dtype, opts)
                self.loads += 1
            self._loaded[key] = pipe
            return pipe

    def for_entry(self, entry: PipelineEntry):  # noqa: ANN201
        """The loaded base of a registry entry (its recipe applied by `recipe`)."""
        opts = self.opts.for_entry(entry)
        return self.get(entry.cls, entry.path, entry.dtype, entry.vae_dtype, opts)

    def put(self, entry: PipelineEntry, pipe: Any) -> None:
        """A pipeline built elsewhere (bench/gpu.py's random full-size weights, which have
        no checkpoint to load) served as `entry`'s loaded base."""
        opts = self.opts.for_entry(entry)
        with self.lock:
            self._loaded[(entry.cls, entry.path, opts.variant())] = pipe

    def _evict(self, keep: int) -> None:
        paths_kept = 0
        while self._loaded and len({tuple(b) for _, *b in self._loaded}) > max(keep, 0):
            key, _ = self._loaded.popitem(last=False)
            log.info("unloading %s from %s", *key[:2])
            paths_kept += 1
        if paths_kept:
            free_memory()

    def loaded(self) -> list[tuple[str, str]]:
        with self.lock:
            return [(cls, path) for cls, path, _ in self._loaded]


# ---------------------------------------------------------------------- recipes per call


@contextmanager
def recipe(pipe: Any, entry: PipelineEntry) -> Iterator[None]:
    """The entry's LoRAs, scheduler and step cache on its (shared) base for one call; the
    scheduler and cache are put back after, the LoRAs switched off by the next plain entry."""
    original = pipe.scheduler
    switch_loras(pipe, entry)
    if entry.scheduler or entry.shift is not None:
        pipe.scheduler = make_scheduler(original, entry)
    model = pipe.transformer
    if entry.cache:
        model.enable_cache(cache_config(entry, lambda: pipe.current_timestep))
    try:
        yield
    finally:
        if entry.cache:
            model.disable_cache()
        if pipe.scheduler is not original:
            pipe.scheduler = original


def switch_loras(pipe: Any, entry: PipelineEntry) -> None:
    """Load each LoRA once per base (`load_lora_weights`), then activate exactly the entry's
    (`set_adapters`) or none (`disable_lora`): the base weights are never reloaded."""
    if not entry.lora and not getattr(pipe.transformer, "peft_config", None):
        return
    loaded = {name for names in pipe.get_list_adapters().values() for name in names}
    for lora in entry.lora:
        if lora.name not in loaded:
            log.info("loading lora %s from %s", lora.name, lora.path)
            try:
                pipe.load_lora_weights(lora.path, adapter_name=lora.name)
            except (OSError, ValueError, KeyError, RuntimeError) as exc:
                raise EngineError(f"Could not load the lora {lora.path}: {exc}") from exc
    if entry.lora:
        pipe.enable_lora()
        pipe.set_adapters([x.name for x in entry.lora], [x.scale for x in entry.lora])
    else:
        pipe.disable_lora()


def _shift_keyword(scheduler_cls: Any) -> str | None:
    """The scheduler's flow-shift argument: `flow_shift` (UniPC, DPM) or `shift` (Euler)."""
    params = inspect.signature(scheduler_cls.__init__).parameters
    return next((k for k in ("flow_shift", "shift") if k in params), None)


def make_scheduler(original: Any, entry: PipelineEntry) -> Any:
    """The entry's scheduler class (or the checkpoint's) from the checkpoint's config, with
    the entry's shift."""
    cls = scheduler_class(entry.scheduler) if entry.scheduler else type(original)
    extra: dict[str, Any] = {}
    if entry.shift is not None:
        keyword = _shift_keyword(cls)
        if keyword is None:
            raise EngineError(f"{cls.__name__} has no flow shift to set (`shift` in the registry).")
        extra[keyword] = entry.shift
    return cls.from_config(original.config, **extra)


def scheduler_class(name: str) -> Any:
    from diffusers import SchedulerMixin

    cls = getattr(importlib.import_module("diffusers"), name, None)
    if not isinstance(cls, type) or not issubclass(cls, SchedulerMixin):
        raise EngineError(f"{name!r} is not a diffusers scheduler class.")
    return cls


def cache_config(entry: PipelineEntry, timestep: Any) -> Any:
    """diffusers' config object for `cache = {kind = ..., ...}`; the other keys are its fields
    (lists become tuples). `timestep` reads the pipeline's current timestep (faster, pab)."""
    import diffusers

    fields = {k: tuple(v) if isinstance(v, list) else v for k, v in entry.cache.items()}
    kind = fields.pop("kind")
    if kind == "first_block":
        return diffusers.FirstBlockCacheConfig(**fields)
    if kind == "taylorseer":
        return diffusers.TaylorSeerCacheConfig(**fields)
    fields.setdefault("current_timestep_callback", timestep)
    if kind == "faster":
        fields.setdefault("is_guidance_distilled", entry.guidance_scale <= 1.0)
        return diffusers.FasterCacheConfig(**fields)
    fields.setdefault("spatial_attention_block_skip_range", 2)
    return diffusers.PyramidAttentionBroadcastConfig(**fields)


# ---------------------------------------------------------------------- start-up checks


def check_recipes(registry: Registry, opts: LoadOptions) -> None:
    """Refuse at start-up, with the entry and the reason, what a first call would fail on:
    an unknown scheduler, LoRA on a class without it, bad cache fields, FP8 where it cannot
    run. Imports diffusers only for a registry that uses these fields."""
    adapters: dict[str, str] = {}
    for entry in registry.pipelines.values():
        where = f"[pipelines.{entry.name}]"
        try:
            _check_entry(entry, opts.for_entry(entry))
        except EngineError as exc:
            raise RegistryError(f"{where}: {exc}") from exc
        for lora in entry.lora:
            if adapters.setdefault(lora.name, lora.path) != lora.path:
                raise RegistryError(
                    f"{where}: lora name {lora.name!r} already names {adapters[lora.name]}; "
                    "give each lora file its own name."
                )


def _check_entry(entry: PipelineEntry, opts: LoadOptions) -> None:
    if entry.lora:
        if not hasattr(pipeline_class(entry.cls), "load_lora_weights"):
            raise EngineError(f"{entry.cls} does not support LoRA weights (`lora`).")
        if importlib.util.find_spec("peft") is None:
            raise EngineError("`lora` needs peft, which is not installed (pip install peft).")
    if entry.shift is not None:
        name = entry.scheduler or _checkpoint_scheduler(entry.path)
        if name and _shift_keyword(scheduler_class(name)) is None:
            raise EngineError(f"{name} has no flow shift to set (`shift`).")
    elif entry.scheduler:
        scheduler_class(entry.scheduler)
    if entry.cache:
        try:
            cache_config(entry, lambda: 0)
        except TypeError as exc:
            raise EngineError(f"cache kind {entry.cache['kind']!r}: {exc}") from exc
    if opts.fp8:
        reason = fp8_unavailable(opts.device)
        if reason:
            raise EngineError(f"`fp8 = true` cannot run here: {reason}.")


def _checkpoint_scheduler(path: str) -> str:
    """The scheduler class a local checkpoint names, or "" (a hub id, or none saved)."""
    config = Path(path).expanduser() / "scheduler" / "scheduler_config.json"
    try:
        return str(json.loads(config.read_text()).get("_class_name", ""))
    except (OSError, ValueError):
        return ""


def fp8_unavailable(device: str) -> str:
    """Why torchao's dynamic float8 cannot run on `device`, or "" when it can."""
    import torch

    reasons = []
    if importlib.util.find_spec("torchao") is None:
        reasons.append("torchao is not installed (pip install torchao)")
    device = resolve_device(device)
    if not device.startswith("cuda"):
        reasons.append(f"the device is {device}, and FP8 needs a CUDA GPU")
    elif torch.cuda.get_device_capability(torch.device(device)) < (8, 9):
        major, minor = torch.cuda.get_device_capability(torch.device(device))
        reasons.append(
            f"{device} has compute capability {major}.{minor}; FP8 needs 8.9 or newer (Ada, Hopper)"
        )
    return "; ".join(reasons)
