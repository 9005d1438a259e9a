"""The sphere radius r of VideoFOV per scene (Memory-V2V, arXiv 2601.16296, §3.2.1, Alg. 1).

Alg. 1 takes r as an input and the text (App. D.1) speaks of a unit sphere around the target's
first camera. That only works while the cameras stay near that centre: on a rig whose
cameras look at one subject 3 m away, a 1 m sphere around one camera is a small bubble that most
of the other cameras' views miss, so about half of the pairs of a 12-camera ring score exactly 0
and cameras on one axis score very differently in the two directions (benchmarks/bench_fov.py).
The sphere should pass through what the cameras look at, so its radius follows the scene:

- ``axes``: each video's median distance, from its first camera (the sphere's centre), to the points
  where its optical axes pass closest to the other cameras' axes (pairs at least ``min_angle_deg`` apart, crossing in
  front of both cameras within a quarter of that distance). A converging rig gives each camera its
  distance to the subject, so a camera twice as far back gets a sphere twice as large and the
  sphere of every target passes through the subject; ReCamMaster's arcs and crane moves
  (tests/data/real) give ~4 m. A camera whose axis crosses no other takes the scene's median.
- ``spread``: when no axes cross at all (only pans from one spot, or parallel dollies), the RMS
  distance of the camera centres from their mean.

Never less than ``min_radius`` (1 m, the paper's unit sphere): cameras a few centimetres apart
panning around a room cross their axes within a metre, which says nothing about the walls they
see, and for cameras turning on one spot any radius gives the same bits.
"""

from __future__ import annotations

import numpy as np

MIN_RADIUS_M = 1.0


def _samples(trajs: list[np.ndarray], per_video: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centres (P, 3), unit optical axes (P, 3) and video index (P,) of up to ``per_video`` evenly spaced
    frames per video."""
    centres, axes, owner = [], [], []
    for v, p in enumerate(trajs):
        p = np.asarray(p, np.float64)
        idx = np.unique(np.linspace(0, len(p) - 1, min(per_video, len(p))).round().astype(int))
        centres.append(p[idx, :3, 3])
        axes.append(p[idx, :3, 2])  # OpenCV camera-to-world: column 2 is the camera's +z (forward)
        owner.append(np.full(len(idx), v))
    c, d = np.concatenate(centres), np.concatenate(axes)
    return c, d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-12), np.concatenate(owner)


def crossings(trajs: list[np.ndarray], per_video: int = 9, min_angle_deg: float = 5.0) -> tuple[np.ndarray, ...]:
    """``(points (X, 3), video_a (X,), video_b (X,))``: where pairs of sampled optical axes pass closest
    (the middle of the shortest segment between them) and the two videos whose axes they are."""
    c, d, owner = _samples(trajs, per_video)
    i, j = np.triu_indices(len(c), 1)
    b = (d[i] * d[j]).sum(1)
    w = c[i] - c[j]
    di, dj = (d[i] * w).sum(1), (d[j] * w).sum(1)
    den = 1.0 - b * b  # sin^2 of the angle between the axes
    ok = den > np.sin(np.radians(min_angle_deg)) ** 2
    den = np.where(ok, den, 1.0)
    s, t = (b * dj - di) / den, (dj - b * di) / den  # closest points: c_i + s d_i and c_j + t d_j
    pa, pb = c[i] + s[:, None] * d[i], c[j] + t[:, None] * d[j]
    # In front of both cameras (1 mm: axes from one spot meet at the camera itself, which says nothing)
    # and a real near-crossing, not two skew lines far apart.
    ok &= (s > 1e-3) & (t > 1e-3) & (np.linalg.norm(pa - pb, axis=1) < 0.25 * np.minimum(s, t))
    return 0.5 * (pa + pb)[ok], owner[i[ok]], owner[j[ok]]


def camera_radii(trajs: list[np.ndarray], min_radius: float = MIN_RADIUS_M, **kw) -> tuple[np.ndarray, str]:
    """``(radius per video (N,), how)`` in the poses' units; how is ``"axes"`` or ``"spread"`` (module doc)."""
    if not trajs:
        raise ValueError("camera_radii needs at least one trajectory")
    if min_radius <= 0:
        raise ValueError(f"min_radius must be > 0, got {min_radius}")
    points, va, vb = crossings(trajs, **kw)
    if len(points):
        # The sphere sits at each video's first camera (Alg. 1), so measure from there.
        first = np.stack([np.asarray(p, np.float64)[0, :3, 3] for p in trajs])
        dist = np.concatenate([np.linalg.norm(points - first[va], axis=1), np.linalg.norm(points - first[vb], axis=1)])
        video = np.concatenate([va, vb])
        scene = float(np.median(dist))
        own = [float(np.median(dist[video == v])) if (video == v).any() else scene for v in range(len(trajs))]
        return np.maximum(own, min_radius), "axes"
    c, _, _ = _samples(trajs, kw.get("per_video", 9))
    spread = float(np.sqrt(((c - c.mean(0)) ** 2).sum(1).mean()))
    return np.full(len(trajs), max(min_radius, spread)), "spread"


def check_radius(setting: float | str) -> None:
    """Refuse a ``radius`` setting that is neither ``"auto"`` nor a positive number of metres."""
    if setting == "auto":
        return
    if isinstance(setting, (bool, str)) or not isinstance(setting, (int, float)) or not setting > 0:
        raise ValueError(f"fov radius must be a number of metres > 0 or 'auto', got {setting!r}")


def resolve_radius(setting: float | str, trajs: list[np.ndarray]) -> tuple[np.ndarray, str]:
    """A stage's or the CLI's ``radius`` setting (a number, or ``"auto"``) -> ``(radius per video, how)``;
    how is ``"set"`` for a number."""
    check_radius(setting)
    if setting == "auto":
        return camera_radii(trajs)
    return np.full(len(trajs), float(setting)), "set"
