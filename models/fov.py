"""VideoFOV (Memory-V2V Alg. 1): which sphere directions a camera trajectory sees, and retrieval by overlap.

Convention: poses are OpenCV camera-to-world 4x4 (x right, y down, z forward), already relative to
the target's first frame (``relative_to``), so the sphere of radius ``radius`` sits at the origin.
Directions form a latitude-longitude grid of ``n_theta x n_phi`` cell centres (180 x 360 = 64,800),
polar axis = camera "up" (-y), azimuth 0 = forward (+z). A point is visible in a frame when its
camera-space depth is positive and its projection falls in ``[0, W) x [0, H)``.

The direct test (``visible_exact``) costs T x M projections (~300 ms for 81 frames). ``fov_mask`` gets
the same sets from geometry: each image-bound test is a half-space through the camera centre, and a
half-space cuts a grid row (a latitude circle) in one arc ``A cos(phi) + B sin(phi) + C > 0``. The arc
end points split each row into segments that are wholly in or out; one test at each segment's middle
decides, and the few grid points within ``_TOL`` of an end point are settled by ``visible_exact``
itself, so the bits equal the direct test's.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

N_THETA, N_PHI = 180, 360
_TOL = 1e-5  # radians; grid spacing is 1.7e-2, arc end points are accurate to ~1e-8
_DEGENERATE = 1e-9  # relative size below which a row's test is treated as constant


@lru_cache(maxsize=8)
def sphere_grid(n_theta: int = N_THETA, n_phi: int = N_PHI, radius: float = 1.0) -> tuple[np.ndarray, ...]:
    """Grid angles and points ``(theta (U,), phi (V,), x, y, z (U, V))``; cached, read-only."""
    theta = (np.arange(n_theta) + 0.5) * (np.pi / n_theta)
    phi = (np.arange(n_phi) + 0.5) * (2.0 * np.pi / n_phi)
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    sp, cp = np.sin(phi)[None, :], np.cos(phi)[None, :]
    x = radius * st * sp
    y = np.broadcast_to(-radius * ct, x.shape).copy()
    z = radius * st * cp
    out = (theta, phi, x, y, z)
    for a in out:
        a.setflags(write=False)
    return out


def intrinsics(fov_deg: float, width: int, height: int) -> np.ndarray:
    """Pinhole K for a horizontal field of view, square pixels, principal point at the centre."""
    if not 0 < fov_deg < 180:
        raise ValueError(f"fov_deg must be in (0, 180), got {fov_deg}")
    f = 0.5 * width / np.tan(np.radians(fov_deg) / 2)
    return np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], dtype=np.float64)


def relative_to(poses: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Alg. 1 RelativePose: ``R' = Rref^T R``, ``t' = Rref^T (t - tref)`` for (T, 4, 4) camera-to-world."""
    out = np.zeros_like(poses, dtype=np.float64)
    rr, tr = ref[:3, :3], ref[:3, 3]
    out[:, :3, :3] = rr.T @ poses[:, :3, :3]
    out[:, :3, 3] = (poses[:, :3, 3] - tr) @ rr
    out[:, 3, 3] = 1.0
    return out


def visible_exact(x, y, z, pose: np.ndarray, k: np.ndarray, width: int, height: int) -> np.ndarray:
    """The direct per-point test of Alg. 1 (InFOV). Element-wise arithmetic, so results are reproducible."""
    r, c = pose[:3, :3], pose[:3, 3]
    dx, dy, dz = x - c[0], y - c[1], z - c[2]
    xc = r[0, 0] * dx + r[1, 0] * dy + r[2, 0] * dz  # R^T (p - c): world -> camera
    yc = r[0, 1] * dx + r[1, 1] * dy + r[2, 1] * dz
    zc = r[0, 2] * dx + r[1, 2] * dy + r[2, 2] * dz
    with np.errstate(divide="ignore", invalid="ignore"):
        u = k[0, 0] * (xc / zc) + k[0, 2]
        v = k[1, 1] * (yc / zc) + k[1, 2]
    return (zc > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)


def _per_frame_k(k: np.ndarray, t: int) -> np.ndarray:
    k = np.asarray(k, dtype=np.float64)
    if k.shape == (3, 3):
        k = np.broadcast_to(k, (t, 3, 3))
    if k.shape != (t, 3, 3):
        raise ValueError(f"K must be (3, 3) or ({t}, 3, 3), got {k.shape}")
    if np.any(k[:, 0, 0] <= 0) or np.any(k[:, 1, 1] <= 0) or np.any(k[:, 0, 1] != 0):
        raise ValueError("K needs positive focal lengths and zero skew")
    return k


def _half_spaces(k: np.ndarray, width: int, height: int) -> np.ndarray:
    """Camera-space normals n with ``n . x_c > 0`` per image bound, (T, 4 or 5, 3)."""
    fx, fy, cx, cy = k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2]
    zero, one = np.zeros_like(fx), np.ones_like(fx)
    n = [
        np.stack([fx, zero, cx], -1),  # u >= 0
        np.stack([-fx, zero, width - cx], -1),  # u < W
        np.stack([zero, fy, cy], -1),  # v >= 0
        np.stack([zero, -fy, height - cy], -1),  # v < H
    ]
    # With the principal point inside the image the four bounds already imply z > 0.
    if not (np.all((cx > 0) & (cx < width)) and np.all((cy > 0) & (cy < height))):
        n.append(np.stack([zero, zero, one], -1))
    return np.stack(n, 1)


def fov_mask(
    poses: np.ndarray, k: np.ndarray, width: int, height: int,
    n_theta: int = N_THETA, n_phi: int = N_PHI, radius: float = 1.0,
) -> np.ndarray:
    """Union over frames of the visible grid directions, ``(n_theta, n_phi)`` bool."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) == 0:
        raise ValueError(f"poses must be (T, 4, 4) with T >= 1, got {poses.shape}")
    if not np.isfinite(poses).all():
        raise ValueError("poses hold NaN or inf (stages.camera_poses.pose_problem names the frames)")
    t_count = len(poses)
    k = _per_frame_k(k, t_count)
    theta, _, gx, gy, gz = sphere_grid(n_theta, n_phi, radius)
    dphi = 2.0 * np.pi / n_phi
    rot, cen = poses[:, :3, :3], poses[:, :3, 3]
    m = np.einsum("tij,tkj->tki", rot, _half_spaces(k, width, height))  # world normals (T, K, 3)
    mc = np.einsum("tki,ti->tk", m, cen)
    scale = np.linalg.norm(m, axis=-1) * (radius + np.linalg.norm(cen, axis=-1))[:, None]  # (T, K)
    st, ct = np.sin(theta), np.cos(theta)
    # g(phi) = A cos(phi) + B sin(phi) + C on row u, for every (frame, row, bound): (T, U, K), with
    # A = r sin(theta) m_z, B = r sin(theta) m_x, so rho = |(A, B)| = r sin(theta) |(m_z, m_x)|.
    c = -radius * ct[None, :, None] * m[:, None, :, 1] - mc[:, None, :]
    rho = (radius * st)[None, :, None] * np.hypot(m[..., 2], m[..., 0])[:, None, :]
    eps = _DEGENERATE * scale[:, None, :]
    hopeless = (c + rho < -eps).any(-1)  # some bound fails on the whole row
    flat = rho < eps
    brute = np.zeros_like(hopeless)
    if flat.any():  # rows lying ~on a bound's plane: g ~ 0 all along, test them directly
        brute = ~hopeless & (flat & (np.abs(c) < 1e3 * eps)).any(-1)
    ti, ui = np.nonzero(~hopeless & ~brute)
    c, rho = c[ti, ui], rho[ti, ui]  # (P, K)
    a = (radius * st)[ui, None] * m[ti, :, 2]
    b = (radius * st)[ui, None] * m[ti, :, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(rho > 0, -c / rho, np.where(c > 0, -1.0, 1.0))
    beta = np.arccos(np.clip(q, -1.0, 1.0))
    # Bound k holds on the arc [s, s + 2 beta]. Walking the row from phi = 0, the number of arcs
    # covering a point is (arcs that wrap past 2 pi) + (starts passed) - (ends passed); a segment
    # between consecutive end points is visible when all K arcs cover it.
    n_k = a.shape[1]
    s = np.mod(np.arctan2(b, a) - beta, 2 * np.pi)
    e = s + 2 * beta
    wraps = e >= 2 * np.pi
    pos = np.concatenate([s, np.where(wraps, e - 2 * np.pi, e)], 1)  # (P, 2K)
    order = np.argsort(pos, 1)
    ends = np.take_along_axis(pos, order, 1)
    step = np.concatenate([np.ones(n_k, np.int8), -np.ones(n_k, np.int8)])[order]
    inside = wraps.sum(1, dtype=np.int8)[:, None] + np.cumsum(step, 1, dtype=np.int8) == n_k
    stop = np.concatenate([ends[:, 1:], ends[:, :1] + 2 * np.pi], 1)
    # Rasterise the inside segments (shrunk by _TOL) as +1/-1 steps along their rows, then fold the
    # part past 2 pi (segments live in [0, 4 pi)) back to the row start and cumulate.
    v0 = np.ceil((ends[inside] + _TOL) / dphi - 0.5).astype(np.int64)
    v1 = np.floor((stop[inside] - _TOL) / dphi - 0.5).astype(np.int64) + 1
    row = np.broadcast_to(ui[:, None], inside.shape)[inside]
    ok = v1 > v0
    row, v0, v1 = row[ok], v0[ok], v1[ok]
    wrap = v1 > n_phi
    lo_row = row.min() if len(row) else 0
    rows_used = (row.max() + 1 - lo_row) if len(row) else 0
    w1 = n_phi + 1
    r = row - lo_row
    idx_start = np.concatenate([r * w1 + np.minimum(v0, n_phi), (r * w1)[wrap] + np.maximum(v0[wrap] - n_phi, 0)])
    idx_stop = np.concatenate([r * w1 + np.minimum(v1, n_phi), (r * w1)[wrap] + (v1[wrap] - n_phi)])
    size = rows_used * w1
    diff = np.bincount(idx_start, minlength=size) - np.bincount(idx_stop, minlength=size)
    mask = np.zeros((n_theta, n_phi), bool)
    mask[lo_row : lo_row + rows_used] = np.cumsum(diff.reshape(rows_used, w1), 1)[:, :n_phi] > 0
    # Grid points next to an end point: settle them with the direct test.
    vn = np.rint(ends / dphi - 0.5).astype(np.int64)
    near = np.abs((vn + 0.5) * dphi - ends) < _TOL
    pi_, ei = np.nonzero(near)
    fixes = [(ti[pi_], ui[pi_], np.mod(vn[pi_, ei], n_phi))]
    bt, bu = np.nonzero(brute)
    if len(bt):
        fixes.append((np.repeat(bt, n_phi), np.repeat(bu, n_phi), np.tile(np.arange(n_phi), len(bt))))
    ft, fu, fv = (np.concatenate(z) for z in zip(*fixes))
    for t in np.unique(ft):
        sel = ft == t
        uu, vv = fu[sel], fv[sel]
        vis = visible_exact(gx[uu, vv], gy[uu, vv], gz[uu, vv], poses[t], k[t], width, height)
        mask[uu[vis], vv[vis]] = True
    return mask


def video_fov(
    poses: np.ndarray, k: np.ndarray, width: int, height: int,
    n_theta: int = N_THETA, n_phi: int = N_PHI, radius: float = 1.0,
) -> np.ndarray:
    """Packed bitset (uint8, ``ceil(n_theta*n_phi/8)`` bytes, row-major grid) of ``fov_mask``."""
    return np.packbits(fov_mask(poses, k, width, height, n_theta, n_phi, radius).ravel())


def as_words(bits: np.ndarray) -> np.ndarray:
    """Packed uint8 bitsets (..., nbytes) viewed as uint64 words, zero-padded to a multiple of 8 bytes."""
    bits = np.ascontiguousarray(bits, dtype=np.uint8)
    pad = (-bits.shape[-1]) % 8
    if pad:
        bits = np.concatenate([bits, np.zeros(bits.shape[:-1] + (pad,), np.uint8)], -1)
    return bits.view(np.uint64)


def popcount(bits: np.ndarray) -> np.ndarray:
    """Number of set bits per packed bitset (last axis)."""
    bits = np.ascontiguousarray(bits, dtype=np.uint8)
    n_words = bits.shape[-1] // 8
    body = bits[..., : n_words * 8].view(np.uint64)
    return np.bitwise_count(body).sum(-1, dtype=np.int64) + np.bitwise_count(bits[..., n_words * 8 :]).sum(
        -1, dtype=np.int64)


def fov_scores(
    query_bits: np.ndarray, cached_bits: np.ndarray, lam: float = 0.5, cached_counts: np.ndarray | None = None,
    chunk: int = 2048,
) -> np.ndarray:
    """Eq. (3): ``lam * IoU + (1 - lam) * |Q & C| / |Q|`` of one query against (N, nbytes) cached bitsets."""
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    q = as_words(query_bits)
    cached = np.ascontiguousarray(np.atleast_2d(cached_bits), dtype=np.uint8)
    if cached.shape[-1] != np.asarray(query_bits).shape[-1]:
        raise ValueError(f"bitset sizes differ: query {np.shape(query_bits)} vs cached {cached.shape}")
    n_q = int(np.bitwise_count(q).sum())
    counts = popcount(cached) if cached_counts is None else np.asarray(cached_counts, np.int64)
    # Only the query's non-zero words can intersect (a 53-degree camera sees ~1/8 of the sphere);
    # cached rows are read in place as uint64 words plus a < 8-byte uint8 tail, never copied whole.
    n_bytes = cached.shape[-1]
    n_words = n_bytes // 8
    nz = np.flatnonzero(q[:n_words])
    q_tail = np.asarray(query_bits, np.uint8)[n_words * 8 :]
    body = cached[:, : n_words * 8].view(np.uint64)
    inter = np.empty(len(cached), np.int64)
    for s in range(0, len(cached), chunk):
        w = body[s : s + chunk, nz]
        inter[s : s + chunk] = np.bitwise_count(w & q[nz]).sum(-1, dtype=np.int64)
        if len(q_tail):
            tail = cached[s : s + chunk, n_words * 8 :] & q_tail
            inter[s : s + chunk] += np.bitwise_count(tail).sum(-1, dtype=np.int64)
    union = n_q + counts - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, inter / union, 0.0)
        contain = inter / n_q if n_q else np.zeros(len(cached))
    return lam * iou + (1.0 - lam) * contain


def rank_videos(
    query_bits: np.ndarray, cached_bits: np.ndarray, lam: float = 0.5, k: int | None = None,
    cached_counts: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-k cached videos by Eq. (3): ``(order (k,), scores (N,))``, ties broken by lower index.

    Bitsets must come from poses relative to the same first frame as the query (Alg. 1); the
    corpus stores each scene's bitsets relative to its reference camera's first frame.
    """
    scores = fov_scores(query_bits, cached_bits, lam, cached_counts)
    order = np.argsort(-scores, kind="stable")
    return (order if k is None else order[:k]), scores


def retrieve(
    target: np.ndarray, cached: list[np.ndarray], k_target: np.ndarray, k_cached: list[np.ndarray],
    width: int, height: int, lam: float = 0.5, top_k: int | None = None, **grid,
) -> tuple[np.ndarray, np.ndarray]:
    """Alg. 1 end to end: relativise everything to the target's first frame, build FOVs, rank."""
    ref = np.asarray(target, np.float64)[0]
    q = video_fov(relative_to(target, ref), k_target, width, height, **grid)
    bits = np.stack([video_fov(relative_to(p, ref), kk, width, height, **grid) for p, kk in zip(cached, k_cached)])
    return rank_videos(q, bits, lam, top_k)


def score_matrix(
    trajs: list[np.ndarray], ks: list[np.ndarray], width: int, height: int, lam: float = 0.5,
    radii: np.ndarray | None = None, **grid,
) -> np.ndarray:
    """``S[i, j]`` = Alg. 1 score of video j for target i, each row relative to target i's first frame.

    ``radii`` gives each target its own sphere radius (models/fov_radius.py); None: ``grid["radius"]``
    for all. Targets that share their first pose and radius (as ReCamMaster's trajectories do) share
    one set of FOVs.
    """
    n = len(trajs)
    if radii is not None and len(radii) != n:
        raise ValueError(f"radii must give one radius per video ({n}), got {len(radii)}")
    scores = np.zeros((n, n), np.float64)
    done: list[tuple[np.ndarray, float, np.ndarray]] = []
    for i in range(n):
        ref = np.asarray(trajs[i], np.float64)[0]
        g = grid if radii is None else {**grid, "radius": float(radii[i])}
        r = g.get("radius", 1.0)
        bits = next((b for rp, rr, b in done if rr == r and np.array_equal(rp, ref)), None)
        if bits is None:
            bits = np.stack([video_fov(relative_to(p, ref), kk, width, height, **g) for p, kk in zip(trajs, ks)])
            done.append((ref, r, bits))
        scores[i] = fov_scores(bits[i], bits, lam)
    return scores
