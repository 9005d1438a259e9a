"""Memory retrieval at load time, from the indices the corpus builders stored in the shards.

- Señorita-Long (memory-v2v Alg. 2): rank memory segments by DINOv2 cosine similarity of
  their descriptors to the query; the most recent segment always comes first.
- Multi-camera (Alg. 1): rank the scene's other videos by VideoFOV score, top-k; a query's bitset is
  built on the sphere the sample recorded (``query_fov``), never on a default radius.
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


def fov_grid(meta: dict) -> dict:
    """The sphere a multicam sample's VideoFOV bitsets were built on: ``{n_theta, n_phi, radius}`` from
    ``meta["videofov"]``. Alg. 1 compares bits point by point, so a query built at training time must use
    the same radius (a scene-adaptive one since videofov/3; older samples recorded their fixed 1 m)."""
    v = meta.get("videofov") if isinstance(meta, dict) else None
    if not isinstance(v, dict) or not all(k in v for k in ("n_theta", "n_phi", "radius")):
        raise ValueError("sample has no meta['videofov'] with n_theta, n_phi and radius: not a multicam scene "
                         "built by ComputeVideoFov")
    return {"n_theta": int(v["n_theta"]), "n_phi": int(v["n_phi"]), "radius": float(v["radius"])}


def query_fov(meta: dict, poses: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Packed VideoFOV bitset of a query trajectory ``poses`` (T, 4, 4), given relative to the sample's
    reference camera's first frame as ``poses.npy`` is, comparable with the sample's stored ``fov.npy``."""
    from models.fov import video_fov

    return video_fov(np.asarray(poses, np.float64), np.asarray(k, np.float64), int(meta["width"]),
                     int(meta["height"]), **fov_grid(meta))


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
