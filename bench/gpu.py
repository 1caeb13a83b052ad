"""GPU benchmark: Wan 2.2 TI2V-5B and LTX-Video 2B at full size (random weights), 8 s 720p.

Latency does not depend on the weights' values, so the full-size architectures are built from
their configs directly on the device (no download) and timed:

- text encoder (UMT5-XXL / T5-XXL encoder, random weights, real size);
- transformer: per denoising step (CUDA events, no host sync inside the loop);
- VAE decode, and H.264/AAC encode to MP4 with cinegen's encoder;
- end to end, for cinegen's path and for the stock diffusers call in the same run (ratio);
- model FLOP utilisation: the transformer's FLOPs per forward (counted with
  torch.utils.flop_counter on the real shapes) × forwards / transformer time / peak.

cinegen's path: bf16 weights, fused attention (SDPA, or `--attn-backend flash`),
torch.compile of the repeated blocks (`--compile`), VAE tiling (`--vae-tiling`), prompt
embeddings computed once outside the loop, latents decoded on the device and converted to
uint8 there, with the MP4 encode overlapped with the device-to-host copies, and Wan's two
guidance forwards per step batched into one (the engine's `paired_guidance`; diffusers' Wan
runs them one after the other, LTX batches its own). The attention and compile settings are
the engine's own (`engines/diffusers/loading.speed_up`). Stock: the pipeline's own
`__call__` with default settings (bf16 weights, output_type "np", then diffusers'
export_to_video).

`--toy` shrinks every model (a few layers, tiny widths) so the script runs on a CPU in
seconds: that checks the script, not the GPU. The numbers of a toy run mean nothing.

Engine profiles (issue 29; `--model all`, the default): each a registry recipe run end to end
through cinegen's DiffusersEngine (denoise + decode + MP4 encode), warm (one untimed run
first), against the stock diffusers call of the same pipeline with 50 steps in the same run:
wan-5b-stock (50 steps, CFG), wan-5b-4step (4 steps, no CFG), wan-5b-4step-fp8 (+ torchao
FP8), wan-5b-4step-cache (+ first-block cache), ltx-distilled (LTX-Video 2B, 8 steps, no CFG),
ltx2-audio (LTX-2 19B with its native audio, 8 steps, no CFG). Each prints its seconds, the
stock/cinegen ratio and MFU; a profile that cannot run here (FP8 without torchao or a GPU of
compute capability 8.9+) or that fails is reported as skipped with the reason. Random
weights give noise, but the time is the same as with real weights.

    python bench/gpu.py --model all --out results.json                 # on the H100
    python bench/gpu.py --model all --tiny --out tmp.json              # CPU check, seconds
    python bench/gpu.py --model components --toy --device cpu --steps 2   # stage breakdown
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import gc
import json
import math
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cinegen.engines.diffusers.guidance import paired_guidance  # noqa: E402

# Full-size configs (shared/spec/model-configs, from diffusers' conversion scripts).
WAN_TI2V_5B: dict[str, Any] = {
    "transformer": {
        "patch_size": [1, 2, 2],
        "attention_head_dim": 128,
        "cross_attn_norm": True,
        "eps": 1e-06,
        "freq_dim": 256,
        "qk_norm": "rms_norm_across_heads",
        "text_dim": 4096,
        "rope_max_seq_len": 1024,
        "num_attention_heads": 24,
        "num_layers": 30,
        "ffn_dim": 14336,
        "in_channels": 48,
        "out_channels": 48,
    },
    "vae": {
        "base_dim": 160,
        "decoder_base_dim": 256,
        "z_dim": 48,
        "dim_mult": [1, 2, 4, 4],
        "num_res_blocks": 2,
        "attn_scales": [],
        "temperal_downsample": [False, True, True],
        "is_residual": True,
        "in_channels": 12,
        "out_channels": 12,
        "patch_size": 2,
        "scale_factor_temporal": 4,
        "scale_factor_spatial": 16,
        "latents_mean": [0.0] * 48,  # values do not change latency
        "latents_std": [1.0] * 48,
    },
    "text_encoder": {
        "vocab_size": 256384,
        "d_model": 4096,
        "d_kv": 64,
        "d_ff": 10240,
        "num_layers": 24,
        "num_heads": 64,
        "feed_forward_proj": "gated-gelu",
        "scalable_attention": True,
    },
    "scheduler": {"flow_shift": 5.0},
    "fps": 24,
    "multiple": 32,
    "frames_per_latent": 4,
    "max_sequence_length": 512,
    "default_steps": 50,
    "default_cfg": True,
}
LTX_2B: dict[str, Any] = {
    "transformer": {
        "in_channels": 128,
        "out_channels": 128,
        "patch_size": 1,
        "patch_size_t": 1,
        "num_attention_heads": 32,
        "attention_head_dim": 64,
        "cross_attention_dim": 2048,
        "num_layers": 28,
        "activation_fn": "gelu-approximate",
        "qk_norm": "rms_norm_across_heads",
        "norm_elementwise_affine": False,
        "norm_eps": 1e-06,
        "caption_channels": 4096,
        "attention_bias": True,
        "attention_out_bias": True,
    },
    "vae": {
        "latent_channels": 128,
        "block_out_channels": [128, 256, 512, 1024, 2048],
        "down_block_types": ["LTXVideo095DownBlock3D"] * 4,
        "decoder_block_out_channels": [256, 512, 1024],
        "layers_per_block": [4, 6, 6, 2, 2],
        "decoder_layers_per_block": [5, 5, 5, 5],
        "spatio_temporal_scaling": [True, True, True, True],
        "decoder_spatio_temporal_scaling": [True, True, True],
        "decoder_inject_noise": [False, False, False, False],
        "downsample_type": ["spatial", "temporal", "spatiotemporal", "spatiotemporal"],
        "upsample_residual": [True, True, True],
        "upsample_factor": [2, 2, 2],
        "timestep_conditioning": True,
        "patch_size": 4,
        "patch_size_t": 1,
        "resnet_norm_eps": 1e-06,
        "scaling_factor": 1.0,
        "encoder_causal": True,
        "decoder_causal": False,
        "spatial_compression_ratio": 32,
        "temporal_compression_ratio": 8,
    },
    "text_encoder": {
        "vocab_size": 32128,
        "d_model": 4096,
        "d_kv": 64,
        "d_ff": 10240,
        "num_layers": 24,
        "num_heads": 64,
        "feed_forward_proj": "gated-gelu",
    },
    "scheduler": {},
    "fps": 24,
    "multiple": 32,
    "frames_per_latent": 8,
    "max_sequence_length": 128,
    "default_steps": 8,  # the distilled recipe: 8 steps, no CFG
    "default_cfg": False,
}
MODELS = {"wan2.2-ti2v-5b": WAN_TI2V_5B, "ltx-video-2b": LTX_2B}


def toy(config: dict[str, Any]) -> dict[str, Any]:
    """The same architecture, a few layers and tiny widths: for a CPU check of the script."""
    cfg = copy.deepcopy(config)
    t, v, e = cfg["transformer"], cfg["vae"], cfg["text_encoder"]
    e.update(d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4, vocab_size=256)
    if "ffn_dim" in t:  # Wan
        t.update(num_attention_heads=2, attention_head_dim=16, num_layers=2, ffn_dim=64)
        t.update(text_dim=32, freq_dim=32)
        v.update(base_dim=8, decoder_base_dim=8, num_res_blocks=1)
    else:  # LTX
        t.update(num_attention_heads=2, attention_head_dim=16, num_layers=2)
        t.update(cross_attention_dim=32, caption_channels=32)
        v.update(
            latent_channels=128,
            block_out_channels=[8, 16, 32, 64, 128],  # the real ratios, 16x narrower
            decoder_block_out_channels=[16, 32, 64],
            layers_per_block=[1, 1, 1, 1, 1],
            decoder_layers_per_block=[1, 1, 1, 1],
        )
    return cfg


# ------------------------------------------------------------------------------ building


def tokenizer():  # noqa: ANN201 - a T5 tokenizer built in code (token ids < 256)
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz0123456789.,"]
    vocab += [(f"▁{c}", -6.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    return T5Tokenizer(vocab=vocab, extra_ids=0, unk_id=2, pad_token="<pad>", eos_token="</s>")


def build(name: str, cfg: dict[str, Any], device: str, dtype: Any) -> Any:
    """The pipeline with random full-size weights, created on `device` (no CPU staging)."""
    import torch
    from transformers import T5Config, T5EncoderModel, UMT5Config, UMT5EncoderModel

    wan = name.startswith("wan")
    torch.manual_seed(0)
    with torch.device(device):
        if wan:
            from diffusers import (
                AutoencoderKLWan,
                UniPCMultistepScheduler,
                WanPipeline,
                WanTransformer3DModel,
            )

            text = UMT5EncoderModel(UMT5Config(**cfg["text_encoder"])).eval()
            transformer = WanTransformer3DModel.from_config(cfg["transformer"])
            vae = AutoencoderKLWan.from_config(cfg["vae"])
            scheduler = UniPCMultistepScheduler(
                prediction_type="flow_prediction", use_flow_sigmas=True, **cfg["scheduler"]
            )
            pipe = WanPipeline(
                tokenizer=tokenizer(),
                text_encoder=text,
                vae=vae,
                scheduler=scheduler,
                transformer=transformer,
                expand_timesteps=True,
            )
        else:
            from diffusers import (
                AutoencoderKLLTXVideo,
                FlowMatchEulerDiscreteScheduler,
                LTXPipeline,
                LTXVideoTransformer3DModel,
            )

            text = T5EncoderModel(T5Config(**cfg["text_encoder"])).eval()
            pipe = LTXPipeline(
                scheduler=FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=False),
                vae=AutoencoderKLLTXVideo.from_config(cfg["vae"]),
                text_encoder=text,
                tokenizer=tokenizer(),
                transformer=LTXVideoTransformer3DModel.from_config(cfg["transformer"]),
            )
    pipe.text_encoder.to(dtype)
    pipe.transformer.to(dtype)
    pipe.vae.to(dtype if not wan else torch.float32)  # Wan's VAE runs in fp32 upstream
    pipe.transformer.eval()
    pipe.vae.eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


# ------------------------------------------------------------------------------ timing


class Clock:
    """Wall time with a device sync at both ends (CUDA is asynchronous)."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")

    def sync(self) -> None:
        if self.cuda:
            import torch

            torch.cuda.synchronize()

    @contextlib.contextmanager
    def time(self, into: dict[str, float], key: str) -> Iterator[None]:
        self.sync()
        start = time.perf_counter()
        yield
        self.sync()
        into[key] = time.perf_counter() - start


class StepTimer:
    """Per-step times from CUDA events recorded in `callback_on_step_end` (no host sync)."""

    def __init__(self, device: str) -> None:
        self.cuda = device.startswith("cuda")
        self.marks: list[Any] = []

    def start(self) -> None:
        self.marks = [self._mark()]

    def _mark(self) -> Any:
        if self.cuda:
            import torch

            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def callback(self, _pipe: Any, _step: int, _t: Any, _kwargs: dict) -> dict:
        self.marks.append(self._mark())
        return {}

    def seconds(self) -> list[float]:
        if self.cuda:
            import torch

            torch.cuda.synchronize()
            pairs = zip(self.marks[:-1], self.marks[1:], strict=True)
            return [a.elapsed_time(b) / 1000.0 for a, b in pairs]
        return [b - a for a, b in zip(self.marks[:-1], self.marks[1:], strict=True)]


def transformer_flops(
    pipe: Any, latents_shape: tuple[int, ...], text_len: int, dtype: Any
) -> float:
    """FLOPs of one transformer forward at these shapes (dense attention counted)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    t = pipe.transformer
    device = next(t.parameters()).device
    # Counting on the real module runs one real forward; cheap next to the benchmark itself.
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        x = torch.randn(latents_shape, device=device, dtype=dtype)
        if "ffn_dim" in t.config:  # Wan
            text = torch.randn(1, text_len, t.config.text_dim, device=device, dtype=dtype)
            step = torch.full((1,), 500.0, device=device)
            t(hidden_states=x, timestep=step, encoder_hidden_states=text, return_dict=False)
        else:  # LTX: latents are packed tokens (B, N, C) with the grid passed alongside
            _, c, f, h, w = latents_shape
            tokens = x.flatten(2).transpose(1, 2)
            text = torch.randn(1, text_len, t.config.caption_channels, device=device, dtype=dtype)
            mask = torch.ones(1, text_len, device=device, dtype=torch.long)
            step = torch.full((1,), 500.0, device=device)
            t(
                hidden_states=tokens,
                encoder_hidden_states=text,
                timestep=step,
                encoder_attention_mask=mask,
                num_frames=f,
                height=h,
                width=w,
                return_dict=False,
            )
    return float(counter.get_total_flops())


def latent_shape(name: str, cfg: dict[str, Any], frames: int, height: int, width: int) -> tuple:
    if name.startswith("wan"):
        lf = (frames - 1) // 4 + 1
        return (1, cfg["transformer"]["in_channels"], lf, height // 16, width // 16)
    lf = (frames - 1) // 8 + 1
    return (1, cfg["transformer"]["in_channels"], lf, height // 32, width // 32)


# ------------------------------------------------------------------------------ the paths


def encode_frames(frames: Iterator[np.ndarray], n: int, width: int, height: int, path: str) -> None:
    """cinegen's MP4 writer (H.264 + AAC track of silence-free noise is not needed here)."""
    from cinegen.media.clip import Clip
    from cinegen.media.encode import encode_clip

    encode_clip(Clip(frames=frames, num_frames=n, width=width, height=height, fps=24), path)


def decode_stream(pipe: Any, latents: Any, chunk: int) -> Iterator[np.ndarray]:
    """VAE-decode the whole latent video, then hand frames over `chunk` at a time as uint8.

    The producer thread keeps decoding / converting while the encoder consumes (overlap).
    """
    import torch

    out: queue.Queue = queue.Queue(maxsize=4)

    def work() -> None:
        try:
            with torch.inference_mode():
                vae = pipe.vae
                lat = latents.to(vae.dtype)
                if hasattr(vae.config, "latents_mean") and vae.config.latents_mean is not None:
                    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
                    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)
                    lat = lat * std.to(lat) + mean.to(lat)
                args = (lat,)
                if getattr(vae.config, "timestep_conditioning", False):  # LTX 0.9.1+
                    args = (lat, torch.zeros(lat.shape[0], device=lat.device, dtype=lat.dtype))
                video = vae.decode(*args, return_dict=False)[0]  # (1, 3, F, H, W) in [-1, 1]
                video = ((video.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
                frames = video[0].permute(1, 2, 3, 0)  # F, H, W, 3 on the device
                for start in range(0, frames.shape[0], chunk):
                    out.put(frames[start : start + chunk].cpu().numpy())
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            out.put(exc)
        out.put(None)

    threading.Thread(target=work, daemon=True).start()
    while (item := out.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield from item


def run_cinegen(pipe: Any, args: argparse.Namespace, cfg: dict, device: str) -> dict[str, Any]:
    import torch

    times: dict[str, Any] = {}
    clock = Clock(device)
    steps = StepTimer(device)
    gen = torch.Generator("cpu").manual_seed(0)
    cfg_on = args.cfg if args.cfg is not None else cfg["default_cfg"]
    guidance = 5.0 if cfg_on else 1.0
    with clock.time(times, "end_to_end_s"):
        with clock.time(times, "text_encoder_s"):
            encoded = pipe.encode_prompt(
                prompt="a drone shot over the sea at sunset",
                negative_prompt="blurry" if cfg_on else None,
                do_classifier_free_guidance=cfg_on,
                max_sequence_length=cfg["max_sequence_length"],
                device=device,
            )
        extra: dict[str, Any] = {}
        if args.model_name.startswith("wan"):
            embeds, negative = encoded
        else:  # LTX: (embeds, mask, negative embeds, negative mask)
            embeds, mask, negative, negative_mask = encoded
            extra = {"frame_rate": 24, "prompt_attention_mask": mask}
            if cfg_on:
                extra["negative_prompt_attention_mask"] = negative_mask
        steps.start()
        paired = (
            paired_guidance(pipe, negative)
            if cfg_on and args.model_name.startswith("wan")
            else contextlib.nullcontext()
        )
        with clock.time(times, "denoise_s"), paired:
            latents = pipe(
                prompt_embeds=embeds,
                negative_prompt_embeds=negative if cfg_on else None,
                height=args.height,
                width=args.width,
                num_frames=args.frames,
                num_inference_steps=args.steps,
                guidance_scale=guidance,
                generator=gen,
                output_type="latent",
                callback_on_step_end=steps.callback,
                **extra,
            ).frames
        if not args.model_name.startswith("wan"):  # LTX returns packed tokens
            latents = pipe._unpack_latents(
                latents,
                (args.frames - 1) // 8 + 1,
                args.height // 32,
                args.width // 32,
                pipe.transformer_spatial_patch_size,
                pipe.transformer_temporal_patch_size,
            )
            latents = pipe._denormalize_latents(
                latents, pipe.vae.latents_mean, pipe.vae.latents_std, pipe.vae.config.scaling_factor
            )
        with tempfile.TemporaryDirectory() as tmp, clock.time(times, "decode_and_encode_s"):
            path = os.path.join(tmp, "out.mp4")
            frames = decode_stream(pipe, latents, chunk=8)
            encode_frames(frames, args.frames, args.width, args.height, path)
            times["mp4_bytes"] = os.path.getsize(path)
    per_step = steps.seconds()
    times["step_s"] = per_step
    times["step_median_s"] = float(np.median(per_step)) if per_step else None
    times["guidance"] = guidance
    return times


def run_stock(pipe: Any, args: argparse.Namespace, cfg: dict, device: str) -> dict[str, Any]:
    """The pipeline's own call, default settings, then diffusers' video export."""
    import torch
    from diffusers.utils import export_to_video

    times: dict[str, Any] = {}
    clock = Clock(device)
    cfg_on = args.cfg if args.cfg is not None else cfg["default_cfg"]
    kwargs: dict[str, Any] = {}
    if not args.model_name.startswith("wan"):
        kwargs["frame_rate"] = 24
    with clock.time(times, "end_to_end_s"):
        with clock.time(times, "pipeline_call_s"):
            video = pipe(
                prompt="a drone shot over the sea at sunset",
                negative_prompt="blurry" if cfg_on else None,
                height=args.height,
                width=args.width,
                num_frames=args.frames,
                num_inference_steps=args.steps,
                guidance_scale=5.0 if cfg_on else 1.0,
                generator=torch.Generator("cpu").manual_seed(0),
                **kwargs,
            ).frames[0]
        with tempfile.TemporaryDirectory() as tmp, clock.time(times, "export_s"):
            export_to_video(video, os.path.join(tmp, "stock.mp4"), fps=24)
    return times


def optimise(pipe: Any, args: argparse.Namespace) -> list[str]:
    """cinegen's settings: the engine's attention / compile settings, VAE tiling."""
    from cinegen.engines.diffusers.loading import LoadOptions, speed_up

    opts = LoadOptions(attention_backend=args.attn_backend or "", compile=args.compile)
    applied = speed_up(pipe, opts) or ["attention: torch SDPA (fused)"]
    if args.vae_tiling and hasattr(pipe.vae, "enable_tiling"):
        pipe.vae.enable_tiling()
        applied.append("VAE tiling")
    applied.append("decode overlapped with MP4 encode (producer thread)")
    if args.model_name.startswith("wan"):
        applied.append("guidance pair batched in one forward")
    return applied


def bench_model(name: str, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    device = args.device
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    cfg = toy(MODELS[name]) if args.toy else MODELS[name]
    args.model_name = name
    if args.steps is None:
        args.steps = cfg["default_steps"]
    result: dict[str, Any] = {"model": name, "toy": args.toy, "device": device}
    result["shape"] = {"width": args.width, "height": args.height, "frames": args.frames}
    t0 = time.perf_counter()
    pipe = build(name, cfg, device, dtype)
    result["build_s"] = time.perf_counter() - t0
    result["params"] = {
        k: sum(p.numel() for p in getattr(pipe, k).parameters())
        for k in ("transformer", "vae", "text_encoder")
    }
    shape = latent_shape(name, cfg, args.frames, args.height, args.width)
    text_len = cfg["max_sequence_length"]
    flops = transformer_flops(pipe, shape, text_len, dtype)
    result["transformer_tflop_per_forward"] = flops / 1e12
    if not args.skip_stock:
        run_stock(pipe, args, cfg, device)  # warm-up (kernels, allocator)
        result["stock"] = run_stock(pipe, args, cfg, device)
    result["cinegen_settings"] = optimise(pipe, args)
    run_cinegen(pipe, args, cfg, device)  # warm-up (and compilation, when on)
    fast = run_cinegen(pipe, args, cfg, device)
    result["cinegen"] = fast
    forwards = 2 if fast["guidance"] > 1.0 else 1
    if fast["step_median_s"]:
        achieved = flops * forwards / fast["step_median_s"]
        result["transformer_tflops_achieved"] = achieved / 1e12
        result["mfu"] = achieved / (args.peak_tflops * 1e12)
    if "stock" in result:
        result["speedup_vs_stock"] = result["stock"]["end_to_end_s"] / fast["end_to_end_s"]
    if device.startswith("cuda"):
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
    del pipe
    return result


# ------------------------------------------------------------------------------ engine profiles
# Issue 29's table: each profile is a registry entry run end to end through cinegen's
# DiffusersEngine (denoise + decode + MP4 encode), warm, against the stock diffusers call of
# the same pipeline with 50 steps in the same run.

NOISE_NOTE = (
    "random weights: the videos are noise, but the time is the same as with real weights "
    "(latency does not depend on the weights' values)"
)
STOCK_STEPS = 50


@dataclasses.dataclass(frozen=True)
class Profile:
    """A registry recipe on one base model (`MODELS` key, or "ltx-2")."""

    base: str
    cls: str
    steps: int
    guidance_scale: float
    fp8: bool = False
    cache: dict[str, Any] = dataclasses.field(default_factory=dict)
    audio: bool = False


PROFILES: dict[str, Profile] = {
    "wan-5b-stock": Profile("wan2.2-ti2v-5b", "WanPipeline", 50, 5.0),
    "wan-5b-4step": Profile("wan2.2-ti2v-5b", "WanPipeline", 4, 1.0),
    "wan-5b-4step-fp8": Profile("wan2.2-ti2v-5b", "WanPipeline", 4, 1.0, fp8=True),
    "wan-5b-4step-cache": Profile(
        "wan2.2-ti2v-5b", "WanPipeline", 4, 1.0, cache={"kind": "first_block", "threshold": 0.05}
    ),
    "ltx-distilled": Profile("ltx-video-2b", "LTXPipeline", 8, 1.0),
    "ltx2-audio": Profile("ltx-2", "LTX2Pipeline", 8, 1.0, audio=True),
}


def build_ltx2(tiny: bool, device: str, dtype: Any) -> Any:
    """LTX-2 with random weights: diffusers' default configs are LTX-2's full size (48-layer
    19B audio-video transformer, its video and audio VAEs, vocoder). The text encoder is a
    T5-XXL-sized encoder instead of Gemma 3 12B (the pipeline reads only its stacked hidden
    states; text encoding is a small share of the time). `tiny`: a few thousand parameters."""
    import diffusers
    import torch
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder
    from transformers import T5Config, T5EncoderModel

    text_cfg = dict(LTX_2B["text_encoder"])
    if tiny:
        text_cfg.update(d_model=32, d_kv=8, d_ff=64, num_layers=1, num_heads=4, vocab_size=256)
    torch.manual_seed(0)
    with torch.device(device):
        text = T5EncoderModel(T5Config(**text_cfg)).eval()
        width, layers = text_cfg["d_model"], text_cfg["num_layers"]
        t_kw: dict[str, Any] = {"caption_channels": width}
        c_kw: dict[str, Any] = {"caption_channels": width, "text_proj_in_factor": layers + 1}
        if tiny:  # the sizes of tests/engines/diffusers/tiny.py's LTX-2
            t_kw.update(in_channels=4, out_channels=4, num_attention_heads=2, attention_head_dim=8)
            t_kw.update(cross_attention_dim=16, audio_in_channels=4, audio_out_channels=4)
            t_kw.update(audio_num_attention_heads=2, audio_attention_head_dim=4)
            t_kw.update(audio_cross_attention_dim=8, num_layers=1, rope_type="split")
            for side in ("video", "audio"):
                c_kw[f"{side}_connector_num_attention_heads"] = 4
                c_kw[f"{side}_connector_attention_head_dim"] = 8
                c_kw[f"{side}_connector_num_layers"] = 1
                c_kw[f"{side}_connector_num_learnable_registers"] = None
            c_kw.update(connector_rope_base_seq_len=32, rope_type="split")
            v_kw: dict[str, Any] = {
                "latent_channels": 4,
                "block_out_channels": (8,) * 3,
                "decoder_block_out_channels": (8,) * 3,
                "layers_per_block": (1,) * 4,
                "decoder_layers_per_block": (1,) * 4,
                "spatio_temporal_scaling": (True,) * 3,
                "decoder_spatio_temporal_scaling": (True,) * 3,
                "decoder_inject_noise": (False,) * 4,
                "downsample_type": ("spatiotemporal",) * 3,
                "upsample_residual": (False,) * 3,
                "upsample_factor": (1,) * 3,
                "patch_size": 1,
                "decoder_causal": False,
            }
            a_kw: dict[str, Any] = {
                "base_channels": 4,
                "ch_mult": (1,),
                "num_res_blocks": 1,
                "resolution": 32,
                "latent_channels": 2,
                "mel_bins": 8,
            }
            voc_kw: dict[str, Any] = {
                "in_channels": 16,
                "hidden_channels": 32,
                "upsample_kernel_sizes": [4, 4],
                "upsample_factors": [2, 2],
                "resnet_kernel_sizes": [3],
                "resnet_dilations": [[1, 3, 5]],
                "output_sampling_rate": 400,
            }
        else:
            v_kw, a_kw, voc_kw = {}, {}, {}
        pipe: Any = diffusers.LTX2Pipeline(
            scheduler=diffusers.FlowMatchEulerDiscreteScheduler(),
            vae=diffusers.AutoencoderKLLTX2Video(**v_kw),
            audio_vae=diffusers.AutoencoderKLLTX2Audio(**a_kw),
            text_encoder=text,
            tokenizer=tokenizer(),
            connectors=LTX2TextConnectors(**c_kw),
            transformer=diffusers.LTX2VideoTransformer3DModel(**t_kw),
            vocoder=LTX2Vocoder(**voc_kw),
        )
    for name in ("text_encoder", "transformer", "connectors", "vae", "audio_vae", "vocoder"):
        getattr(pipe, name).to(dtype).eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def build_base(base: str, tiny: bool, device: str, dtype: Any) -> Any:
    if base == "ltx-2":
        return build_ltx2(tiny, device, dtype)
    return build(base, toy(MODELS[base]) if tiny else MODELS[base], device, dtype)


class FlopProbe:
    """Transformer FLOPs per sample, counted (torch.utils.flop_counter, dense attention) on
    the first forward it sees, and the samples every later forward runs (batch size: Wan's
    paired guidance runs two per forward)."""

    def __init__(self, model: Any) -> None:
        self.per_sample: float | None = None
        self.samples = 0
        self._counter: Any = None
        self._batch = 1
        self._hooks = [
            model.register_forward_pre_hook(self._before, with_kwargs=True),
            model.register_forward_hook(self._after),
        ]

    def _before(self, _module: Any, args: tuple, kwargs: dict) -> None:
        from torch.utils.flop_counter import FlopCounterMode

        states = kwargs.get("hidden_states", args[0] if args else None)
        self._batch = int(states.shape[0]) if states is not None else 1
        self.samples += self._batch
        if self.per_sample is None and self._counter is None:
            self._counter = FlopCounterMode(display=False)
            self._counter.__enter__()

    def _after(self, _module: Any, _args: tuple, _out: Any) -> None:
        if self._counter is not None:
            self._counter.__exit__(None, None, None)
            self.per_sample = self._counter.get_total_flops() / self._batch
            self._counter = None

    def remove(self) -> None:
        for hook in self._hooks:
            hook.remove()


def engine_for(profile: Profile, name: str, pipe: Any, args: argparse.Namespace) -> Any:
    """cinegen's DiffusersEngine with one registry entry, its base `pipe` already loaded
    (random weights have no checkpoint directory): the loader's speed settings applied here."""
    from cinegen.engines.diffusers.config import ModelEntry, PipelineEntry, Registry
    from cinegen.engines.diffusers.engine import DiffusersEngine
    from cinegen.engines.diffusers.loading import LoadOptions, speed_up

    family_multiple = 32
    entry = PipelineEntry(
        name=name,
        cls=profile.cls,
        path=f"random-weights:{profile.base}",
        multiple=family_multiple,
        max_area=args.width * args.height,
        size=(args.width, args.height),
        frames_per_latent=8 if profile.cls.startswith("LTX") else 4,
        max_frames=args.frames,
        steps=profile.steps,
        guidance_scale=profile.guidance_scale,
        cache=dict(profile.cache),
        fp8=profile.fp8,
        attention_backend=args.attn_backend,
        compile=args.compile or None,
    )
    audio = "always" if profile.audio else "never"
    model = ModelEntry(id=name, modes={"text": name}, audio=audio, native=profile.audio)
    registry = Registry(pipelines={name: entry}, models={name: model}, source="bench/gpu.py")
    opts = LoadOptions(device=args.device, vae_tiling=args.vae_tiling)
    engine = DiffusersEngine(registry, opts)  # refuses FP8 where it cannot run
    entry_opts = opts.for_entry(entry)
    speed_up(pipe, entry_opts)
    if args.vae_tiling and hasattr(pipe.vae, "enable_tiling"):
        pipe.vae.enable_tiling()
    engine.cache.put(entry, pipe)
    return engine


def run_engine(engine: Any, name: str, profile: Profile, args: argparse.Namespace) -> dict:
    """One request through the engine and cinegen's MP4 encoder, timed end to end."""
    from cinegen.engines.base import Mode, RenderSpec
    from cinegen.media.encode import encode_clip

    spec = RenderSpec(
        mode=Mode.TEXT,
        prompt="a drone shot over the sea at sunset",
        negative_prompt="blurry",
        width=args.width,
        height=args.height,
        fps=24,
        num_frames=args.frames,
        seed=0,
        audio=profile.audio,
        model=name,
    )
    times: dict[str, Any] = {}
    clock = Clock(args.device)
    with tempfile.TemporaryDirectory() as tmp, clock.time(times, "end_to_end_s"):
        clip = engine.render(spec, lambda _fraction: None)
        path = os.path.join(tmp, "out.mp4")
        encode_clip(clip, path)
        times["mp4_bytes"] = os.path.getsize(path)
    times["audio"] = clip.audio is not None
    return times


def stock_call(pipe: Any, base: str, args: argparse.Namespace, steps: int) -> dict[str, Any]:
    """The pipeline's own `__call__` at its default guidance, then diffusers' export."""
    import torch
    from diffusers.utils import export_to_video

    kwargs: dict[str, Any] = {} if base.startswith("wan") else {"frame_rate": 24}
    times: dict[str, Any] = {}
    clock = Clock(args.device)
    with torch.inference_mode(), clock.time(times, "end_to_end_s"):
        video = pipe(
            prompt="a drone shot over the sea at sunset",
            negative_prompt="blurry",
            height=args.height,
            width=args.width,
            num_frames=args.frames,
            num_inference_steps=steps,
            generator=torch.Generator("cpu").manual_seed(0),
            **kwargs,
        ).frames[0]
        with tempfile.TemporaryDirectory() as tmp:
            export_to_video(video, os.path.join(tmp, "stock.mp4"), fps=24)
    return times


def skip_reason(profile: Profile, device: str) -> str:
    if profile.fp8:
        from cinegen.engines.diffusers.loading import fp8_unavailable

        return fp8_unavailable(device)
    return ""


def bench_profile(name: str, args: argparse.Namespace, stock: dict[str, dict]) -> dict:
    """Warm-up then timed engine run; the base's stock time (measured once per base)."""
    import torch

    profile = PROFILES[name]
    result: dict[str, Any] = {"profile": name, "base": profile.base, "device": args.device}
    result.update(steps=profile.steps, guidance_scale=profile.guidance_scale)
    result.update(fp8=profile.fp8, cache=profile.cache, audio=profile.audio, tiny=args.tiny)
    reason = skip_reason(profile, args.device)
    if reason:
        result["skipped"] = reason
        return result
    dtype = torch.bfloat16 if args.device.startswith("cuda") else torch.float32
    pipe = build_base(profile.base, args.tiny, args.device, dtype)
    probe = FlopProbe(pipe.transformer)
    stock_steps = min(STOCK_STEPS, args.max_steps or STOCK_STEPS)
    # The probe counts FLOPs on the stock call's first forward: before FP8, caches and
    # paired guidance change the module (a one-step call when the stock run is skipped).
    if profile.base not in stock and not args.skip_stock:
        stock_call(pipe, profile.base, args, stock_steps)  # warm-up
        timed = stock_call(pipe, profile.base, args, stock_steps)
        stock[profile.base] = {"steps": stock_steps, **timed}
    if probe.per_sample is None:
        stock_call(pipe, profile.base, args, 1)
    engine = engine_for(profile, name, pipe, args)
    if args.max_steps:
        entry = engine.registry.pipelines[name]
        capped = dataclasses.replace(entry, steps=min(entry.steps, args.max_steps))
        engine.registry.pipelines[name] = capped
        result["steps"] = capped.steps
    run_engine(engine, name, profile, args)  # warm-up (and compilation, when on)
    probe.samples = 0
    fast = run_engine(engine, name, profile, args)
    probe.remove()
    result["cinegen"] = fast
    result["seconds"] = fast["end_to_end_s"]
    if profile.base in stock:
        result["stock"] = stock[profile.base]
        result["ratio_to_stock"] = stock[profile.base]["end_to_end_s"] / fast["end_to_end_s"]
    if probe.per_sample:
        model_flops = probe.per_sample * probe.samples
        result["transformer_tflop"] = model_flops / 1e12
        result["mfu"] = model_flops / fast["end_to_end_s"] / (args.peak_tflops * 1e12)
    if args.device.startswith("cuda"):
        result["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        torch.cuda.reset_peak_memory_stats()
    del engine, pipe
    gc.collect()
    if args.device.startswith("cuda"):
        torch.cuda.empty_cache()
    return result


def bench_profiles(names: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Every profile in `names`; one that fails or cannot run here is reported, not fatal."""
    import torch

    stock: dict[str, dict] = {}
    report: dict[str, Any] = {
        "note": NOISE_NOTE,
        "shape": {"width": args.width, "height": args.height, "frames": args.frames, "fps": 24},
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "peak_tflops": args.peak_tflops,
        "mfu_definition": (
            "transformer FLOPs (every forward at full cost, dense attention) / end-to-end "
            "seconds / peak bf16 dense; a step cache skips some of that work"
        ),
        "stock": f"the pipeline's own __call__, {STOCK_STEPS} steps, default guidance, "
        "then diffusers' export_to_video",
        "profiles": {},
    }
    for name in names:
        try:
            result = bench_profile(name, args, stock)
        except Exception as exc:  # noqa: BLE001 - one profile's failure is a figure too
            result = {"profile": name, "skipped": f"failed: {type(exc).__name__}: {exc}"}
        report["profiles"][name] = result
        print(summary_line(result), flush=True)
    return report


def summary_line(result: dict[str, Any]) -> str:
    name = result["profile"]
    if "skipped" in result:
        return f"{name:20s} skipped: {result['skipped']}"
    line = f"{name:20s} {result['seconds']:9.2f} s"
    if result.get("ratio_to_stock"):
        line += f"  stock/cinegen {result['ratio_to_stock']:.2f}x"
    if result.get("mfu") is not None:
        line += f"  MFU {result['mfu']:.1%}"
    return line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    choices = ["all", *PROFILES, "components", *MODELS]
    p.add_argument(
        "--model",
        choices=choices,
        default="all",
        help="all: every engine profile; components: the per-stage breakdown of each model",
    )
    p.add_argument("--device", default=None, help="cuda (default when present) or cpu")
    p.add_argument("--width", type=int, default=None, help="1280 (--tiny: 64)")
    p.add_argument("--height", type=int, default=None, help="704: 720p at a multiple of 32")
    p.add_argument("--frames", type=int, default=None, help="8 s at 24 fps: 193 (--tiny: 17)")
    p.add_argument("--steps", type=int, default=None, help="Wan 50, LTX 8 (distilled) by default")
    cfg = p.add_mutually_exclusive_group()
    cfg.add_argument("--cfg", dest="cfg", action="store_true", default=None)
    cfg.add_argument("--no-cfg", dest="cfg", action="store_false")
    p.add_argument("--compile", action="store_true", help="torch.compile the repeated blocks")
    p.add_argument("--attn-backend", default=None, help="e.g. flash, _native_cudnn, sage")
    p.add_argument("--vae-tiling", action="store_true")
    p.add_argument("--skip-stock", action="store_true", help="do not time the stock call")
    p.add_argument("--peak-tflops", type=float, default=790.0, help="bf16 dense peak (spec §4)")
    p.add_argument("--toy", action="store_true", help="tiny widths and depths: a CPU smoke run")
    p.add_argument(
        "--tiny",
        action="store_true",
        help="profiles with tiny models on the CPU, at most 2 steps: checks the command",
    )
    p.add_argument("--max-steps", type=int, default=None, help="cap every profile's steps")
    p.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = p.parse_args(argv)
    small = args.toy or args.tiny
    args.toy = small
    if args.tiny and args.max_steps is None:
        args.max_steps = 2
    args.width = args.width or (64 if small else 1280)
    args.height = args.height or (64 if small else 704)
    args.frames = args.frames or (17 if small else 193)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.device is None:
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cpu" and not args.toy:
        print("note: full-size models on a CPU take minutes per step; use --tiny", file=sys.stderr)
    if args.model == "all" or args.model in PROFILES:
        print(f"note: {NOISE_NOTE}", flush=True)
        names = list(PROFILES) if args.model == "all" else [args.model]
        report = bench_profiles(names, args)
        if args.out:
            args.out.write_text(json.dumps(report, indent=1, default=float))
        return 0
    names = list(MODELS) if args.model == "components" else [args.model]
    steps = args.steps
    results = []
    for name in names:
        args.steps = steps
        result = bench_model(name, args)
        results.append(result)
        print(json.dumps(result, indent=1, default=float))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, default=float))
    return 0 if all(math.isfinite(r["cinegen"]["end_to_end_s"]) for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
