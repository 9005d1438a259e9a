"""VideoFOV per scene (Memory-V2V Alg. 1): each camera's FOV bitset and the scene's pairwise scores.

Stored per multicam sample: ``<cam>_fov`` (uint8 packed bitset of the 180 x 360 grid, poses
relative to the reference camera's first frame, so ``models.fov.rank_videos`` can rank them for
a query built the same way) and ``scores`` (N x N float32, row i = target i, each row relative
to target i's first frame exactly as Alg. 1 prescribes). Roams pass through untouched.

The sphere radius r is Alg. 1's input: ``radius="auto"`` (default) sizes each target's sphere from
where the cameras' optical axes cross (models/fov_radius.py), a number fixes it in metres for all.
``meta["videofov"]`` records ``radii`` (per camera: its row of ``scores``), ``radius`` (the reference
camera's: the sphere of ``fov``) and ``radius_from``, so a query built later against ``fov``
(training/retrieval.py ``query_fov``) lands on the same sphere points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from models.fov import N_PHI, N_THETA, popcount, score_matrix, video_fov
from models.fov_radius import check_radius, resolve_radius
from stages.base import Resources, Sample, Stage


def topk_lists(names: list[str], scores: np.ndarray, k: int) -> dict[str, list[str]]:
    """Per target, the k best other videos (a video never retrieves itself), ties by name order."""
    out = {}
    for i, name in enumerate(names):
        order = [j for j in np.argsort(-scores[i], kind="stable") if j != i]
        out[name] = [names[j] for j in order[:k]]
    return out


@dataclass
class ComputeVideoFov(Stage):
    """Build each camera's VideoFOV bitset and the scene's Alg. 1 score matrix."""

    n_theta: int = N_THETA
    n_phi: int = N_PHI
    radius: float | str = "auto"  # metres, or "auto": the scene's axis-crossing distance (models/fov_radius.py)
    lam: float = 0.5
    top_k: int = 3
    resources: Resources = field(default_factory=lambda: Resources(cpus=1))
    version: str = "videofov/3"  # 3: scene-adaptive sphere radius, recorded; 2: one stacked bitset array per scene
    # the settings that change the output, so changing one rebuilds (refresh key)
    output_fields = ("n_theta", "n_phi", "radius", "lam", "top_k")

    def __post_init__(self) -> None:
        if not 0.0 <= self.lam <= 1.0:
            raise ValueError(f"lam must be in [0, 1], got {self.lam}")
        if self.n_theta < 2 or self.n_phi < 4 or self.top_k < 1:
            raise ValueError("n_theta >= 2, n_phi >= 4 and top_k >= 1 are required")
        check_radius(self.radius)  # a bad setting fails here, not on a worker

    def process(self, batch: list[Sample]) -> list[Sample]:
        for s in batch:
            if s.meta.get("layout") != "multicam":
                continue
            cams = s.meta["cameras"]
            k, w, h = s.arrays["intrinsics"].astype(np.float64), s.meta["width"], s.meta["height"]
            trajs = list(s.arrays["poses"].astype(np.float64))  # (C, F, 4, 4) in meta["cameras"] order
            radii, how = resolve_radius(self.radius, trajs)
            ref = cams.index(s.meta.get("reference_camera", cams[0]))  # poses are relative to its first frame
            grid = {"n_theta": self.n_theta, "n_phi": self.n_phi, "radius": float(radii[ref])}
            bits = [video_fov(p, k, w, h, **grid) for p in trajs]
            s.arrays["fov"] = np.stack(bits)  # (C, M/8) packed bitsets, one row per camera
            counts = {cam: int(popcount(b)) for cam, b in zip(cams, bits)}
            if min(counts.values()) == 0:
                empty = [c for c, n in counts.items() if n == 0]
                s.reject("empty_fov", stage=self.name, detail=f"cameras see no sphere direction: {empty}")
                continue
            scores = score_matrix(trajs, [k] * len(cams), w, h, self.lam, radii=radii, **grid)
            s.arrays["scores"] = scores.astype(np.float32)
            s.meta["videofov"] = {
                **grid, "radius_from": how, "radii": {c: round(float(r), 6) for c, r in zip(cams, radii)},
                "lam": self.lam, "bits_frame": "reference camera, first frame", "counts": counts,
                "topk": topk_lists(cams, scores, self.top_k),
            }
        return batch
