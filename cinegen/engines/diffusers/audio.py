"""The soundtrack of a diffusers clip: the model's own (LTX-2 makes it with the frames), else
a configured text-to-audio pipeline, else the procedural soundtrack the preview engine makes too (engines/soundtrack.py). Never a silent
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

SPLICE_SECONDS = 0.05  # cross-fade where one chunk's (or the input's) audio meets the next
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


def native_note(cls: str) -> str:
    return f"from the model ({cls}): generated with the video in the same call"


def splice(head: np.ndarray, tail: np.ndarray, at_head: int, at_tail: int) -> np.ndarray:
    """`head` up to sample `at_head`, then `tail` from its sample `at_tail` (the same instant),
    cross-faded over the SPLICE_SECONDS before it where both have sound there."""
    if at_head > len(head):  # a gap before the tail's sound: silence
        head = np.concatenate([head, np.zeros((at_head - len(head), 2), np.float32)])
    at_head = max(0, at_head)
    at_tail = max(0, min(at_tail, len(tail)))
    fade = min(int(SPLICE_SECONDS * AUDIO_RATE), at_head, at_tail)
    parts = [head[: at_head - fade]]
    if fade:
        ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)[:, None]
        old, new = head[at_head - fade : at_head], tail[at_tail - fade : at_tail]
        parts.append(old * (1 - ramp) + new * ramp)
    parts.append(tail[at_tail:])
    return np.concatenate(parts).astype(np.float32)


def stitch(start: np.ndarray, pieces: list[tuple[np.ndarray, float, float]]) -> np.ndarray:
    """One track from the model's audio of each chunk: `(audio, offset, cut)` holds a chunk's
    48 kHz stereo waveform, the output time (s) its first sample plays at, and the time its
    new frames begin; each piece replaces what came before from `cut` on. `start` is what
    plays before the first cut (an extension's input audio; empty otherwise)."""
    track = np.asarray(start, np.float32).reshape(-1, 2)
    for audio, offset, cut in pieces:
        at = int(round(cut * AUDIO_RATE))
        track = splice(track, audio, at, int(round((cut - offset) * AUDIO_RATE)))
    return track
