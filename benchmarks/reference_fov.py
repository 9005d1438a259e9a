"""A straightforward numpy Alg. 1 (Memory-V2V VideoFOV retrieval), kept as the benchmark reference.

Every frame tests every one of the M sphere points. It deliberately shares no code with
``models/fov.py``; it only follows the same conventions (OpenCV camera-to-world poses, a
cell-centred latitude-longitude grid with the polar axis on camera up, image ``[0, W) x [0, H)``).
"""

from __future__ import annotations

import numpy as np


def sphere_points(n_theta: int = 180, n_phi: int = 360, radius: float = 1.0) -> tuple[np.ndarray, ...]:
    theta = (np.arange(n_theta) + 0.5) * (np.pi / n_theta)
    phi = (np.arange(n_phi) + 0.5) * (2.0 * np.pi / n_phi)
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    sp, cp = np.sin(phi)[None, :], np.cos(phi)[None, :]
    x = radius * st * sp
    y = np.broadcast_to(-radius * ct, x.shape).copy()
    z = radius * st * cp
    return x.ravel(), y.ravel(), z.ravel()


def relative_pose(poses: np.ndarray, ref: np.ndarray) -> np.ndarray:
    out = np.zeros_like(poses, dtype=np.float64)
    rr, tr = ref[:3, :3], ref[:3, 3]
    out[:, :3, :3] = rr.T @ poses[:, :3, :3]
    out[:, :3, 3] = (poses[:, :3, 3] - tr) @ rr
    out[:, 3, 3] = 1.0
    return out


def in_fov(x, y, z, pose, k, width, height):
    r, c = pose[:3, :3], pose[:3, 3]
    dx, dy, dz = x - c[0], y - c[1], z - c[2]
    xc = r[0, 0] * dx + r[1, 0] * dy + r[2, 0] * dz
    yc = r[0, 1] * dx + r[1, 1] * dy + r[2, 1] * dz
    zc = r[0, 2] * dx + r[1, 2] * dy + r[2, 2] * dz
    with np.errstate(divide="ignore", invalid="ignore"):
        u = k[0, 0] * (xc / zc) + k[0, 2]
        v = k[1, 1] * (yc / zc) + k[1, 2]
    return (zc > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)


def video_fov(poses, k, width, height, points) -> np.ndarray:
    """Boolean (M,) union over frames."""
    k = np.broadcast_to(np.asarray(k, np.float64), (len(poses), 3, 3))
    seen = np.zeros(points[0].shape, bool)
    for t in range(len(poses)):
        seen |= in_fov(*points, poses[t], k[t], width, height)
    return seen


def score(f_target: np.ndarray, f_cached: np.ndarray, lam: float = 0.5) -> float:
    inter = np.count_nonzero(f_target & f_cached)
    union = np.count_nonzero(f_target | f_cached)
    n_t = np.count_nonzero(f_target)
    iou = inter / union if union else 0.0
    contain = inter / n_t if n_t else 0.0
    return lam * iou + (1 - lam) * contain


def retrieve(target, cached, k_target, k_cached, width, height, lam=0.5, top_k=None, n_theta=180, n_phi=360):
    points = sphere_points(n_theta, n_phi)
    ref = np.asarray(target, np.float64)[0]
    f_t = video_fov(relative_pose(target, ref), k_target, width, height, points)
    scores = np.array([
        score(f_t, video_fov(relative_pose(p, ref), kk, width, height, points), lam)
        for p, kk in zip(cached, k_cached)
    ])
    order = np.argsort(-scores, kind="stable")
    return (order if top_k is None else order[:top_k]), scores
