"""The model registry: which diffusers pipeline and checkpoint serve which model and mode.

A TOML file named by `CINEGEN_DIFFUSERS_REGISTRY` (README, "GPU engine (diffusers)"):

    [pipelines.wan-ti2v]                 # a checkpoint, loaded as one pipeline class
    class = "WanPipeline"
    path = "/models/Wan2.2-TI2V-5B-Diffusers"
    fps = 24                             # the model's native rate; 16 is resampled to 24
    multiple = 32                        # width and height are generated at this multiple
    max_area = 901120                    # 1280 × 704: the most pixels per generated frame
    frames_per_latent = 4                # frame counts are 4k+1 (LTX: 8)
    max_frames = 121                     # longer outputs are made in overlapping chunks
    steps = 50
    guidance_scale = 5.0

    [pipelines.wan-ti2v-fast]            # the same checkpoint, distilled: shares its weights
    class = "WanPipeline"
    path = "/models/Wan2.2-TI2V-5B-Diffusers"
    lora = [{path = "/models/wan2.2-ti2v-5b-4step.safetensors", scale = 1.0, name = "distill"}]
    scheduler = "UniPCMultistepScheduler"  # a diffusers scheduler class; `shift` its flow shift
    shift = 5.0
    steps = 4
    guidance_scale = 1.0                 # no CFG pass
    cache = {kind = "first_block", threshold = 0.05}  # or taylorseer | faster | pab
    fp8 = false                          # torchao dynamic float8 (CUDA, compute capability 8.9+)

    [models."veo-3.1-generate-preview"]  # a catalog model (or a new, native one)
    text = "wan-ti2v"
    image = "wan-ti2v-i2v"
    edit = "wan-vace"                    # masked editing (Vertex `mask`): WanVACEPipeline only
    ...

Parsing is pure (no torch): a bad file is refused at start-up with the reason.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MODES = ("text", "image", "interpolation", "references", "extension", "edit")

# Which modes each supported class can serve (pitfall 6: TI2V-5B ignores `last_image`, so a
# Wan I2V entry says `last_frame = false` to refuse interpolation). Only VACE edits under a
# mask (masked video-to-video): an `edit` on another class is refused at start-up.
CLASS_MODES: dict[str, tuple[str, ...]] = {
    "WanPipeline": ("text",),
    "WanImageToVideoPipeline": ("image", "interpolation", "extension"),
    "WanVACEPipeline": MODES,
    "LTXPipeline": ("text",),
    "LTXImageToVideoPipeline": ("image", "extension"),
    "LTXConditionPipeline": ("text", "image", "interpolation", "extension"),
    # LTX-2: the video and its soundtrack in one call (native audio, engine.py).
    "LTX2Pipeline": ("text",),
    "LTX2ImageToVideoPipeline": ("image", "extension"),
    "LTX2ConditionPipeline": ("text", "image", "interpolation", "extension"),
}
AUDIO_CLASSES = ("LTX2Pipeline", "LTX2ImageToVideoPipeline", "LTX2ConditionPipeline")
FRAMES_PER_LATENT = {"Wan": 4, "LTX": 8}
# diffusers' step-caching hooks by registry name (loading.cache_config builds them).
CACHE_KINDS = ("first_block", "taylorseer", "faster", "pab")
MULTIPLE = {"Wan": 16, "LTX": 32}


class RegistryError(Exception):
    """The registry file cannot be used; the message says which entry and why."""


@dataclass(frozen=True)
class LoraWeights:
    """A LoRA file applied to a pipeline's transformer, under its adapter name."""

    path: str
    scale: float = 1.0
    name: str = ""


@dataclass(frozen=True)
class PipelineEntry:
    name: str
    cls: str
    path: str
    fps: int = 24
    multiple: int = 16
    max_area: int = 1280 * 704
    size: tuple[int, int] | None = None  # fixed (width, height) for landscape; swapped for 9:16
    frames_per_latent: int = 4
    max_frames: int = 121
    context_frames: int = 9  # frames of the previous chunk / input a continuation sees
    steps: int = 50
    guidance_scale: float = 5.0
    last_frame: bool = True  # False for a Wan I2V checkpoint that ignores `last_image`
    dtype: str = "bfloat16"  # on a GPU; CPU runs in float32
    vae_dtype: str = "float32"
    call: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments to __call__
    # A recipe on the base checkpoint (README "Distilled recipes"): switched per call, so
    # entries with the same `path` share one loaded base.
    lora: tuple[LoraWeights, ...] = ()
    scheduler: str = ""  # a diffusers scheduler class name; "" keeps the checkpoint's
    shift: float | None = None  # the scheduler's flow shift (`flow_shift` or `shift`)
    cache: dict[str, Any] = field(default_factory=dict)  # {kind = ..., threshold = ...}
    # What changes the loaded weights or kernels: a different value loads another base.
    fp8: bool = False
    attention_backend: str | None = None  # None: the CINEGEN_DIFFUSERS_ATTENTION_BACKEND
    compile: bool | None = None  # None: CINEGEN_DIFFUSERS_COMPILE

    @property
    def family(self) -> str:
        return "LTX" if self.cls.startswith("LTX") else "Wan"

    @property
    def native_audio(self) -> bool:
        """Whether the call returns the clip's soundtrack with its frames (LTX-2)."""
        return self.cls in AUDIO_CLASSES

    def modes(self) -> tuple[str, ...]:
        modes = CLASS_MODES[self.cls]
        return tuple(m for m in modes if self.last_frame or m != "interpolation")


@dataclass(frozen=True)
class AuxEntry:
    """An audio or upscaler pipeline: any diffusers class, called with its own arguments."""

    cls: str
    path: str
    steps: int = 50
    call: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelEntry:
    id: str
    modes: dict[str, str]  # mode -> pipeline name
    display_name: str = ""
    description: str = ""
    audio: str = "never"  # for native rows: "never" | "optional" | "always"
    native: bool = False


@dataclass(frozen=True)
class Registry:
    pipelines: dict[str, PipelineEntry]
    models: dict[str, ModelEntry]
    audio: AuxEntry | None = None
    upscaler: AuxEntry | None = None
    source: str = ""

    def pipeline_for(self, model: str, mode: str) -> PipelineEntry | None:
        entry = self.models.get(model)
        name = entry.modes.get(mode) if entry else None
        return self.pipelines[name] if name else None


def _int(table: dict[str, Any], key: str, default: int, where: str) -> int:
    value = table.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise RegistryError(f"{where}: `{key}` must be a positive integer, not {value!r}.")
    return value


def _number(table: dict[str, Any], key: str, where: str) -> float | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise RegistryError(f"{where}: `{key}` must be a non-negative number, not {value!r}.")
    return float(value)


def _loras(table: dict[str, Any], where: str) -> tuple[LoraWeights, ...]:
    """`lora = [{path, scale, name}]`: local .safetensors files, each name used once."""
    raw = table.get("lora", [])
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        raise RegistryError(f"{where}: `lora` must be a list of {{path, scale, name}} tables.")
    loras: list[LoraWeights] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise RegistryError(f"{where}: lora {index + 1} needs a `path` (a .safetensors file).")
        path = Path(item["path"]).expanduser()
        if path.suffix != ".safetensors":
            raise RegistryError(f"{where}: lora {path} must be a .safetensors file.")
        if not path.is_file():
            raise RegistryError(f"{where}: the lora file {path} does not exist.")
        scale = _number(item, "scale", where)
        name = str(item.get("name") or path.stem)
        if not name.isidentifier():
            raise RegistryError(f"{where}: lora name {name!r} must be a word (letters, _).")
        loras.append(LoraWeights(str(path), 1.0 if scale is None else scale, name))
    names = [lora.name for lora in loras]
    if len(set(names)) != len(names):
        raise RegistryError(f"{where}: each lora needs its own `name`; got {names}.")
    return tuple(loras)


def _cache(table: dict[str, Any], where: str) -> dict[str, Any]:
    raw = table.get("cache", {})
    if not isinstance(raw, dict):
        raise RegistryError(f"{where}: `cache` must be a table with a `kind`.")
    if raw and raw.get("kind") not in CACHE_KINDS:
        raise RegistryError(
            f"{where}: cache `kind` must be one of {', '.join(CACHE_KINDS)}; "
            f"got {raw.get('kind')!r}."
        )
    if "threshold" in raw:
        _number(raw, "threshold", where)
    return dict(raw)


def _guidance(table: dict[str, Any], where: str) -> float:
    """`guidance_scale`; 1 (or less) runs no unconditional pass."""
    value = _number(table, "guidance_scale", where)
    return 5.0 if value is None else value


def _optional_bool(table: dict[str, Any], key: str, where: str) -> bool | None:
    value = table.get(key)
    if value is not None and not isinstance(value, bool):
        raise RegistryError(f"{where}: `{key}` must be true or false, not {value!r}.")
    return value


def _pipeline(name: str, table: dict[str, Any]) -> PipelineEntry:
    where = f"[pipelines.{name}]"
    cls = table.get("class")
    if cls not in CLASS_MODES:
        known = ", ".join(CLASS_MODES)
        raise RegistryError(f"{where}: `class` must be one of {known}; got {cls!r}.")
    path = table.get("path")
    if not isinstance(path, str) or not path:
        raise RegistryError(f"{where}: `path` (a checkpoint directory) is required.")
    family = "LTX" if cls.startswith("LTX") else "Wan"
    size = table.get("size")
    if size is not None and (
        not isinstance(size, list) or len(size) != 2 or not all(isinstance(v, int) for v in size)
    ):
        raise RegistryError(f"{where}: `size` must be [width, height].")
    call = table.get("call", {})
    if not isinstance(call, dict):
        raise RegistryError(f"{where}: `call` must be a table of keyword arguments.")
    entry = PipelineEntry(
        name=name,
        cls=cls,
        path=path,
        fps=_int(table, "fps", 24, where),
        multiple=_int(table, "multiple", MULTIPLE[family], where),
        max_area=_int(table, "max_area", 1280 * 704, where),
        size=(size[0], size[1]) if size else None,
        frames_per_latent=_int(table, "frames_per_latent", FRAMES_PER_LATENT[family], where),
        max_frames=_int(table, "max_frames", 121, where),
        context_frames=_int(table, "context_frames", 9, where),
        steps=_int(table, "steps", 50, where),
        guidance_scale=_guidance(table, where),
        last_frame=bool(table.get("last_frame", True)),
        dtype=str(table.get("dtype", "bfloat16")),
        vae_dtype=str(table.get("vae_dtype", "float32")),
        call=dict(call),
        lora=_loras(table, where),
        scheduler=str(table.get("scheduler", "")),
        shift=_number(table, "shift", where),
        cache=_cache(table, where),
        fp8=bool(_optional_bool(table, "fp8", where)),
        attention_backend=(
            None if table.get("attention_backend") is None else str(table["attention_backend"])
        ),
        compile=_optional_bool(table, "compile", where),
    )
    if entry.max_frames <= entry.context_frames:
        raise RegistryError(f"{where}: `max_frames` must be larger than `context_frames`.")
    return entry


def _aux(name: str, table: Any) -> AuxEntry | None:
    if table is None:
        return None
    if not isinstance(table, dict) or not table.get("class") or not table.get("path"):
        raise RegistryError(f"[{name}]: needs `class` and `path`.")
    return AuxEntry(
        cls=str(table["class"]),
        path=str(table["path"]),
        steps=_int(table, "steps", 50, f"[{name}]"),
        call=dict(table.get("call", {})),
    )


def _model(model_id: str, table: dict[str, Any], pipelines: dict[str, PipelineEntry]) -> ModelEntry:
    where = f'[models."{model_id}"]'
    modes: dict[str, str] = {}
    for mode in MODES:
        name = table.get(mode)
        if name is None:
            continue
        if name not in pipelines:
            raise RegistryError(f"{where}: `{mode}` names an unknown pipeline {name!r}.")
        if mode not in pipelines[name].modes():
            raise RegistryError(
                f"{where}: pipeline {name!r} ({pipelines[name].cls}) cannot serve `{mode}`."
            )
        modes[mode] = name
    if not modes:
        raise RegistryError(f"{where}: configure at least one of {', '.join(MODES)}.")
    audio = str(table.get("audio", "never"))
    if audio not in ("never", "optional", "always"):
        raise RegistryError(f"{where}: `audio` must be never, optional or always.")
    return ModelEntry(
        id=model_id,
        modes=modes,
        display_name=str(table.get("display_name", model_id)),
        description=str(table.get("description", "")),
        audio=audio,
    )


def parse_registry(data: dict[str, Any], source: str = "") -> Registry:
    """A `Registry` from the parsed TOML, or `RegistryError` naming the bad entry."""
    raw_pipelines = data.get("pipelines", {})
    raw_models = data.get("models", {})
    if not isinstance(raw_pipelines, dict) or not isinstance(raw_models, dict):
        raise RegistryError("`pipelines` and `models` must be tables.")
    pipelines = {name: _pipeline(name, t) for name, t in raw_pipelines.items()}
    models = {mid: _model(mid, t, pipelines) for mid, t in raw_models.items()}
    if not models:
        raise RegistryError('The registry configures no model ([models."..."]).')
    return Registry(
        pipelines=pipelines,
        models=models,
        audio=_aux("audio", data.get("audio")),
        upscaler=_aux("upscaler", data.get("upscaler")),
        source=source,
    )


def load_registry(path: Path) -> Registry:
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise RegistryError(f"Cannot read the diffusers registry {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"The diffusers registry {path} is not valid TOML: {exc}") from exc
    return parse_registry(data, str(path))
