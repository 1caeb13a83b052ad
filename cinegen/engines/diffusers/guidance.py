"""Classifier-free guidance in one batched forward for Wan pipelines.

diffusers' Wan pipelines call the transformer twice per step: once with the prompt, then
once with the negative prompt, on the same latents and timestep. Two forwards of batch 1
leave a GPU half idle at the small shapes and pay every kernel launch twice. While
`paired_guidance` is active, the prompt call runs both halves as one batch of 2 and keeps the
negative half; the negative call that follows is answered from it. LTX pipelines batch their
guidance themselves, so they are left alone.

The pipeline is given prompt embeddings that cinegen encoded itself (`encode_prompts`), so
the negative embeddings are known before the first forward.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Transformer keyword arguments that carry a batch dimension besides `hidden_states`.
_BATCHED = ("encoder_hidden_states_image", "control_hidden_states")

WAN_MAX_SEQUENCE_LENGTH = 512
"""What Wan pipelines' `__call__` encodes prompts to (their `encode_prompt` defaults to 226)."""


def encode_prompts(pipe: Any, prompt: str, negative_prompt: str | None) -> tuple[Any, Any]:
    """(prompt embeddings, negative embeddings), exactly as the pipeline's call makes them."""
    return pipe.encode_prompt(
        prompt=prompt,
        negative_prompt=negative_prompt,
        do_classifier_free_guidance=True,
        max_sequence_length=WAN_MAX_SEQUENCE_LENGTH,
        device=pipe._execution_device,
    )


class _PairedForward:
    """A transformer's forward that computes the negative half along with the prompt half."""

    def __init__(self, forward: Any, negative: Any) -> None:
        self.forward = forward
        self.negative = negative
        self.pending: tuple[Any, Any, Any] | None = None  # (hidden_states, timestep, result)
        self.forwards = 0  # batched forwards run (for tests and logs)

    def __call__(self, hidden_states: Any, timestep: Any, encoder_hidden_states: Any, **kw: Any):  # noqa: ANN204
        import torch

        pending, self.pending = self.pending, None
        if pending is not None and pending[0] is hidden_states and pending[1] is timestep:
            return (pending[2],) if not kw.get("return_dict", True) else _output(pending[2])
        batch = hidden_states.shape[0]
        negative = self.negative.to(encoder_hidden_states)
        if negative.shape != encoder_hidden_states.shape:  # not a guidance pair: run as is
            return self.forward(hidden_states, timestep, encoder_hidden_states, **kw)
        pair = dict(kw, return_dict=False)
        for key in _BATCHED:
            if isinstance(pair.get(key), torch.Tensor) and pair[key].shape[0] == batch:
                pair[key] = torch.cat([pair[key]] * 2)
        doubled_t = timestep
        if isinstance(timestep, torch.Tensor) and timestep.ndim and timestep.shape[0] == batch:
            doubled_t = torch.cat([timestep] * 2)
        both = self.forward(
            torch.cat([hidden_states] * 2),
            doubled_t,
            torch.cat([encoder_hidden_states, negative]),
            **pair,
        )[0]
        self.forwards += 1
        positive, self.pending = both[:batch], (hidden_states, timestep, both[batch:])
        return (positive,) if not kw.get("return_dict", True) else _output(positive)


def _output(sample: Any) -> Any:
    from diffusers.models.modeling_outputs import Transformer2DModelOutput

    return Transformer2DModelOutput(sample=sample)


@contextmanager
def paired_guidance(pipe: Any, negative_embeds: Any) -> Iterator[list[_PairedForward]]:
    """Batch the guidance pair of every transformer of `pipe` (Wan 2.2 A14B has two)."""
    models = [m for m in (pipe.transformer, getattr(pipe, "transformer_2", None)) if m]
    # accelerate's offload hooks are themselves an instance `forward`: wrap them, then restore.
    saved = [vars(model).get("forward") for model in models]
    patched = []
    for model in models:
        paired = _PairedForward(model.forward, negative_embeds)
        model.forward = paired  # an instance attribute: nn.Module.__call__ finds it first
        patched.append(paired)
    try:
        yield patched
    finally:
        for model, previous in zip(models, saved, strict=True):
            if previous is None:
                del model.forward
            else:
                model.forward = previous
