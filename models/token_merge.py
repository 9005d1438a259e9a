"""Adaptive token merging by frame responsiveness (memory-v2v §3.3, Eqs. 4-6).

At a few chosen blocks (10 and 20 of 30 in the paper, where responsiveness has stabilised,
Tab. 1) each memory frame is summarised by its mean key K̄_t; its responsiveness is the
largest attention weight any target query gives it, R_t = max_q softmax_t(q·K̄_t/√D).
The fraction ``r`` of memory frames with the lowest R_t are not dropped but fused by a
learnable strided convolution (``stride``² fewer tokens each); the others pass untouched.
Dropping instead of merging loses quality (paper Fig. 8).

One decision is made per batch (R averaged over the batch) so every sample keeps the same
sequence layout; per-sample layouts would need padding and masks for no benefit at B≈1.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import nn

from models.token_layout import FrameSpan, TokenSeq


def responsiveness(q_target: torch.Tensor, k_frames: list[torch.Tensor]) -> torch.Tensor:
    """R_t for each memory frame: (B, n_frames).

    q_target: (B, Nt, D) target queries; k_frames: per memory frame keys (B, n_i, D).
    """
    kbar = torch.stack([k.mean(dim=1) for k in k_frames], dim=1)  # (B, Fm, D)
    logits = q_target @ kbar.transpose(1, 2) / math.sqrt(q_target.shape[-1])  # (B, Nt, Fm)
    return logits.softmax(dim=-1).amax(dim=1)  # (B, Fm)


def frames_to_merge(r_t: torch.Tensor, ratio: float) -> list[int]:
    """Positions (into the memory-frame list) of the ``round(ratio * Fm)`` least responsive frames."""
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"merge ratio must be in [0, 1], got {ratio}")
    n = round(ratio * r_t.shape[-1])
    if n == 0:
        return []
    order = r_t.mean(dim=0).argsort()  # ascending: least responsive first
    return sorted(order[:n].tolist())


class TokenMerger(nn.Module):
    """Learnable compressor C_θ for low-responsive frames."""

    def __init__(self, dim: int, stride: int = 2):
        super().__init__()
        self.stride = stride
        self.compress = nn.Conv2d(dim, dim, kernel_size=stride, stride=stride)
        with torch.no_grad():  # start as average pooling: a pretrained DiT sees plausible tokens
            self.compress.weight.zero_()
            eye = torch.eye(dim) / (stride * stride)
            for i in range(stride):
                for j in range(stride):
                    self.compress.weight[:, :, i, j] = eye
            self.compress.bias.zero_()

    def _merge_frame(self, x: torch.Tensor, pos: torch.Tensor, h: int, w: int):
        # x: (B, h*w, D) -> (B, h'*w', D); pos: (h*w, 3) -> (h'*w', 3)
        b, _, d = x.shape
        s = self.stride
        ph, pw = (-h) % s, (-w) % s
        img = x.transpose(1, 2).reshape(b, d, h, w)
        pimg = pos.T.reshape(1, 3, h, w).to(x.dtype)
        if ph or pw:
            img = F.pad(img, (0, pw, 0, ph), mode="replicate")
            pimg = F.pad(pimg, (0, pw, 0, ph), mode="replicate")
        y = self.compress(img)  # (B, D, h', w')
        new_pos = F.avg_pool2d(pimg, s)  # token sits at the centre of what it fused
        h2, w2 = y.shape[-2:]
        return y.flatten(2).transpose(1, 2), new_pos.reshape(3, -1).T.to(pos.dtype), h2, w2

    def forward(self, seq: TokenSeq, r_t: torch.Tensor, ratio: float, include_user: bool = False) -> TokenSeq:
        """Merge the least responsive conditioning frames of ``seq``; ``r_t``: (B, n_candidate_frames)."""
        mem = seq.memory_frames(include_user)
        assert r_t.shape[-1] == len(mem), (r_t.shape, len(mem))
        chosen = {mem[i] for i in frames_to_merge(r_t, ratio)}
        if not chosen:
            return seq
        xs, ps, cs, spans, off = [], [], [], [], 0
        covered = 0
        for i, sp in enumerate(seq.spans):
            x, p = seq.x[:, sp.start : sp.stop], seq.pos[sp.start : sp.stop]
            c = seq.cams[:, sp.start : sp.stop] if seq.cams is not None else None
            h, w = sp.h, sp.w
            if i in chosen:
                x, p, h, w = self._merge_frame(x, p, h, w)
                if c is not None:  # one camera per frame: every token of it carries the same row
                    c = c[:, :1].expand(-1, h * w, -1)
            xs.append(x)
            ps.append(p)
            cs.append(c)
            spans.append(replace(sp, start=off, h=h, w=w))
            off += h * w
            covered = sp.stop
        if covered < seq.x.shape[1]:  # tokens outside frame spans (e.g. a memory bank) pass through
            xs.append(seq.x[:, covered:])
            ps.append(seq.pos[covered:])
            cs.append(seq.cams[:, covered:] if seq.cams is not None else None)
        cams = torch.cat(cs, dim=1) if seq.cams is not None else None
        return TokenSeq(x=torch.cat(xs, dim=1), pos=torch.cat(ps, dim=0), spans=spans, cams=cams)


def sample_ratio(low: float = 0.3, high: float = 0.7, generator: torch.Generator | None = None) -> float:
    """Training-time merge ratio r ~ U[low, high] (DESIGN §2)."""
    return float(low + (high - low) * torch.rand((), generator=generator))


__all__ = ["FrameSpan", "TokenMerger", "frames_to_merge", "responsiveness", "sample_ratio"]
