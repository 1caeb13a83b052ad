"""Keyword arguments for one pipeline call, per class, from what conditions the chunk.

One `Conditioning` describes a chunk whatever the mode: a first frame, a last frame,
reference images, or context frames to continue from (an extension, or the next chunk of a
long video). Each class expresses it its own way (spec §1): Wan I2V takes `image` /
`last_image`; VACE a `video` with a `mask` (white = generate, black = keep) and
`reference_images` (a masked edit gives its own video and per-frame masks); LTX condition items placed at frame indices.
LTX-2 returns a soundtrack with the frames (`out.audio`, at its vocoder's rate): `model_audio`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from cinegen.engines.diffusers.config import PipelineEntry

GREY = 127
# Classes that continue from one start frame (`image=`).
IMAGE_CLASSES = ("WanImageToVideoPipeline", "LTXImageToVideoPipeline", "LTX2ImageToVideoPipeline")


@dataclass
class Conditioning:
    first: np.ndarray | None = None  # at the generation size
    last: np.ndarray | None = None
    references: tuple[np.ndarray, ...] = ()  # native size
    context: list[np.ndarray] = field(default_factory=list)  # frames to continue from
    # A masked edit (VACE only): every frame of the chunk and its hole (True = generate).
    video: list[np.ndarray] = field(default_factory=list)
    masks: list[np.ndarray] = field(default_factory=list)

    def anchor(self) -> np.ndarray | None:
        """The frame a single-image class starts from: the context's last, or the first."""
        return self.context[-1] if self.context else self.first


def context_count(entry: PipelineEntry) -> int:
    """How many frames a continuation of this class can see."""
    if entry.cls in IMAGE_CLASSES:
        return 1
    if entry.cls in (
        "LTXConditionPipeline",
        "LTX2ConditionPipeline",
    ):  # video conditions are trimmed to 8k+1
        return max(1, (entry.context_frames - 1) // 8 * 8 + 1)
    return entry.context_frames


def _pil(frame: np.ndarray) -> Image.Image:
    return Image.fromarray(np.ascontiguousarray(frame))


def _vace(cond: Conditioning, width: int, height: int, num_frames: int) -> dict[str, Any]:
    """A VACE video + mask: kept frames black in the mask, generated frames white (an
    edit's masks, pixel by pixel)."""
    if cond.masks:
        return {
            "video": [_pil(f) for f in cond.video],
            "mask": [
                Image.fromarray(np.where(m, 255, 0).astype(np.uint8), "L") for m in cond.masks
            ],
        }
    grey = np.full((height, width, 3), GREY, np.uint8)
    video = [grey] * num_frames
    keep = [False] * num_frames
    for index, frame in enumerate(cond.context or ([cond.first] if cond.first is not None else [])):
        video[index], keep[index] = frame, True
    if cond.last is not None:
        video[-1], keep[-1] = cond.last, True
    kwargs: dict[str, Any] = {}
    if any(keep):
        black = Image.new("L", (width, height), 0)
        white = Image.new("L", (width, height), 255)
        kwargs["video"] = [_pil(f) for f in video]
        kwargs["mask"] = [black if k else white for k in keep]
    if cond.references:
        kwargs["reference_images"] = [_pil(r) for r in cond.references]
    return kwargs


def _ltx_conditions(cond: Conditioning, num_frames: int) -> dict[str, Any]:
    from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

    items = []
    if cond.context:
        items.append(LTXVideoCondition(video=[_pil(f) for f in cond.context], frame_index=0))
    elif cond.first is not None:
        items.append(LTXVideoCondition(image=_pil(cond.first), frame_index=0))
    if cond.last is not None:
        items.append(LTXVideoCondition(image=_pil(cond.last), frame_index=num_frames - 1))
    return {"conditions": items} if items else {}


def _ltx2_conditions(cond: Conditioning, num_frames: int) -> dict[str, Any]:
    """LTX-2's condition items: `frames` at an `index` (its own dataclass, not LTX-Video's)."""
    from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition

    items = []
    if cond.context:
        items.append(LTX2VideoCondition(frames=[_pil(f) for f in cond.context], index=0))
    elif cond.first is not None:
        items.append(LTX2VideoCondition(frames=_pil(cond.first), index=0))
    if cond.last is not None:
        items.append(LTX2VideoCondition(frames=_pil(cond.last), index=num_frames - 1))
    return {"conditions": items} if items else {}


def mode_kwargs(
    entry: PipelineEntry, cond: Conditioning, width: int, height: int, num_frames: int
) -> dict[str, Any]:
    """The class-specific arguments for this chunk's conditioning."""
    anchor = cond.anchor()
    if entry.cls == "WanVACEPipeline":
        return _vace(cond, width, height, num_frames)
    if entry.cls == "LTXConditionPipeline":
        return _ltx_conditions(cond, num_frames)
    if entry.cls == "LTX2ConditionPipeline":
        return _ltx2_conditions(cond, num_frames)
    if entry.cls in IMAGE_CLASSES:
        if anchor is None:
            raise ValueError(f"{entry.cls} needs a start frame")
        kwargs: dict[str, Any] = {"image": _pil(anchor)}
        if cond.last is not None and entry.cls == "WanImageToVideoPipeline":
            kwargs["last_image"] = _pil(cond.last)
        return kwargs
    return {}


def call_kwargs(
    entry: PipelineEntry,
    cond: Conditioning,
    *,
    prompt: str,
    negative_prompt: str,
    width: int,
    height: int,
    num_frames: int,
    generator: Any,
    callback: Any,
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "prompt": prompt,
        "negative_prompt": negative_prompt or None,
        "height": height,
        "width": width,
        "num_frames": num_frames,
        "num_inference_steps": entry.steps,
        "guidance_scale": entry.guidance_scale,
        "generator": generator,
        "output_type": "np",
        "callback_on_step_end": callback,
    }
    if entry.family == "LTX":
        kwargs["frame_rate"] = entry.fps  # it scales the RoPE time axis (pitfall 9)
    kwargs.update(mode_kwargs(entry, cond, width, height, num_frames))
    kwargs.update(entry.call)
    return kwargs


def seeded(pipe: Any, seed: int) -> dict[str, Any]:
    """`generator=` seeded with the sample's seed, for an auxiliary pipeline whose call takes
    one (an upscaler, a text-to-audio model); nothing for one that does not. Without it the
    pipeline draws its noise from torch's global generator: the same seed would not give the
    same output, and a request's samples would not each follow their own seed."""
    import torch

    if "generator" not in inspect.signature(pipe.__call__).parameters:
        return {}
    return {"generator": torch.Generator("cpu").manual_seed(seed)}


def model_audio(pipe: Any, out: Any) -> tuple[np.ndarray, int] | None:
    """The waveform a native-audio pipeline (LTX-2) returned with the frames, as float32
    (channels, samples), and its sample rate (the vocoder's output rate); None if it has none."""
    audio = getattr(out, "audio", None)
    if audio is None:
        return None
    if hasattr(audio, "detach"):
        audio = audio.detach().float().cpu().numpy()
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 3:  # (batch, channels, samples): one video per call
        audio = audio[0]
    config = getattr(getattr(pipe, "vocoder", None), "config", None)
    rate = getattr(config, "output_sampling_rate", None) or getattr(pipe, "audio_sampling_rate", 0)
    return audio, int(rate or 24_000)
