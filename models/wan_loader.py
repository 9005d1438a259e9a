"""Load the Wan backbone and VAE from a local folder or hub id, never downloading unasked.

Production (Wan2.1/2.2 diffusers folders, e.g. ``Wan-AI/Wan2.1-T2V-1.3B-Diffusers``) and the
tiny random folder from ``models/tiny_wan.py`` go through the same ``from_pretrained`` call.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "1") == "1"


def load_wan(source: str, key: str = "model.backbone", dtype: torch.dtype = torch.float32):
    """(transformer, vae) from ``source``: a folder with transformer/ and vae/, or a hub id in the local cache.

    ``key`` names the config field in errors, so a user knows what to fix.
    """
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    local = Path(source).expanduser()
    if not local.exists() and (source.startswith((".", "/", "~")) or os.sep in source and source.count("/") > 1):
        raise ValueError(
            f"{key}={source!r}: no such folder. Build a tiny one with `memcorpus make-tiny-models DIR` "
            f"(then {key}=DIR/wan) or point it at a Wan2.x diffusers folder"
        )
    where = str(local) if local.exists() else source
    try:
        tr = WanTransformer3DModel.from_pretrained(
            where, subfolder="transformer", torch_dtype=dtype, local_files_only=_offline()
        )
        vae = AutoencoderKLWan.from_pretrained(
            where, subfolder="vae", torch_dtype=torch.float32, local_files_only=_offline()
        )
    except (OSError, ValueError) as e:
        raise ValueError(
            f"{key}={source!r}: cannot load a Wan transformer/vae from it ({e}). Give a local folder "
            f"with transformer/ and vae/, or a hub id already in the HF cache"
        ) from e
    return tr, vae
