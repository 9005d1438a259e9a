"""Load the Wan backbone(s) and VAE from a local folder or hub id, never downloading unasked.

Production (Wan2.1/2.2 diffusers folders, e.g. ``Wan-AI/Wan2.1-T2V-1.3B-Diffusers``) and the
tiny random folder from ``models/tiny_wan.py`` go through the same ``from_pretrained`` call.

Wan2.2-A14B is a mixture of two denoising experts: ``transformer/`` for high noise and
``transformer_2/`` for low noise, switched at ``boundary_ratio * num_train_timesteps``
(``boundary_ratio`` in ``model_index.json``; diffusers' WanPipeline: ``t >= boundary`` uses
``transformer``). Both are loaded when the folder has them; Wan2.1 and the tiny folder have one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

EXPERTS = ("transformer", "transformer_2")  # high-noise, low-noise: the diffusers folder names


@dataclass
class WanBackbone:
    experts: list[nn.Module]  # [transformer] or [transformer (t >= boundary), transformer_2 (t < boundary)]
    vae: nn.Module
    boundary: float | None  # switch timestep (boundary_ratio * num_train_timesteps); None with one expert


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "1") == "1"


def _where(source: str, key: str) -> str:
    local = Path(source).expanduser()
    if not local.exists() and (source.startswith((".", "/", "~")) or os.sep in source and source.count("/") > 1):
        raise ValueError(
            f"{key}={source!r}: no such folder. Build a tiny one with `memcorpus make-tiny-models DIR` "
            f"(then {key}=DIR/wan) or point it at a Wan2.x diffusers folder"
        )
    if local.exists() and not (local / "transformer" / "config.json").exists():
        raise ValueError(f"{key}={source!r}: has no transformer/config.json; give a Wan2.x diffusers folder")
    return str(local) if local.exists() else source


def _index(where: str) -> dict:
    """model_index.json as a dict; {} when there is none (Wan2.1 exports without it, the tiny single folder)."""
    from diffusers import DiffusionPipeline

    try:
        return dict(DiffusionPipeline.load_config(where, local_files_only=_offline()))
    except (OSError, ValueError):
        return {}


def _expert_names(where: str, index: dict) -> list[str]:
    spec = index.get("transformer_2")
    if spec is not None:  # Wan2.2 single-expert exports list it as [null, null]
        two = any(s is not None for s in spec)
    else:
        two = (Path(where) / "transformer_2" / "config.json").exists()
    return list(EXPERTS if two else EXPERTS[:1])


def _boundary(where: str, index: dict, source: str, key: str) -> float:
    from diffusers import FlowMatchEulerDiscreteScheduler

    ratio = index.get("boundary_ratio")
    if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0 < ratio < 1:
        raise ValueError(
            f"{key}={source!r}: has transformer_2/ (two experts) but model_index.json boundary_ratio={ratio!r}; "
            f"it must be a number in (0, 1), e.g. 0.875 for Wan2.2-T2V-A14B"
        )
    try:  # Wan's schedulers all use 1000; read it so the boundary means what the pipeline means
        sched = FlowMatchEulerDiscreteScheduler.load_config(where, subfolder="scheduler", local_files_only=_offline())
        n = int(sched.get("num_train_timesteps", 1000))
    except (OSError, ValueError):
        n = 1000
    return float(ratio) * n


def _build_empty(where: str, name: str, dtype: torch.dtype) -> nn.Module:
    """The transformer's architecture on the meta device, from its config.json only (no weight file is read)."""
    from diffusers import WanTransformer3DModel

    config = WanTransformer3DModel.load_config(where, subfolder=name, local_files_only=_offline())
    with torch.device("meta"):
        tr = WanTransformer3DModel.from_config(config)
    if dtype != torch.float32:  # the dtypes from_pretrained(torch_dtype=dtype) gives: some modules stay fp32
        keep = set(getattr(tr, "_keep_in_fp32_modules", None) or ())
        for p_name, p in tr.named_parameters():
            if not keep & set(p_name.split(".")):
                p.data = p.data.to(dtype)
    return tr.eval()  # as from_pretrained leaves it


def load_wan_backbone(
    source: str, key: str = "model.backbone", dtype: torch.dtype = torch.float32, weights: bool = True
) -> WanBackbone:
    """Every expert in ``source`` plus the VAE; ``key`` names the config field in errors, so a user knows what to fix.

    ``weights=False`` builds the experts on the meta device from their configs: for ranks that receive rank 0's
    weights by broadcast, so only one process reads (and holds a full copy of) the transformer weights. The VAE is
    always loaded: every rank encodes its own batches, and it is small next to the transformer.
    """
    from diffusers import AutoencoderKLWan, WanTransformer3DModel

    where = _where(source, key)
    index = _index(where)
    names = _expert_names(where, index)
    boundary = _boundary(where, index, source, key) if len(names) == 2 else None
    try:
        if weights:
            kw = {"torch_dtype": dtype, "local_files_only": _offline()}
            experts = [WanTransformer3DModel.from_pretrained(where, subfolder=n, **kw) for n in names]
        else:
            experts = [_build_empty(where, n, dtype) for n in names]
        vae = AutoencoderKLWan.from_pretrained(
            where, subfolder="vae", torch_dtype=torch.float32, local_files_only=_offline()
        )
    except (OSError, ValueError) as e:
        raise ValueError(
            f"{key}={source!r}: cannot load Wan {'/'.join(names)}/vae from it ({e}). Give a local folder "
            f"with transformer/ and vae/, or a hub id already in the HF cache"
        ) from e
    if len(experts) == 2 and dict(experts[0].config) != dict(experts[1].config):
        raise ValueError(f"{key}={source!r}: transformer/ and transformer_2/ have different configs")
    return WanBackbone(experts=experts, vae=vae, boundary=boundary)


def load_wan(source: str, key: str = "model.backbone", dtype: torch.dtype = torch.float32):
    """(transformer, vae) from ``source``: the high-noise (or only) expert, for single-backbone callers."""
    wan = load_wan_backbone(source, key, dtype)
    return wan.experts[0], wan.vae
