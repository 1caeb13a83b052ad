"""Render specs and renders with the preview engine, at a small size (engine tests)."""

from __future__ import annotations

from dataclasses import replace

from cinegen.core.request import Mode
from cinegen.engines.base import InputVideo, RenderSpec
from cinegen.engines.preview.engine import PreviewEngine
from cinegen.media.decode import probe_video
from cinegen.media.encode import encode_clip

W, H = 160, 90
ENGINE = PreviewEngine()


def spec_for(mode: Mode = Mode.TEXT, **changes) -> RenderSpec:
    base = RenderSpec(
        mode=mode,
        prompt="a mountain lake at sunset, slow pan right",
        negative_prompt="",
        width=W,
        height=H,
        fps=24,
        num_frames=24,
        seed=7,
        audio=False,
    )
    return replace(base, **changes)


def render_to(path, spec: RenderSpec, progress=lambda _: None) -> str:
    clip = ENGINE.render(spec, progress)
    encode_clip(clip, str(path))
    return str(path)


def input_video(
    tmp_path,
    seconds: float = 1.0,
    audio: bool = True,
    prompt: str | None = None,
    size: tuple[int, int] = (W, H),
    seed: int = 3,
) -> InputVideo:
    """An MP4 this engine made (as extension inputs are), decoded facts included."""
    spec = spec_for(num_frames=int(24 * seconds), audio=audio, seed=seed)
    changes = {"prompt": prompt or spec.prompt, "width": size[0], "height": size[1]}
    path = render_to(tmp_path / "input.mp4", replace(spec, **changes))
    info = probe_video(path)
    return InputVideo(path, info.width, info.height, info.num_frames, info.fps, info.has_audio)
