"""Tiny random Wan parts (transformer + VAE) written like a Wan2.x diffusers folder.

The folder layout is the one ``models/wan_loader.py`` reads for production weights
(``<dir>/transformer``, ``<dir>/vae``), so tests and the demo exercise the same loading path.
The text encoder is left out: training reads precomputed (or zero) text states of width
``TEXT_DIM``; a UMT5 encoder is only needed to embed new captions with real weights.
"""

from __future__ import annotations

from pathlib import Path

import torch

TEXT_DIM = 32
TRANSFORMER = {
    "patch_size": (1, 2, 2),
    "num_attention_heads": 2,
    "attention_head_dim": 12,  # RoPE split t/h/w = 4/4/4
    "in_channels": 4,
    "out_channels": 4,
    "text_dim": TEXT_DIM,
    "freq_dim": 32,
    "ffn_dim": 48,
    "num_layers": 4,
    "cross_attn_norm": True,
    "qk_norm": "rms_norm_across_heads",
    "rope_max_seq_len": 64,
}
VAE = {
    "base_dim": 8,
    "z_dim": 4,
    "dim_mult": [1, 1, 1, 1],  # 8x spatial
    "num_res_blocks": 1,
    "temperal_downsample": [False, True, True],  # 4x temporal: 1 + 4k frames -> 1 + k latents
    "latents_mean": [0.0] * 4,
    "latents_std": [1.0] * 4,
}


def build(out_dir: Path, seed: int = 0) -> None:
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    torch.manual_seed(seed)
    WanTransformer3DModel(**TRANSFORMER).save_pretrained(Path(out_dir) / "transformer")
    AutoencoderKLWan(**VAE).save_pretrained(Path(out_dir) / "vae")
