"""Which engines this process runs, by the name the catalog rows use."""

from __future__ import annotations

from cinegen.engines.base import Engine
from cinegen.engines.preview.engine import PreviewEngine
from cinegen.settings import Settings


def build_engines(settings: Settings) -> dict[str, Engine]:
    del settings  # the GPU engines will read their model registry from it
    return {"preview": PreviewEngine()}
