"""Memory retrieval at load time, from the indices the corpus builders stored in the shards.

- Señorita-Long (memory-v2v Alg. 2): rank memory segments by DINOv2 cosine similarity of
  their descriptors to the query; the most recent segment always comes first.
- Multi-camera (Alg. 1): rank the scene's other videos by VideoFOV score, top-k.
- Random / none: the ablations the toy experiment compares against.

The real rankers live with their builders (models/dino.py, models/fov.py); the fallbacks here
implement the same documented formulas for when those modules are not installed yet.
"""

from __future__ import annotations

import numpy as np


def _cosine_rank(query: np.ndarray, cache: np.ndarray, enforce_recent_first: bool = True):
    q = query / (np.linalg.norm(query) + 1e-12)
    c = cache / (np.linalg.norm(cache, axis=1, keepdims=True) + 1e-12)
    sims = c @ q  # (N,)
    order = list(np.argsort(-sims, kind="stable"))
    if enforce_recent_first and len(order):
        recent = len(cache) - 1  # the cache is in time order; its last segment is the most recent
        order.remove(recent)
        order.insert(0, recent)
    return np.asarray(order, np.int64), sims


def rank_segments(query_desc: np.ndarray, cache_descs: np.ndarray, enforce_recent_first: bool = True):
    """(order, sims) of cached segments for a query segment descriptor (Alg. 2)."""
    try:
        from models.dino import rank_segments as real
    except ImportError:
        return _cosine_rank(
            np.asarray(query_desc, np.float64), np.asarray(cache_descs, np.float64), enforce_recent_first
        )
    return real(query_desc, cache_descs, enforce_recent_first=enforce_recent_first)


def rank_videos(query_bits: np.ndarray, cached_bits: np.ndarray, lam: float = 0.5, k: int | None = None):
    """(order, scores) of cached videos by VideoFOV Eq. (3) (models/fov.py)."""
    from models.fov import rank_videos as real

    return real(query_bits, cached_bits, lam=lam, k=k)


def choose(mode: str, k: int, n: int, rng: np.random.Generator, ranked: np.ndarray | None = None) -> list[int]:
    """Indices of the memory to condition on, most relevant first.

    ``mode``: "retrieved" (the first k of ``ranked``), "random" (k drawn uniformly), "none".
    """
    if mode == "none" or n == 0 or k == 0:
        return []
    if mode == "random":
        return [int(i) for i in rng.choice(n, size=min(k, n), replace=False)]
    if mode == "retrieved":
        if ranked is None:
            raise ValueError("memory mode 'retrieved' needs a ranking from the shard's indices")
        return [int(i) for i in ranked[:k]]
    raise ValueError(f"memory mode must be retrieved|random|none, got {mode!r}")
