"""The papers' evaluation formulas on precomputed features (models live in training/evaluate_models.py).

Kept free of models so every formula is checked against a hand computation in tests.
Sources: VBench (subject/background consistency, aesthetic /10, overall consistency), Memento
(arXiv 2606.14667) App. D (inter-shot, character-grouped inter-shot, its own aesthetic scaling),
Context-as-Memory (arXiv 2506.03141) §4.1 "history context comparison" (PSNR/LPIPS between a revisited
view and its earlier generation), CameraCtrl-style RotErr/TransErr. LPIPS takes the network as an
argument (training/evaluate.py ``load_lpips`` builds it offline).
"""

from __future__ import annotations

import numpy as np

PSNR_CAP = 100.0  # dB reported for identical frames (an infinite PSNR would poison means)


def _unit(f: np.ndarray) -> np.ndarray:
    f = np.asarray(f, np.float64)
    return f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-12)


def temporal_consistency(feats: np.ndarray) -> float:
    """VBench subject/background consistency: mean_{i>=1} ½(max(0,cos(f_{i-1},f_i)) + max(0,cos(f_0,f_i)))."""
    f = _unit(feats)
    if len(f) < 2:
        return 1.0
    prev = np.clip((f[1:] * f[:-1]).sum(-1), 0, None)
    first = np.clip(f[1:] @ f[0], 0, None)
    return float(np.mean(0.5 * (prev + first)))


def aesthetic(raw_scores: np.ndarray, norm: str = "vbench") -> float:
    """Mean aesthetic score in [0, 1]: LAION predictor outputs on a 1-10 scale.

    VBench divides by 10 (the default, comparable with VBench tables and Memory-V2V's); Memento App. D.4
    normalises (s - 1) / 9 (``norm="memento"``, comparable with Memento's Table 1).
    """
    s = np.asarray(raw_scores, np.float64)
    if norm == "memento":
        return float(np.mean((s - 1.0) / 9.0))
    if norm == "vbench":
        return float(np.mean(s / 10.0))
    raise ValueError(f"aesthetic norm must be memento|vbench, got {norm!r}")


def semantic_consistency(video_feats: np.ndarray, text_feat: np.ndarray) -> float:
    """Cosine between the mean-pooled (then normalised) video feature and the text feature."""
    v = _unit(_unit(video_feats).mean(0))
    return float(v @ _unit(text_feat))


def inter_shot_consistency(shot_feats: list[np.ndarray]) -> float:
    """Mean cosine between adjacent shots' mean-pooled features (memento App. D.5)."""
    if len(shot_feats) < 2:
        raise ValueError("inter-shot consistency needs at least 2 shots")
    m = _unit(np.stack([_unit(f).mean(0) for f in shot_feats]))
    return float(np.mean((m[1:] * m[:-1]).sum(-1)))


def psnr_frames(gen: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Per-frame PSNR (dB, capped) between uint8 videos (T, H, W, 3) of the same shape."""
    if gen.shape != ref.shape:
        raise ValueError(f"PSNR needs equal shapes, got {gen.shape} vs {ref.shape}")
    d = gen.astype(np.float64) - ref.astype(np.float64)
    mse = (d**2).reshape(len(d), -1).mean(1)
    with np.errstate(divide="ignore"):
        p = 10.0 * np.log10(255.0**2 / mse)
    return np.minimum(p, PSNR_CAP)


def lpips_input(frames: np.ndarray):
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float32 tensor in [-1, 1], the range ``lpips.LPIPS`` reads."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    return x / 127.5 - 1.0


def lpips_frames(net, gen: np.ndarray, ref: np.ndarray, batch: int = 8) -> np.ndarray:
    """Per-frame LPIPS distance between uint8 videos (T, H, W, 3) of the same shape; ``net`` is an lpips.LPIPS."""
    import torch

    if gen.shape != ref.shape:
        raise ValueError(f"LPIPS needs equal shapes, got {gen.shape} vs {ref.shape}")
    out = []
    dev = next(net.parameters()).device  # the evaluator's --device
    with torch.no_grad():
        for i in range(0, len(gen), batch):  # batched: a whole video through AlexNet at once can exhaust memory
            a, b = lpips_input(gen[i : i + batch]).to(dev), lpips_input(ref[i : i + batch]).to(dev)
            out.append(net(a, b).flatten().cpu())
    return torch.cat(out).double().numpy() if out else np.zeros(0)


def _relative(poses: np.ndarray) -> np.ndarray:
    p = np.asarray(poses, np.float64)
    return np.linalg.inv(p[0])[None] @ p  # camera-to-world relative to the first frame


def camera_errors(gen: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """RotErr (sum of per-frame geodesic angles, degrees) and TransErr (sum of L2 distances of
    translations, each trajectory scaled to unit total length) between (T, 4, 4) camera-to-world poses."""
    a, b = _relative(gen), _relative(gt)
    rel = np.transpose(a[:, :3, :3], (0, 2, 1)) @ b[:, :3, :3]
    cos = np.clip((np.trace(rel, axis1=1, axis2=2) - 1.0) / 2.0, -1.0, 1.0)
    rot = float(np.degrees(np.arccos(cos)).sum())
    ta, tb = a[:, :3, 3], b[:, :3, 3]
    scale = lambda t: t / max(np.linalg.norm(np.diff(t, axis=0), axis=1).sum(), 1e-12)
    trans = float(np.linalg.norm(scale(ta) - scale(tb), axis=1).sum())
    return {"rot_err_deg": rot, "trans_err": trans}


def character_groups(captions: list[str], names: list[str] | None = None) -> dict[str, list[int]]:
    """Shots per character: ``[Person X]`` tags (Memento App. D.5) and the given names, matched as whole words."""
    import re

    found: dict[str, list[int]] = {}
    for i, c in enumerate(captions):
        tags = set(re.findall(r"\[([^\[\]]+)\]", c))
        tags |= {n for n in names or [] if n and re.search(rf"(?<!\w){re.escape(n)}(?!\w)", c, re.IGNORECASE)}
        for t in tags:
            found.setdefault(t, []).append(i)
    return found


def character_consistency(shot_feats: np.ndarray, groups: dict[str, list[int]]) -> float | None:
    """Memento App. D.5 character-grouped inter-shot consistency: per character, the mean pairwise cosine of
    the shots it appears in; then the mean over characters. None when no character appears in 2 shots."""
    f = _unit(shot_feats)
    per = []
    for shots in groups.values():
        if len(shots) < 2:
            continue
        g = f[shots]
        sims = g @ g.T
        iu = np.triu_indices(len(shots), 1)
        per.append(float(sims[iu].mean()))
    return float(np.mean(per)) if per else None


def revisit_pairs(
    poses: np.ndarray, segments: list[list[int]], max_deg: float = 5.0, max_dist: float = 0.05
) -> list[tuple[int, int]]:
    """(i, j) pairs: frame i of a later segment and the earlier frame j (more than a segment back) nearest its camera.

    Context-as-Memory §4.1 compares "newly generated frames with previously generated ones" on trajectories
    that turn away and come back; a pair counts when the two cameras differ by at most ``max_deg`` degrees
    and ``max_dist`` (in the trajectory's units, relative to its total path length).
    """
    p = np.asarray(poses, np.float64)
    path = max(np.linalg.norm(np.diff(p[:, :3, 3], axis=0), axis=1).sum(), 1e-12)
    out = []
    for a, b in segments[1:]:
        for i in range(a, min(b, len(p))):
            # more than a segment back: adjacent frames match trivially and say nothing about memory
            earlier = np.arange(0, max(0, min(a, i - (b - a))))
            if not len(earlier):
                continue
            rel = np.transpose(p[earlier, :3, :3], (0, 2, 1)) @ p[i, :3, :3]
            ang = np.degrees(np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1)))
            dist = np.linalg.norm(p[earlier, :3, 3] - p[i, :3, 3], axis=1) / path
            ok = (ang <= max_deg) & (dist <= max_dist)
            if ok.any():
                j = earlier[ok][np.argmin((ang / max_deg + dist / max_dist)[ok])]
                out.append((i, int(j)))
    return out
