"""Memory retrieval at generation time, over what was generated before (one function per paper).

- ``context_for``: Context-as-Memory §3.3 with VideoFOV scores (Memory-V2V Alg. 1, models/fov.py):
  earlier frames whose view overlaps the new segment's, one per run of adjacent co-visible frames,
  the most recent frame always included, at most the context size (20).
- ``edit_memory``: Memory-V2V Alg. 2 (training/retrieval.py): earlier turns ranked by DINOv2 similarity
  of their source segments to the current one, the most recent turn first.
- ``story_bank``: one Memento bank update (Eqs. 2-5) that also tracks which shot each kept token came from.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import torch

from training.retrieval import rank_segments, rank_videos


def frame_fovs(poses, frames, ref: np.ndarray, k: np.ndarray, w: int, h: int, radius: float = 1.0) -> np.ndarray:
    """Packed VideoFOV bitsets (N, bytes) of single frames, relative to ``ref`` (the target's first camera)."""
    from models.fov import relative_to, video_fov

    return np.stack([video_fov(relative_to(poses[j : j + 1], ref), k, w, h, radius=radius) for j in frames])


def covisible_runs(covis: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) runs of adjacent True entries."""
    d = np.diff(np.concatenate([[0], covis.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist()))


def context_for(
    poses: np.ndarray,
    target: np.ndarray,
    start: int,
    k: np.ndarray,
    w: int,
    h: int,
    context_size: int = 20,
    threshold: float = 0.05,
    radius: float = 1.0,
) -> tuple[list[int], dict]:
    """Context frames (indices < ``start``, most recent first) for the target frames ``target``; and a log.

    Every earlier frame is scored by Eq. (3) (λ·IoU + (1-λ)·containment) against the target segment's
    video FOV, all relative to the target's first camera (Alg. 1). Frames scoring >= ``threshold`` are
    co-visible; each run of adjacent co-visible frames contributes its best-scoring frame (Context-as-Memory
    draws one at random in training; at inference the best is the natural choice). The run holding the
    most recent frame is represented by it. Runs beyond the budget are dropped lowest score first.
    """
    from models.fov import relative_to, video_fov

    if start == 0:
        return [], {"context": [], "fov_scores": [], "covisible": 0, "runs": 0}
    ref = np.asarray(poses[target[0]], np.float64)
    query = video_fov(relative_to(poses[target], ref), k, w, h, radius=radius)
    _, scores = rank_videos(query, frame_fovs(poses, range(start), ref, k, w, h, radius))
    covis = scores >= threshold
    runs = covisible_runs(covis)
    best = []
    for a, b in runs:
        if a <= start - 1 < b:
            continue  # represented by the most recent frame
        best.append(a + int(np.argmax(scores[a:b])))  # ties: the older frame
    best = sorted(best, key=lambda j: (-scores[j], -j))[: max(context_size - 1, 0)]
    ctx = [start - 1, *sorted(best, reverse=True)]
    info = {
        "context": ctx,
        "fov_scores": [round(float(scores[j]), 4) for j in ctx],
        "covisible": int(covis.sum()),
        "runs": len(runs),
        "most_recent": start - 1,
    }
    return ctx, info


def edit_memory(descs: list[np.ndarray], k: int) -> tuple[list[int], dict]:
    """Earlier turns to condition the newest turn on (Alg. 2); ``descs``: source descriptors, the current last."""
    if len(descs) < 2 or k < 1:
        return [], {"memory": [], "similarity": []}
    order, sims = rank_segments(np.asarray(descs[-1]), np.stack(descs[:-1]), enforce_recent_first=True)
    pick = [int(i) for i in order[:k]]
    return pick, {"memory": pick, "similarity": [round(float(sims[i]), 4) for i in pick]}


@torch.no_grad()
def story_bank(
    bank_module,
    prev: torch.Tensor | None,
    prov: list[int],
    new: torch.Tensor,
    shot: int,
    story_text: torch.Tensor,
    shot_text: torch.Tensor,
) -> tuple[torch.Tensor, list[int], dict]:
    """M_t from M_{t-1} and the tokens of generated shot ``shot`` (Eqs. 2-5); the shot of origin of every token."""
    bank, idx = bank_module(prev, new, story_text, shot_text)
    cand = prov + [shot] * new.shape[1]  # candidates: [M_{t-1}; E(S)] in this order
    story_src = [cand[i] for i in idx["story_idx"][0].tolist()]
    shot_src = [cand[i] for i in idx["shot_idx"][0].tolist()]
    info = {
        "bank_tokens": int(bank.shape[1]),
        "bank_from_shots": sorted(set(story_src + shot_src)),
        "story_path_shots": dict(sorted(Counter(story_src).items())),
        "shot_path_shots": dict(sorted(Counter(shot_src).items())),
    }
    return bank, story_src + shot_src, info
