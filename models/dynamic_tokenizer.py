"""Relevance-dependent patch tokenizers for conditioning videos (memory-v2v §3.2.2).

The user-input video is tokenised finely (1x2x2 latent patches), the top-3 retrieved memory
videos at 1x4x4 and the rest at 1x8x8: 4x and 16x fewer tokens than the user video, so the
attention budget follows relevance instead of growing linearly with the memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

PATCHES: dict[str, int] = {"fine": 2, "mid": 4, "coarse": 8}


@dataclass(frozen=True)
class Tokens:
    x: torch.Tensor  # (B, F*h*w, D)
    frames: int
    h: int
    w: int
    stride: float  # base (1x2x2) cells spanned by one token, for RoPE centres


def levels_for(n_memory: int, top: int = 3) -> list[str]:
    """Tokenizer level of each memory video, given in retrieval order (most relevant first)."""
    return ["mid" if i < top else "coarse" for i in range(n_memory)]


class DynamicTokenizer(nn.Module):
    """Three learnable patch embeddings sharing one output width."""

    def __init__(self, in_channels: int, dim: int, base_patch: int = 2):
        super().__init__()
        self.base_patch = base_patch
        self.embed = nn.ModuleDict(
            {name: nn.Conv3d(in_channels, dim, kernel_size=(1, p, p), stride=(1, p, p)) for name, p in PATCHES.items()}
        )

    @torch.no_grad()
    def init_from(self, patch_embedding: nn.Conv3d) -> None:
        """Start every level from the backbone's 1x2x2 embedding (coarser kernels: tiled, rescaled).

        A pretrained DiT then sees coarse tokens that approximate the average of its own fine
        tokens, instead of noise, at the start of fine-tuning.
        """
        w, b = patch_embedding.weight, patch_embedding.bias  # (D, C, 1, 2, 2), (D,)
        for name, p in PATCHES.items():
            rep = p // w.shape[-1]
            conv = self.embed[name]
            conv.weight.copy_(w.repeat(1, 1, 1, rep, rep) / (rep * rep))
            if b is not None:
                conv.bias.copy_(b)

    def forward(self, latents: torch.Tensor, level: str) -> Tokens:
        # latents: (B, C, F, H, W) in VAE latent space
        if level not in self.embed:
            raise ValueError(f"unknown tokenizer level {level!r}; known: {sorted(self.embed)}")
        p = PATCHES[level]
        ph, pw = (-latents.shape[-2]) % p, (-latents.shape[-1]) % p
        if ph or pw:  # pad odd sizes by replication rather than dropping border content
            latents = F.pad(latents, (0, pw, 0, ph, 0, 0), mode="replicate")
        y = self.embed[level](latents)  # (B, D, F, H/p, W/p)
        _b, _d, f, h, w = y.shape
        return Tokens(x=y.flatten(2).transpose(1, 2), frames=f, h=h, w=w, stride=p / self.base_patch)
