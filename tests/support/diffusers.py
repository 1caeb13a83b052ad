"""The tiny diffusers checkpoints' model registry, and the server settings that load it.

The checkpoints themselves are built by tests/engines/diffusers/tiny.py (fixture `tiny_dirs`
in tests/engines/conftest.py); this module only writes TOML and environment variables, so it
imports no torch.
"""

from __future__ import annotations

from pathlib import Path

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


def server_env(registry: Path) -> dict[str, str]:
    return {
        "CINEGEN_DIFFUSERS_REGISTRY": str(registry),
        "CINEGEN_DIFFUSERS_MAX_LOADED": "3",
        "CINEGEN_WORKERS": "1",
    }


# What keeps a tiny LTX-2 call fast on a CPU: 16 prompt tokens (not 1024), and no STG or
# modality-isolation passes (one transformer pass per guidance half).
LTX2_CALL = (
    "{max_sequence_length = 16, stg_scale = 0.0, modality_scale = 1.0, "
    "audio_stg_scale = 0.0, audio_modality_scale = 1.0}"
)


def ltx2_registry_toml(dirs: dict[str, Path], max_frames: int = 121) -> str:
    """A registry whose `veo-3.1-fast-generate-preview` is tiny LTX-2 (video + audio in one
    call): text by LTX2Pipeline, image by LTX2ImageToVideoPipeline, extension by
    LTX2ConditionPipeline (dirs from tiny.save_ltx2)."""
    pipelines = {"ltx2": "ltx2-t2v", "ltx2-i2v": "ltx2-i2v", "ltx2-cond": "ltx2-condition"}
    classes = {
        "ltx2": "LTX2Pipeline",
        "ltx2-i2v": "LTX2ImageToVideoPipeline",
        "ltx2-cond": "LTX2ConditionPipeline",
    }
    text = ""
    for name, folder in pipelines.items():
        text += f"""
[pipelines.{name}]
class = "{classes[name]}"
path = "{dirs[folder]}"
fps = 24
max_area = {SMALL}
max_frames = {max_frames}
steps = 2
guidance_scale = 3.0
call = {LTX2_CALL}
"""
    return (
        text
        + """
[models."veo-3.1-fast-generate-preview"]
text = "ltx2"
image = "ltx2-i2v"
extension = "ltx2-cond"
"""
    )
