"""Frame co-visibility for long roams (Context-as-Memory §3.3), as compact per-frame candidate lists.

For each frame i, which earlier frames j < i share its field of view. Two tests:

- ``rule``: Context-as-Memory's ground-plane rule. Each camera is a 2D fan (position, yaw, half
  FOV); the left rays of i and j must intersect and so must the right rays, each crossing between
  ``near`` and ``far`` metres from camera i (Fig. 4 a-d). The paper's rule misses views that are
  parallel (a revisit along the same path gives parallel rays), so we also accept pairs whose
  optical-axis points at ``(near + far) / 2`` each lie inside the other's fan.
- ``fov``: sphere-sampled overlap in the spirit of VideoFOV. Points on spheres of ``radius`` m
  around anchors (one camera position per ``radius``-sized voxel the path visits); a frame sees a point with
  positive depth, inside the image and within ``far``; pairs score ``lam * IoU + (1 - lam) *
  containment`` over the query's points, co-visible above ``threshold``. Bitsets + popcount.

"Non-adj": co-visible earlier frames that are adjacent form runs; one candidate per run is kept
(its middle frame), with the run bounds so a trainer can also pick at random inside it. CSR
arrays: ``covis_offsets`` (N+1), ``covis_frames`` / ``covis_run_start`` / ``covis_run_len`` (R).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from models.fov import as_words
from stages.base import Resources, Sample, Stage


def _fans(poses: np.ndarray, k: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Ground-plane positions (N, 2), unit forward (N, 2) and half FOV. Poses: OpenCV c2w, y down ~ world -z."""
    pos = poses[:, [0, 2], 3]  # first-frame OpenCV coordinates: x right, z forward form the ground plane
    fwd = poses[:, [0, 2], 2]
    fwd = fwd / np.maximum(np.linalg.norm(fwd, axis=1, keepdims=True), 1e-12)
    return pos, fwd, float(np.arctan2(width / 2, k[0, 0]))


def _rot(v: np.ndarray, ang: float) -> np.ndarray:
    c, s = np.cos(ang), np.sin(ang)
    return np.stack([c * v[..., 0] - s * v[..., 1], s * v[..., 0] + c * v[..., 1]], -1)


def _ray_hit(pi, ai, pj, aj, near, far):
    """Rays p_i + s a_i and p_j + t a_j cross with s, t >= 0 and near <= s <= far: (B, N) bool."""
    den = ai[:, None, 0] * aj[None, :, 1] - ai[:, None, 1] * aj[None, :, 0]
    wx, wy = pj[None, :, 0] - pi[:, None, 0], pj[None, :, 1] - pi[:, None, 1]
    with np.errstate(divide="ignore", invalid="ignore"):
        s = (wx * aj[None, :, 1] - wy * aj[None, :, 0]) / den
        t = (wx * ai[:, None, 1] - wy * ai[:, None, 0]) / den
    return (np.abs(den) > 1e-9) & (s >= near) & (s <= far) & (t >= 0)


def _in_fan(p, f, half, q, near, far):
    """Points q inside the fans (apex p, unit forward f, half angle, near..far); all broadcast: (B, N) bool."""
    d = q - p
    dist = np.linalg.norm(d, axis=-1)
    cos = (d * f).sum(-1) / np.maximum(dist, 1e-12)
    return (dist >= near) & (dist <= far) & (cos >= np.cos(half))


def rule_block(rows: np.ndarray, pos, fwd, half, near, far) -> np.ndarray:
    """Context-as-Memory rule for query frames ``rows`` against every frame: (B, N) bool."""
    pi, fi = pos[rows], fwd[rows]
    both = _ray_hit(pi, _rot(fi, half), pos, _rot(fwd, half), near, far)
    both &= _ray_hit(pi, _rot(fi, -half), pos, _rot(fwd, -half), near, far)
    # Parallel views (the paper's rule has no crossing for them): each optical axis, at mid range,
    # falls in the other camera's fan.
    mid = 0.5 * (near + far)
    parallel = _in_fan(pi[:, None], fi[:, None], half, (pos + mid * fwd)[None], near, far)
    parallel &= _in_fan(pos[None], fwd[None], half, (pi + mid * fi)[:, None], near, far)
    return both | parallel


def fibonacci_sphere(n: int) -> np.ndarray:
    """n nearly uniform unit directions (Fibonacci lattice), (n, 3)."""
    i = np.arange(n) + 0.5
    z = 1 - 2 * i / n
    r, a = np.sqrt(1 - z * z), np.pi * (1 + 5**0.5) * i
    return np.stack([r * np.cos(a), r * np.sin(a), z], -1)


def anchor_positions(centres: np.ndarray, cell: float) -> np.ndarray:
    """One camera position per occupied ``cell``-sized voxel: revisits add no anchors, so the point
    set grows with the area covered, not with the length of the roam."""
    keys = np.floor(centres / cell).astype(np.int64)
    _, first = np.unique(keys, axis=0, return_index=True)
    return centres[np.sort(first)]


def sphere_bitsets(poses, k, width, height, n_dirs, radius, far, chunk: int = 128) -> np.ndarray:
    """(N, words) uint64: which anchor-sphere points each frame sees (positive depth, in image, within far)."""
    anchors = anchor_positions(poses[:, :3, 3], radius)
    dirs = radius * fibonacci_sphere(n_dirs)
    out = np.zeros((len(poses), len(anchors), n_dirs), bool)
    for s in range(0, len(poses), chunk):
        rot, cen = poses[s : s + chunk, :3, :3], poses[s : s + chunk, :3, 3]
        # Only anchors a frame of this chunk could reach; the rest stay False.
        near = np.flatnonzero(np.linalg.norm(anchors[:, None] - cen[None], axis=-1).min(1) <= far + radius)
        if not len(near):
            continue
        pts = (anchors[near, None, :] + dirs[None]).reshape(-1, 3)
        # R^T p for every frame at once as one BLAS product: (P, 3) @ (3, T*3)
        xc = (pts @ rot.transpose(1, 0, 2).reshape(3, -1)).reshape(len(pts), len(rot), 3)
        xc -= np.einsum("ti,tij->tj", cen, rot)[None]
        z = xc[..., 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u, v = k[0, 0] * xc[..., 0] / z + k[0, 2], k[1, 1] * xc[..., 1] / z + k[1, 2]
        seen = (z > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
        seen &= np.einsum("ptj,ptj->pt", xc, xc) <= far * far
        out[s : s + chunk, near] = seen.T.reshape(len(rot), len(near), n_dirs)
    return as_words(np.packbits(out.reshape(len(poses), -1), axis=1))


def fov_block(rows: np.ndarray, bits: np.ndarray, counts: np.ndarray, lam: float, threshold: float) -> np.ndarray:
    """Eq. (3) overlap of the query frames ``rows`` with every earlier frame, thresholded: (B, N) bool."""
    hi = int(rows.max())  # only earlier frames matter
    # A frame sees only points within `far`: intersect over the words this block can see at all.
    cols = np.flatnonzero(np.bitwise_or.reduce(bits[rows], axis=0))
    q, c = bits[rows][:, cols], bits[:hi, cols]
    inter = np.bitwise_count(q[:, None, :] & c[None]).sum(-1, dtype=np.int32)
    nq = counts[rows][:, None]
    union = nq + counts[None, :hi] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        score = lam * np.where(union > 0, inter / union, 0) + (1 - lam) * np.where(nq > 0, inter / nq, 0)
    out = np.zeros((len(rows), len(bits)), bool)
    out[:, :hi] = score >= threshold
    return out


def runs_csr(blocks: list[tuple[np.ndarray, np.ndarray]], n: int) -> dict[str, np.ndarray]:
    """Runs of True in each row's earlier frames (j < i) -> CSR arrays; middle frame as the candidate."""
    starts_all, lens_all, counts = [], [], np.zeros(n, np.int64)
    for rows, co in blocks:
        co = co & (np.arange(co.shape[1])[None, :] < rows[:, None])
        d = np.diff(co.astype(np.int8), axis=1, prepend=0, append=0)
        r0, c0 = np.nonzero(d == 1)
        _, c1 = np.nonzero(d == -1)  # same row-major order: the k-th end closes the k-th start
        starts_all.append(c0.astype(np.int32))
        lens_all.append((c1 - c0).astype(np.int32))
        counts[rows] = np.bincount(r0, minlength=len(rows))
    start = np.concatenate(starts_all) if starts_all else np.zeros(0, np.int32)
    length = np.concatenate(lens_all) if lens_all else np.zeros(0, np.int32)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return {"covis_offsets": offsets, "covis_frames": start + length // 2, "covis_run_start": start,
            "covis_run_len": length}


def covisibility(poses: np.ndarray, k: np.ndarray, width: int, height: int, method: str = "fov", *,
                 near: float = 0.5, far: float = 10.0, n_dirs: int = 64,
                 radius: float = 2.0, lam: float = 0.5, threshold: float = 0.3, block: int = 16,
                 workers: int = 2) -> dict[str, np.ndarray]:
    """Per-frame Non-adj candidate lists (CSR) for a roam; rows are processed in blocks on threads."""
    n = len(poses)
    blocks = [np.arange(s, min(s + block, n)) for s in range(1, n, block)]
    if method == "rule":
        pos, fwd, half = _fans(poses, k, width)
        fn = lambda rows: rule_block(rows, pos, fwd, half, near, far)
    elif method == "fov":
        bits = sphere_bitsets(poses, k, width, height, n_dirs, radius, far)
        counts = np.bitwise_count(bits).sum(-1, dtype=np.int32)
        fn = lambda rows: fov_block(rows, bits, counts, lam, threshold)
    else:
        raise ValueError(f"method must be 'rule' or 'fov', got {method!r}")
    with ThreadPoolExecutor(max(workers, 1)) as ex:  # numpy releases the GIL in the heavy loops
        done = list(ex.map(lambda r: (r, fn(r)), blocks))
    return runs_csr(done, n)


def candidates(csr: dict[str, np.ndarray], i: int) -> np.ndarray:
    """The kept (one per run) earlier frames co-visible with frame i."""
    o = csr["covis_offsets"]
    return csr["covis_frames"][o[i] : o[i + 1]]


@dataclass
class FindCovisibleFrames(Stage):
    """For each frame of a long roam, the earlier frames sharing its view, one per adjacent run."""

    method: str = "rule"  # "rule" (the paper's, default) | "fov"
    near: float = 0.5
    far: float = 10.0
    threshold: float = 0.3
    n_dirs: int = 64
    radius: float = 2.0
    workers: int = 1
    resources: Resources = field(default_factory=lambda: Resources(cpus=1))
    version: str = "covis/1"
    # the settings that change the output, so changing one rebuilds (refresh key)
    output_fields = ("method", "near", "far", "threshold", "n_dirs", "radius")

    def __post_init__(self) -> None:
        if self.method not in ("fov", "rule"):
            raise ValueError(f"method must be 'fov' or 'rule', got {self.method!r}")
        if not 0 <= self.near < self.far:
            raise ValueError(f"need 0 <= near < far, got near={self.near} far={self.far}")

    def process(self, batch: list[Sample]) -> list[Sample]:
        for s in batch:
            if s.meta.get("layout") != "cam":
                continue
            csr = covisibility(
                s.arrays["poses"].astype(np.float64), s.arrays["intrinsics"].astype(np.float64), s.meta["width"],
                s.meta["height"], self.method, near=self.near, far=self.far,
                n_dirs=self.n_dirs, radius=self.radius, threshold=self.threshold, workers=self.workers,
            )
            s.arrays.update(csr)
            s.meta["covisibility"] = {"method": self.method, "near": self.near, "far": self.far,
                                      "threshold": self.threshold, "runs": len(csr["covis_frames"])}
        return batch
