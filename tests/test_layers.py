"""The layout's one rule (shared/DESIGN.md): a module imports only from the layers below it.

Layers, top first: cli, app, web, api, jobs, service, engines, store, media, core, settings.
Besides, the two engines do not import each other: what both need lives in engines/ itself.
Every import counts, deferred ones inside functions and TYPE_CHECKING ones included.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cinegen"
LAYERS = ["cli", "app", "web", "api", "jobs", "service", "engines", "store", "media", "core"]
LAYERS.append("settings")
ENGINES = ("cinegen.engines.preview", "cinegen.engines.diffusers")


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def imported(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module


def name_of(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "cinegen" and len(parts) > 1 else None


@pytest.mark.parametrize("path", modules(), ids=lambda p: name_of(p))
def test_imports_point_down(path: Path) -> None:
    me = name_of(path)
    mine = layer_of(me)
    if mine not in LAYERS:
        return  # cinegen/__init__.py
    upward = [
        f"line {line}: {me} imports {module}"
        for line, module in imported(path)
        if (other := layer_of(module)) in LAYERS and LAYERS.index(other) < LAYERS.index(mine)
    ]
    assert not upward


@pytest.mark.parametrize("path", modules(), ids=lambda p: name_of(p))
def test_engines_do_not_import_each_other(path: Path) -> None:
    me = name_of(path)
    own = next((engine for engine in ENGINES if me.startswith(engine)), None)
    others = [engine for engine in ENGINES if engine != own]
    crossing = [
        f"line {line}: {me} imports {module}"
        for line, module in imported(path)
        if own is not None and any(module.startswith(engine) for engine in others)
    ]
    assert not crossing
