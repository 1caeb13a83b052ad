"""The soundtrack of a diffusers clip: a configured text-to-audio pipeline, else the
procedural soundtrack the preview engine makes too (engines/soundtrack.py). Never a silent
track presented as audio: a model whose output is (near) silent is replaced by the
procedural track, and the notes say which was used.
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from cinegen.engines.base import RenderSpec
from cinegen.engines.diffusers.calls import seeded
from cinegen.engines.prompt import parse_prompt
from cinegen.engines.soundtrack import for_spec
from cinegen.media.clip import AUDIO_RATE

PROCEDURAL = "procedural soundtrack from the preview engine (no audio model configured)"
SILENCE_PEAK = 1e-4


def procedural(spec: RenderSpec) -> np.ndarray:
    """The procedural soundtrack for this prompt and seed (continued for an extension)."""
    return for_spec(spec, parse_prompt(spec.prompt or "", spec.negative_prompt or ""))


def _rate_of(pipe: Any) -> int:
    for owner, attr in ((getattr(pipe, "vae", None), "sampling_rate"), (pipe, "sampling_rate")):
        rate = getattr(owner, attr, None) or getattr(getattr(owner, "config", None), attr, None)
        if rate:
            return int(rate)
    vocoder = getattr(pipe, "vocoder", None)
    return int(getattr(getattr(vocoder, "config", None), "sampling_rate", 16_000))


def to_stereo_48k(audio: np.ndarray, rate: int) -> np.ndarray:
    """Any (channels, samples) / (samples,) array as float32 (samples, 2) at 48 kHz."""
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 1:
        audio = audio[None, :]
    if audio.shape[0] > audio.shape[-1]:  # (samples, channels)
        audio = audio.T
    audio = audio[:2] if audio.shape[0] >= 2 else np.repeat(audio[:1], 2, axis=0)
    n_out = int(round(audio.shape[1] * AUDIO_RATE / rate))
    src = np.arange(audio.shape[1]) / rate
    dst = np.arange(n_out) / AUDIO_RATE
    out = np.stack([np.interp(dst, src, ch) for ch in audio], axis=1)
    return np.clip(out, -1.0, 1.0).astype(np.float32)


def from_pipeline(pipe: Any, spec: RenderSpec, seconds: float, steps: int, extra: dict) -> Any:
    """Run a text-to-audio pipeline for `seconds` of sound cued by the prompt."""
    params = inspect.signature(pipe.__call__).parameters
    kwargs: dict[str, Any] = {"prompt": spec.prompt, "num_inference_steps": steps}
    for name in ("audio_end_in_s", "audio_length_in_s", "duration"):
        if name in params:
            kwargs[name] = seconds
            break
    if "negative_prompt" in params and spec.negative_prompt:
        kwargs["negative_prompt"] = spec.negative_prompt
    kwargs.update(seeded(pipe, spec.seed))
    kwargs.update(extra)
    out = pipe(**kwargs)
    audio = out.audios if hasattr(out, "audios") else out[0]
    audio = audio[0] if getattr(audio, "ndim", 0) == 3 or isinstance(audio, list) else audio
    if hasattr(audio, "detach"):
        audio = audio.detach().float().cpu().numpy()
    return to_stereo_48k(audio, _rate_of(pipe))


def is_silent(track: np.ndarray) -> bool:
    return track.size == 0 or float(np.abs(track).max()) < SILENCE_PEAK
