"""Tiny random-weight checkpoints on disk and a model registry naming them.

The checkpoints are built from config in code and written with `save_pretrained`, so every
test loads them through the engine's real loading path (local directory, offline).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

# CI installs the `gpu` extra: a missing torch/diffusers must fail these tests, not skip them.
import diffusers  # noqa: F401
import pytest
import torch  # noqa: F401

from tests.conftest import ServerProcess
from tests.engines.diffusers.tiny import save_all

SMALL = 64 * 32  # generated pixels per frame: 64×32 (16:9) or 32×64 (9:16)
HUGE = 1 << 24  # a frame size no machine can hold: the out-of-memory path, for real


def registry_toml(dirs: dict[str, Path], **over: object) -> str:
    steps = over.get("steps", 2)
    return f"""
[pipelines.wan-t2v]
class = "WanPipeline"
path = "{dirs["wan-t2v"]}"
fps = 8
max_area = {SMALL}
max_frames = 33
steps = {steps}
guidance_scale = 3.0

[pipelines.wan-i2v]
class = "WanImageToVideoPipeline"
path = "{dirs["wan-i2v"]}"
fps = 8
max_area = {SMALL}
max_frames = 65
steps = 2
guidance_scale = 3.0

[pipelines.wan-vace]
class = "WanVACEPipeline"
path = "{dirs["wan-vace"]}"
fps = 8
max_area = {SMALL}
max_frames = 65
context_frames = 4
steps = 2
guidance_scale = 3.0

[pipelines.ltx]
class = "LTXConditionPipeline"
path = "{dirs["ltx"]}"
fps = 24
max_area = {SMALL}
max_frames = 49
context_frames = 9
steps = 2
guidance_scale = 3.0

[pipelines.wan-huge]
class = "WanPipeline"
path = "{dirs["wan-t2v"]}"
size = [{HUGE}, {HUGE}]
steps = 2

[models."veo-3.1-generate-preview"]
text = "wan-t2v"
image = "wan-i2v"
interpolation = "wan-i2v"
references = "wan-vace"
extension = "wan-vace"

[models."veo-3.1-fast-generate-preview"]
text = "ltx"
image = "ltx"
interpolation = "ltx"
extension = "ltx"

[models."tiny-wan"]
display_name = "Tiny Wan (random weights, tests only)"
text = "wan-t2v"
image = "wan-i2v"

[models."tiny-oom"]
display_name = "A pipeline configured far beyond any memory (tests only)"
text = "wan-huge"
"""


@pytest.fixture(scope="session")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return save_all(tmp_path_factory.mktemp("tiny-checkpoints"))


@pytest.fixture(scope="session")
def registry_file(tiny_dirs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("registry") / "registry.toml"
    path.write_text(registry_toml(tiny_dirs))
    return path


def server_env(registry: Path) -> dict[str, str]:
    return {
        "CINEGEN_DIFFUSERS_REGISTRY": str(registry),
        "CINEGEN_DIFFUSERS_MAX_LOADED": "3",
        "CINEGEN_WORKERS": "1",
    }


@pytest.fixture(scope="module")
def gpu_server(
    registry_file: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server with the diffusers engine for the module: its pipelines stay warm."""
    proc = ServerProcess(
        tmp_path_factory.mktemp("diffusers-server"), env_extra=server_env(registry_file)
    )
    proc.start(timeout=60)
    yield proc
    proc.stop()
