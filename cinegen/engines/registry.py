"""Which engines this process runs, by the name the catalog rows use."""

from __future__ import annotations

from cinegen.core.catalog import Catalog
from cinegen.engines.base import Engine
from cinegen.engines.preview.engine import PreviewEngine
from cinegen.media.memory import keep_freed_memory
from cinegen.settings import Settings


def build_engines(settings: Settings, catalog: Catalog) -> dict[str, Engine]:
    """The preview engine always; the diffusers engine when a model registry is configured
    (it adds its models to `catalog`)."""
    keep_freed_memory()  # a process that builds engines renders: the allocator, set up once
    engines: dict[str, Engine] = {"preview": PreviewEngine()}
    if settings.diffusers_registry is not None:
        from cinegen.engines.diffusers import build_engine

        engines["diffusers"] = build_engine(settings, catalog)
    return engines


def worker_threads(settings: Settings, engines: dict[str, Engine]) -> int:
    """CINEGEN_WORKERS, raised to one thread per device when the diffusers engine runs on
    several (a `DevicePool`), so every GPU can render at once. 0 stays 0: an API-only node."""
    if settings.workers <= 0:
        return 0
    devices = max((len(getattr(engine, "devices", ())) for engine in engines.values()), default=0)
    return max(settings.workers, devices)
