"""3D RoPE with Memory-V2V's disjoint time ranges (memory-v2v §0.E.1.1, Eqs. 11-14).

Three layouts, one per task:

- ``novel_view`` (§0.E.1.1, Eqs. 11-13): target [0, T), user-input video [T, 2T), every
  memory video [2T, 3T); however many memory videos accumulate, no time index outside
  [0, 3T) is ever seen (no extrapolation).
- ``editing`` (§0.E.2.2): target [0, T), the immediately preceding segment (memory[0])
  [T, 2T), the other memory segments [2T, 3T). The source clip has no range of its own in
  the paper: its editor (LucyEdit) concatenates the source to the target along channels, so
  the source is frame-aligned with the target; as a token sequence it gets the target's own
  times [0, T) (same t, same (h, w) -> the rotary phase says "this is the same frame").
- ``context`` (Context-as-Memory §3.2): context frames are concatenated after the target
  along the frame axis, so memory frame j (counted over all memory videos in order) sits at
  T + j; the paper only says context latents get "new positional encodings" and no order.

At inference for long editing the memory ranges are read backwards (§0.E.2.3): memory frames
come *before* the target in real time, while training put the generated extension *after* it.

Positions may be fractional: a 1x4x4 or 1x8x8 token covers several 1x2x2 cells and sits at
their centre, and a merged frame's tokens at the centre of what they pooled. The angles use
the same formula and channel split as diffusers' ``WanRotaryPosEmbed`` (t gets what h and w
leave), so a backbone's pretrained attention sees the positions it was trained on.
"""

from __future__ import annotations

import torch

TARGET, USER, MEMORY = 0, 1, 2
LAYOUTS = ("novel_view", "editing", "context")


def range_start(kind: int, t: int) -> int:
    """First time index of a token kind's range for a target of ``t`` latent frames."""
    if kind not in (TARGET, USER, MEMORY):
        raise ValueError(f"unknown token kind {kind}")
    return kind * t


def ranged_times(start: int, n_frames: int, t: int, reverse: bool = False) -> torch.Tensor:
    """Time indices of ``n_frames`` latent frames inside the range [start, start + T).

    Videos longer than T are spread evenly over the range (indices stay in range, possibly
    fractional) rather than spilling into positions never seen in training.
    """
    if n_frames <= t:
        local = torch.arange(n_frames, dtype=torch.float64)
    else:
        local = torch.linspace(0, t - 1, n_frames, dtype=torch.float64)
    if reverse:
        local = (t - 1) - local
    return start + local  # (n_frames,)


def memory_times(n_frames: int, t: int, reverse: bool = False) -> torch.Tensor:
    """Time indices of a memory video's latent frames inside [2T, 3T) (the novel-view range)."""
    return ranged_times(2 * t, n_frames, t, reverse)


def video_times(
    layout: str, kind: int, index: int, n_frames: int, t: int, reverse: bool = False, offset: int = 0
) -> torch.Tensor:
    """Time indices (n_frames,) of one video's latent frames under ``layout``.

    ``index``: which video of its kind (memory videos in retrieval order); ``offset``: latent
    frames of the memory videos before this one (only the ``context`` layout uses it).
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown RoPE layout {layout!r}; known: {LAYOUTS}")
    if kind == TARGET:
        return ranged_times(0, n_frames, t)
    if layout == "context":
        if kind == USER:
            raise ValueError("the context layout (Context-as-Memory) has no user-input video")
        if reverse:
            raise ValueError("the context layout has no reversed memory order (that is memory-v2v §0.E.2.3)")
        return t + offset + torch.arange(n_frames, dtype=torch.float64)
    if kind == USER:
        return ranged_times(0 if layout == "editing" else t, n_frames, t)
    if kind != MEMORY:
        raise ValueError(f"unknown token kind {kind}")
    start = t if layout == "editing" and index == 0 else 2 * t
    return ranged_times(start, n_frames, t, reverse)


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
