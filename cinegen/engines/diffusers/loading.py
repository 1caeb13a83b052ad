"""Loading pipelines: local directories only unless the network is allowed; a warm cache.

Why the care: `from_pretrained` with a hub id quietly downloads gigabytes, and setting
`HF_HUB_OFFLINE` after `huggingface_hub` was imported is ignored (spec pitfall 2). So the
variables are set before the first diffusers import, every local load passes
`local_files_only=True`, and a path that is not a directory is refused unless allowed.
"""

from __future__ import annotations

import gc
import importlib
import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cinegen.core.errors import EngineError

log = logging.getLogger("cinegen.diffusers")

_OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


@dataclass(frozen=True)
class LoadOptions:
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    offload: str = "none"  # none | model (enable_model_cpu_offload) | sequential
    vae_tiling: bool = False
    allow_network: bool = False
    max_loaded: int = 1
    attention_backend: str = ""  # "" keeps torch SDPA; else diffusers' dispatcher name
    compile: bool = False  # torch.compile the transformer's repeated blocks


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
        self._loaded: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self.loads = 0  # how many times a checkpoint was read from disk

    def get(self, cls_name: str, path: str, dtype: str = "bfloat16", vae_dtype: str = "float32"):  # noqa: ANN201
        key = (cls_name, path)
        with self.lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            sibling = next((p for (c, pth), p in self._loaded.items() if pth == path), None)
            if sibling is not None:  # same weights, another class: share the components
                pipe = pipeline_class(cls_name).from_pipe(sibling)
                pipe.set_progress_bar_config(disable=True)
            else:
                self._evict(self.opts.max_loaded - 1)
                log.info("loading %s from %s", cls_name, path)
                pipe = load_pipeline(cls_name, path, dtype, vae_dtype, self.opts)
                self.loads += 1
            self._loaded[key] = pipe
            return pipe

    def _evict(self, keep: int) -> None:
        paths_kept = 0
        while self._loaded and len({p for _, p in self._loaded}) > max(keep, 0):
            key, _ = self._loaded.popitem(last=False)
            log.info("unloading %s from %s", *key)
            paths_kept += 1
        if paths_kept:
            free_memory()

    def loaded(self) -> list[tuple[str, str]]:
        with self.lock:
            return list(self._loaded)
