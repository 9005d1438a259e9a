"""Tiny random Wan parts (transformer + VAE) written like a Wan2.x diffusers folder.

The folder layout is the one ``models/wan_loader.py`` reads for production weights
(``<dir>/transformer``, ``<dir>/vae``), so tests and the demo exercise the same loading path.
``experts=2`` writes Wan2.2-A14B's layout instead: a second random expert in ``<dir>/transformer_2``
and a ``model_index.json`` with the ``boundary_ratio`` where the pipeline switches to it.
The text encoder is left out: training reads precomputed (or zero) text states of width
``TEXT_DIM``; a UMT5 encoder is only needed to embed new captions with real weights.
"""

from __future__ import annotations

import json
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


def build(out_dir: Path, seed: int = 0, experts: int = 1, boundary_ratio: float = 0.875) -> None:
    """Write the folder; ``boundary_ratio`` (Wan2.2-T2V-A14B's 0.875 by default) only matters with two experts."""
    import diffusers
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    if experts not in (1, 2):
        raise ValueError(f"experts must be 1 (Wan2.1 layout) or 2 (Wan2.2-A14B layout), got {experts}")
    out = Path(out_dir)
    torch.manual_seed(seed)
    WanTransformer3DModel(**TRANSFORMER).save_pretrained(out / "transformer")
    AutoencoderKLWan(**VAE).save_pretrained(out / "vae")
    if experts == 1:
        return  # the single-expert folder stays as it always was (same files, same random weights)
    WanTransformer3DModel(**TRANSFORMER).save_pretrained(out / "transformer_2")  # different draws: distinct experts
    index = {
        "_class_name": "WanPipeline",
        "_diffusers_version": diffusers.__version__,
        "boundary_ratio": boundary_ratio,
        "transformer": ["diffusers", "WanTransformer3DModel"],
        "transformer_2": ["diffusers", "WanTransformer3DModel"],
        "vae": ["diffusers", "AutoencoderKLWan"],
    }
    (out / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
