"""Memento's dual-path memory bank (memento.txt §3.2, Eqs. 2-5).

The bank grows shot by shot, as at inference: M_1 = TopK of shot 1's tokens, then
M_t = TopK([M_{t-1}; E(S_t)]) (Eq. 2): the candidate pool is the previous bank plus
VAE-latent tokens of the newest shot, never all history at once, so what training teaches the
queries is the same recurrent selection they perform when generating (``build``). Two sets of
learnable queries are conditioned on text by cross-attention, story queries on the story
caption and shot queries on the current shot caption (Eq. 3); each path scores every
candidate (Eq. 4) and keeps its own top-K (Eq. 5). Keeping the paths separate stops
persistent identity evidence and transient scene context from competing for one budget.

Top-K is not differentiable; the kept tokens are scaled by 1 + s - sg(s) (value 1, gradient
of the score), so the queries still learn what to keep from the denoising loss.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class ConditionedQueries(nn.Module):
    """Learnable queries that read a caption by cross-attention (Eq. 3)."""

    def __init__(self, n: int, dim: int, text_dim: int, heads: int = 2):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(n, dim) / math.sqrt(dim))
        self.text_proj = nn.Linear(text_dim, dim)
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm = nn.LayerNorm(dim)

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        # text: (B, L, text_dim) -> (B, n, D)
        q = self.queries.expand(text.shape[0], -1, -1)
        ctx = self.text_proj(text)  # (B, L, D)
        out, _ = self.attn(q, ctx, ctx, need_weights=False)
        return self.norm(q + out)


def score(queries: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
    """Relevance of each candidate to a query set: max over queries of scaled dot product. (B, Nc)."""
    return (queries @ cand.transpose(1, 2) / math.sqrt(cand.shape[-1])).amax(dim=1)


def top_k(cand: torch.Tensor, s: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the k best candidates (B, k, D) and their indices (B, k), with a straight-through score gradient."""
    k = min(k, cand.shape[1])
    idx = s.topk(k, dim=1).indices  # (B, k)
    kept = cand.gather(1, idx[..., None].expand(-1, -1, cand.shape[-1]))  # (B, k, D)
    ks = s.gather(1, idx).sigmoid()
    return kept * (1 + ks - ks.detach())[..., None], idx


class DualPathMemory(nn.Module):
    def __init__(self, dim: int, text_dim: int, n_story: int = 4, n_shot: int = 4, k: int = 16):
        super().__init__()
        self.k = k
        self.story = ConditionedQueries(n_story, dim, text_dim)
        self.shot = ConditionedQueries(n_shot, dim, text_dim)

    def forward(
        self,
        prev_bank: torch.Tensor | None,
        new_tokens: torch.Tensor,
        story_text: torch.Tensor,
        shot_text: torch.Tensor,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """New bank M_t (B, <=2k, D) from M_{t-1} (B, Nb, D) and tokens of the last shot (B, Nn, D)."""
        cand = new_tokens if prev_bank is None else torch.cat([prev_bank, new_tokens], dim=1)  # (B, Nc, D)
        s_story = score(self.story(story_text), cand)
        s_shot = score(self.shot(shot_text), cand)
        kept_story, i_story = top_k(cand, s_story, self.k)
        kept_shot, i_shot = top_k(cand, s_shot, self.k)
        bank = torch.cat([kept_story, kept_shot], dim=1)  # (B, 2k, D)
        return bank, {"story_idx": i_story, "shot_idx": i_shot}

    def build(
        self, shots: list[torch.Tensor], story_text: torch.Tensor, shot_texts: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """Banks after each shot, in time order: ``[M_1, ..., M_n]`` for ``shots`` (each (B, N_i, D)) oldest first.

        ``shot_texts[i]``: the caption of the shot the bank after ``shots[i]`` is built for (the next
        shot: Eq. 3 conditions shot queries on C_shot^t for generating S_t). One update per shot, so
        M_i depends on shots[:i + 1] only.
        """
        if not shots:
            raise ValueError("a Memento bank needs at least one history shot")
        if len(shot_texts) != len(shots):
            raise ValueError(f"need one shot caption per history shot, got {len(shot_texts)} for {len(shots)}")
        banks, bank = [], None
        for tokens, text in zip(shots, shot_texts):
            bank, _ = self(bank, tokens, story_text, text)
            banks.append(bank)
        return banks
