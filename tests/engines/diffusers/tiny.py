"""Tiny random-weight diffusers pipelines, built from config in code (nothing downloaded).

They keep the real architectures' compression (Wan: 8x spatial / 4x temporal, LTX: 32x / 8x)
with a few thousand parameters per component, so a whole pipeline call takes well under a
second on a CPU. Random weights: the output is noise-like video, never a trained model's.
"""

from __future__ import annotations

from pathlib import Path

import torch

_PIECES = [
    "the",
    "a",
    "of",
    "and",
    "in",
    "on",
    "with",
    "cat",
    "dog",
    "sea",
    "sky",
    "city",
    "night",
    "sun",
    "slow",
    "pan",
    "camera",
    "drone",
    "rain",
    "forest",
    "river",
    "light",
    "red",
    "blue",
    "green",
    "sound",
    "music",
    "wind",
]


def tiny_tokenizer():  # noqa: ANN201 - a transformers tokenizer
    """A T5 (Unigram) tokenizer with a vocabulary built in code: letters, a few words."""
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    vocab += [(f"▁{w}", -3.0) for w in _PIECES]
    vocab += [(c, -5.0) for c in "abcdefghijklmnopqrstuvwxyz0123456789.,!?'-:"]
    vocab += [(f"▁{c}", -6.0) for c in "abcdefghijklmnopqrstuvwxyz"]
    return T5Tokenizer(vocab=vocab, extra_ids=0, unk_id=2, pad_token="<pad>", eos_token="</s>")


def _text_encoder(vocab: int, family: str):  # noqa: ANN202
    """A two-layer T5-family encoder: "umt5" for Wan, "t5" for LTX-Video."""
    import transformers

    config_class, model_class = {
        "umt5": (transformers.UMT5Config, transformers.UMT5EncoderModel),
        "t5": (transformers.T5Config, transformers.T5EncoderModel),
    }[family]
    torch.manual_seed(0)
    cfg = config_class(
        vocab_size=vocab,
        d_model=32,
        d_kv=8,
        d_ff=64,
        num_layers=2,
        num_heads=4,
        feed_forward_proj="gated-gelu",
        pad_token_id=0,
        eos_token_id=1,
    )
    return model_class(cfg).eval()


def _wan_vae():  # noqa: ANN202
    from diffusers import AutoencoderKLWan

    torch.manual_seed(1)
    return AutoencoderKLWan(base_dim=8, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1).eval()


def _scheduler():  # noqa: ANN202
    from diffusers import UniPCMultistepScheduler

    return UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=3.0
    )


def _wan_transformer(in_channels: int, vace: bool = False):  # noqa: ANN202
    from diffusers import WanTransformer3DModel, WanVACETransformer3DModel

    torch.manual_seed(2)
    common = {
        "patch_size": (1, 2, 2),
        "num_attention_heads": 2,
        "attention_head_dim": 12,
        "in_channels": in_channels,
        "out_channels": 16,
        "text_dim": 32,
        "freq_dim": 32,
        "ffn_dim": 32,
        "num_layers": 2,
        "rope_max_seq_len": 32,
    }
    if vace:
        return WanVACETransformer3DModel(vace_layers=[0, 1], vace_in_channels=96, **common).eval()
    return WanTransformer3DModel(**common).eval()


def build_wan(kind: str):  # noqa: ANN201 - a diffusers pipeline
    """kind: "t2v" (WanPipeline), "i2v" (WanImageToVideoPipeline, Wan 2.2 style: first and
    last frame through the mask, no CLIP) or "vace" (WanVACEPipeline)."""
    from diffusers import WanImageToVideoPipeline, WanPipeline, WanVACEPipeline

    tok = tiny_tokenizer()
    parts = {
        "tokenizer": tok,
        "text_encoder": _text_encoder(len(tok), "umt5"),
        "vae": _wan_vae(),
        "scheduler": _scheduler(),
    }
    if kind == "t2v":
        return WanPipeline(transformer=_wan_transformer(16), **parts)
    if kind == "i2v":
        return WanImageToVideoPipeline(transformer=_wan_transformer(36), **parts)
    if kind == "vace":
        return WanVACEPipeline(transformer=_wan_transformer(16, vace=True), **parts)
    raise ValueError(kind)


def build_ltx():  # noqa: ANN201
    """LTXConditionPipeline: text, first frame, keyframes and video conditions in one."""
    from diffusers import (
        AutoencoderKLLTXVideo,
        FlowMatchEulerDiscreteScheduler,
        LTXConditionPipeline,
        LTXVideoTransformer3DModel,
    )

    tok = tiny_tokenizer()
    torch.manual_seed(3)
    vae = AutoencoderKLLTXVideo(
        latent_channels=8,
        block_out_channels=(8, 8, 8, 8),
        decoder_block_out_channels=(8, 8, 8, 8),
        layers_per_block=(1, 1, 1, 1, 1),
        decoder_layers_per_block=(1, 1, 1, 1, 1),
        spatio_temporal_scaling=(True, True, True, False),
        decoder_spatio_temporal_scaling=(True, True, True, False),
        decoder_inject_noise=(False, False, False, False, False),
        upsample_residual=(False, False, False, False),
        upsample_factor=(1, 1, 1, 1),
        timestep_conditioning=False,
        patch_size=4,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    ).eval()
    torch.manual_seed(4)
    transformer = LTXVideoTransformer3DModel(
        in_channels=8,
        out_channels=8,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=4,
        attention_head_dim=8,
        cross_attention_dim=32,
        num_layers=2,
        caption_channels=32,
    ).eval()
    return LTXConditionPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=False),
        vae=vae,
        text_encoder=_text_encoder(len(tok), "t5"),
        tokenizer=tok,
        transformer=transformer,
    )


def save_all(root: Path) -> dict[str, Path]:
    """Build every tiny pipeline and `save_pretrained` it under `root`; returns the dirs."""
    built = {
        "wan-t2v": build_wan("t2v"),
        "wan-i2v": build_wan("i2v"),
        "wan-vace": build_wan("vace"),
        "ltx": build_ltx(),
    }
    dirs = {}
    for name, pipe in built.items():
        target = root / name
        pipe.save_pretrained(target)
        dirs[name] = target
    return dirs


def build_ltx2(kind: str = "t2v"):  # noqa: ANN201 - a diffusers pipeline
    """LTX-2 (video and audio in one call): "t2v" (LTX2Pipeline), "i2v"
    (LTX2ImageToVideoPipeline) or "condition" (LTX2ConditionPipeline). The text encoder is the
    tiny T5 above (the pipeline reads only its stacked hidden states), the audio branch a
    16 kHz stereo audio VAE + vocoder of a few thousand parameters."""
    import diffusers
    from diffusers.pipelines.ltx2 import LTX2TextConnectors
    from diffusers.pipelines.ltx2.vocoder import LTX2Vocoder

    tok = tiny_tokenizer()
    text_encoder = _text_encoder(len(tok), "t5")
    width, layers = text_encoder.config.d_model, text_encoder.config.num_layers
    torch.manual_seed(0)
    transformer = diffusers.LTX2VideoTransformer3DModel(
        in_channels=4,
        out_channels=4,
        patch_size=1,
        patch_size_t=1,
        num_attention_heads=2,
        attention_head_dim=8,
        cross_attention_dim=16,
        audio_in_channels=4,
        audio_out_channels=4,
        audio_num_attention_heads=2,
        audio_attention_head_dim=4,
        audio_cross_attention_dim=8,
        num_layers=1,
        qk_norm="rms_norm_across_heads",
        caption_channels=width,
        rope_double_precision=False,
        rope_type="split",
    )
    connectors = LTX2TextConnectors(
        caption_channels=width,
        text_proj_in_factor=layers + 1,
        video_connector_num_attention_heads=4,
        video_connector_attention_head_dim=8,
        video_connector_num_layers=1,
        video_connector_num_learnable_registers=None,
        audio_connector_num_attention_heads=4,
        audio_connector_attention_head_dim=8,
        audio_connector_num_layers=1,
        audio_connector_num_learnable_registers=None,
        connector_rope_base_seq_len=32,
        rope_theta=10000.0,
        rope_double_precision=False,
        causal_temporal_positioning=False,
        rope_type="split",
    )
    blocks = 3  # 8x spatial and 8x temporal compression: few tokens, a fast CPU call
    vae = diffusers.AutoencoderKLLTX2Video(
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        block_out_channels=(8,) * blocks,
        decoder_block_out_channels=(8,) * blocks,
        layers_per_block=(1,) * (blocks + 1),
        decoder_layers_per_block=(1,) * (blocks + 1),
        spatio_temporal_scaling=(True,) * blocks,
        decoder_spatio_temporal_scaling=(True,) * blocks,
        decoder_inject_noise=(False,) * (blocks + 1),
        downsample_type=("spatiotemporal",) * blocks,
        upsample_residual=(False,) * blocks,
        upsample_factor=(1,) * blocks,
        timestep_conditioning=False,
        patch_size=1,
        patch_size_t=1,
        encoder_causal=True,
        decoder_causal=False,
    )
    audio_vae = diffusers.AutoencoderKLLTX2Audio(
        base_channels=4,
        output_channels=2,
        ch_mult=(1,),
        num_res_blocks=1,
        attn_resolutions=None,
        in_channels=2,
        resolution=32,
        latent_channels=2,
        norm_type="pixel",
        causality_axis="height",
        dropout=0.0,
        mid_block_add_attention=False,
        sample_rate=16000,
        mel_hop_length=160,
        is_causal=True,
        mel_bins=8,
    )
    vocoder = LTX2Vocoder(
        in_channels=2 * 8,
        hidden_channels=32,
        out_channels=2,
        upsample_kernel_sizes=[4, 4],
        upsample_factors=[2, 2],
        resnet_kernel_sizes=[3],
        resnet_dilations=[[1, 3, 5]],
        leaky_relu_negative_slope=0.1,
        output_sampling_rate=400,  # 100 mel frames/s (16 kHz, hop 160) upsampled 2 x 2
    )
    cls = {
        "t2v": diffusers.LTX2Pipeline,
        "i2v": diffusers.LTX2ImageToVideoPipeline,
        "condition": diffusers.LTX2ConditionPipeline,
    }[kind]
    return cls(
        scheduler=diffusers.FlowMatchEulerDiscreteScheduler(),
        vae=vae,
        audio_vae=audio_vae,
        text_encoder=text_encoder,
        tokenizer=tok,
        connectors=connectors,
        transformer=transformer,
        vocoder=vocoder,
    )


def save_ltx2(root: Path) -> dict[str, Path]:
    """The tiny LTX-2 pipelines, saved under `root` (a registry's `path`s); returns the dirs."""
    dirs = {}
    for kind in ("t2v", "i2v", "condition"):
        dirs[f"ltx2-{kind}"] = root / f"ltx2-{kind}"
        build_ltx2(kind).save_pretrained(dirs[f"ltx2-{kind}"])
    return dirs


def save_wan_lora(target: Path, seed: int = 5) -> Path:
    """A random, non-zero LoRA for the tiny Wan text-to-video transformer (its attention
    projections), saved the way diffusers' `save_lora_weights` writes one; returns the file."""
    from diffusers import WanPipeline
    from peft import LoraConfig, get_peft_model_state_dict

    transformer = _wan_transformer(16)
    torch.manual_seed(seed)
    config = LoraConfig(
        r=4,
        lora_alpha=4,
        target_modules=["to_q", "to_k", "to_v", "to_out.0"],
        init_lora_weights=False,  # random B too: the LoRA changes the output
    )
    transformer.add_adapter(config)
    layers = get_peft_model_state_dict(transformer)
    target.mkdir(parents=True, exist_ok=True)
    name = "tiny_lora.safetensors"
    WanPipeline.save_lora_weights(target, transformer_lora_layers=layers, weight_name=name)
    return target / name
