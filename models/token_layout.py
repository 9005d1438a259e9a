"""Where each frame's tokens sit in the joint sequence [target | user | memory | bank].

The DiT sees one flat token sequence; merging, RoPE and the output head need to know which
contiguous run of tokens is which frame of which video, on what grid, at what positions.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from models.rope import MEMORY, TARGET, USER


@dataclass(frozen=True)
class FrameSpan:
    kind: int  # rope.TARGET | USER | MEMORY
    video: int  # which video of that kind (memory videos in retrieval order)
    start: int  # first token index in the sequence
    h: int
    w: int

    @property
    def n(self) -> int:
        return self.h * self.w

    @property
    def stop(self) -> int:
        return self.start + self.n


@dataclass
class TokenSeq:
    x: torch.Tensor  # (B, N, D)
    pos: torch.Tensor  # (N, 3) float (t, h, w) rope positions, shared by the batch
    spans: list[FrameSpan]
    cams: torch.Tensor | None = None  # (B, N, 12) per-token camera of the video it came from

    def __post_init__(self) -> None:
        assert self.x.shape[1] == self.pos.shape[0], (self.x.shape, self.pos.shape)
        assert sum(s.n for s in self.spans) <= self.x.shape[1]

    @property
    def n_target(self) -> int:
        return sum(s.n for s in self.spans if s.kind == TARGET)

    def memory_frames(self, include_user: bool = False) -> list[int]:
        """Indices into ``spans`` of conditioning frames merging may compress: memory videos (and optionally
        the user input); bank tokens (video -1) and the target never."""
        kinds = (MEMORY, USER) if include_user else (MEMORY,)
        return [i for i, s in enumerate(self.spans) if s.kind in kinds and s.video >= 0]

    def count(self, kind: int) -> int:
        return sum(s.n for s in self.spans if s.kind == kind)


def concat(parts: list[TokenSeq]) -> TokenSeq:
    """Join token runs into one sequence, shifting span starts."""
    spans, off = [], 0
    for p in parts:
        spans += [replace(s, start=s.start + off) for s in p.spans]
        off += p.x.shape[1]
    cams = None
    if all(p.cams is not None for p in parts):
        cams = torch.cat([p.cams for p in parts], dim=1)
    return TokenSeq(
        x=torch.cat([p.x for p in parts], dim=1), pos=torch.cat([p.pos for p in parts], dim=0), spans=spans, cams=cams
    )
