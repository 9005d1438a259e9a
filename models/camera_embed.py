"""Per-video camera embedding (memory-v2v §0.E.1.2, Eq. 17): F_i^(v) = F_o^(v) + E_c(cam_v).

Every token carries the flattened 3x4 [R|t] of the frame of the video it came from, so the
target, the user input and each memory video keep their own viewpoint instead of one target
camera being broadcast over all of them (Eq. 16, ReCamMaster). One projection per block,
zero-initialised so a pretrained backbone starts unchanged.
"""

from __future__ import annotations

import torch
from torch import nn


class CameraEmbed(nn.Module):
    def __init__(self, dim: int, n_blocks: int):
        super().__init__()
        self.proj = nn.ModuleList([nn.Linear(12, dim) for _ in range(n_blocks)])
        for p in self.proj:
            nn.init.zeros_(p.weight)
            nn.init.zeros_(p.bias)

    def forward(self, x: torch.Tensor, cams: torch.Tensor, block: int) -> torch.Tensor:
        # x: (B, N, D); cams: (B, N, 12) flattened [R|t] of each token's own video and frame
        return x + self.proj[block](cams.to(x.dtype))


def frame_cams(extrinsics: torch.Tensor, tokens_per_frame: int) -> torch.Tensor:
    """(B, F, 3, 4) or (B, F, 4, 4) camera-to-world -> per-token rows (B, F*tokens_per_frame, 12)."""
    rt = extrinsics[..., :3, :4].flatten(-2)  # (B, F, 12)
    return rt.repeat_interleave(tokens_per_frame, dim=1)
