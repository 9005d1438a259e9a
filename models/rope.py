"""3D RoPE with Memory-V2V's disjoint time ranges (memory-v2v §0.E.1.1, Eqs. 11-14).

Target tokens take times [0, T), the user-input video [T, 2T) and every memory video
[2T, 3T), so however many memory videos accumulate, no time index outside [0, 3T) is ever
seen (no extrapolation). At inference for long editing the memory range is read backwards
(§0.E.2.3): memory frames come *before* the target in real time, while training put the
generated extension *after* it.

Positions may be fractional: a 1x4x4 or 1x8x8 token covers several 1x2x2 cells and sits at
their centre, and a merged frame's tokens at the centre of what they pooled. The angles use
the same formula and channel split as diffusers' ``WanRotaryPosEmbed`` (t gets what h and w
leave), so a backbone's pretrained attention sees the positions it was trained on.
"""

from __future__ import annotations

import torch

TARGET, USER, MEMORY = 0, 1, 2


def range_start(kind: int, t: int) -> int:
    """First time index of a token kind's range for a target of ``t`` latent frames."""
    if kind not in (TARGET, USER, MEMORY):
        raise ValueError(f"unknown token kind {kind}")
    return kind * t


def memory_times(n_frames: int, t: int, reverse: bool = False) -> torch.Tensor:
    """Time indices of a memory video's ``n_frames`` latent frames inside [2T, 3T).

    Videos longer than T are spread evenly over the range (indices stay in range, possibly
    fractional) rather than spilling into positions never seen in training.
    """
    if n_frames <= t:
        local = torch.arange(n_frames, dtype=torch.float64)
    else:
        local = torch.linspace(0, t - 1, n_frames, dtype=torch.float64)
    if reverse:
        local = (t - 1) - local
    return 2 * t + local  # (n_frames,)


def split_dims(head_dim: int) -> tuple[int, int, int]:
    """(t, h, w) channel split of one attention head, as in WanRotaryPosEmbed."""
    h = w = 2 * (head_dim // 6)
    return head_dim - h - w, h, w


def _angles(pos: torch.Tensor, dim: int, theta: float) -> torch.Tensor:
    inv = 1.0 / theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (dim/2,)
    ang = pos.to(torch.float64)[:, None] * inv[None]  # (N, dim/2)
    return ang.repeat_interleave(2, dim=1)  # (N, dim) interleaved like diffusers' use_real=True


def rope_cos_sin(pos: torch.Tensor, head_dim: int, theta: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token (cos, sin) for positions ``pos`` (N, 3) = (t, h, w), shaped (1, N, 1, head_dim)."""
    assert pos.ndim == 2 and pos.shape[1] == 3, pos.shape
    dims = split_dims(head_dim)
    ang = torch.cat([_angles(pos[:, i], d, theta) for i, d in enumerate(dims)], dim=1)  # (N, head_dim)
    return ang.cos().float()[None, :, None], ang.sin().float()[None, :, None]


def grid_positions(t_index: torch.Tensor, h: int, w: int, stride: float = 1.0) -> torch.Tensor:
    """Positions (len(t_index)*h*w, 3) of frames tokenised on an h x w grid.

    ``stride``: how many base (1x2x2) cells one token spans; the token sits at their centre.
    """
    ys = (torch.arange(h, dtype=torch.float64) + 0.5) * stride - 0.5
    xs = (torch.arange(w, dtype=torch.float64) + 0.5) * stride - 0.5
    tt, yy, xx = torch.meshgrid(t_index.to(torch.float64), ys, xs, indexing="ij")
    return torch.stack([tt, yy, xx], dim=-1).reshape(-1, 3)  # (F*h*w, 3)
