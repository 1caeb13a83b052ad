"""The GPU engine: open-weight video models through diffusers (Wan 2.x, LTX-Video).

`build_engine(settings)` reads the model registry (config.py), puts the catalog rows it
configures in the runtime's catalog (Veo ids re-routed to this engine, native ids added) and returns the
engine. Nothing heavy is imported until the first job: the server starts as fast as before.
"""

from __future__ import annotations

from dataclasses import replace

from cinegen.core.catalog import RESOLUTIONS, Catalog, ModelInfo, served_by
from cinegen.engines.diffusers.config import ModelEntry, Registry, RegistryError, load_registry
from cinegen.engines.diffusers.devices import DevicePool, parse_devices
from cinegen.engines.diffusers.loading import LoadOptions, set_offline
from cinegen.settings import Settings

__all__ = ["RegistryError", "build_engine", "register_models"]

ENGINE = "diffusers"
_NOTE = (
    " Served by cinegen's diffusers engine with the open-weight checkpoints its model registry "
    "names ({modes})."
)


def _native_row(entry: ModelEntry) -> ModelInfo:
    modes = ", ".join(entry.modes)
    return ModelInfo(
        id=entry.id,
        display_name=entry.display_name or entry.id,
        description=(
            entry.description
            or f"{entry.display_name}: {modes}; 4/6/8 s; 720p native, 1080p and 4k upscaled."
        )
        + _NOTE.format(modes=modes),
        family="open",
        audio=entry.audio,
        durations=(4, 6, 8),
        default_duration=8,
        resolutions=RESOLUTIONS,
        max_references_asset=3 if "references" in entry.modes else 0,
        extension="extension" in entry.modes,
        engine=ENGINE,
        mask_edit="edit" in entry.modes,
    )


def register_models(registry: Registry, catalog: Catalog) -> None:
    """Route configured Veo ids to this engine; add native ids with their own rows."""
    for entry in registry.models.values():
        row = catalog.get(entry.id)
        if row is None:
            catalog.add(_native_row(entry))
        else:
            note = _NOTE.format(modes=", ".join(entry.modes))
            catalog.add(served_by(row, ENGINE, note, mask_edit="edit" in entry.modes))


def build_engine(settings: Settings, catalog: Catalog):  # noqa: ANN201 - DiffusersEngine
    """The engine for `settings.diffusers_registry`, its rows put in `catalog` (a
    `DevicePool` when CINEGEN_DIFFUSERS_DEVICE names several devices); RegistryError if the
    file or the device list is unusable. (torch is imported lazily, hence no return annotation.)"""
    assert settings.diffusers_registry is not None
    registry = load_registry(settings.diffusers_registry)
    set_offline(settings.diffusers_allow_network)
    from cinegen.engines.diffusers.engine import DiffusersEngine

    opts = LoadOptions(
        device=settings.diffusers_device,
        offload=settings.diffusers_offload,
        vae_tiling=settings.diffusers_vae_tiling,
        allow_network=settings.diffusers_allow_network,
        max_loaded=settings.diffusers_max_loaded,
        attention_backend=settings.diffusers_attention_backend,
        compile=settings.diffusers_compile,
    )
    register_models(registry, catalog)
    devices = parse_devices(settings.diffusers_device)
    if len(devices) == 1:
        return DiffusersEngine(registry, replace(opts, device=devices[0]))
    return DevicePool([DiffusersEngine(registry, replace(opts, device=d)) for d in devices])
