"""The papers' evaluation formulas on precomputed features (encoders live in training/encoders.py).

Kept free of models so every formula is checked against a hand computation in tests.
Sources: VBench via DESIGN §7 (subject/background), memento App. D (aesthetic, semantic,
inter-shot), memory-v2v §4 (PSNR/LPIPS against history), CameraCtrl-style RotErr/TransErr.
LPIPS takes the network as an argument (training/evaluate.py ``load_lpips`` builds it offline).
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


def aesthetic(raw_scores: np.ndarray, norm: str = "memento") -> float:
    """Mean aesthetic score in [0, 1]: LAION predictor outputs on a 1-10 scale.

    memento App. D normalises (s - 1) / 9; DESIGN/VBench divide by 10. The paper's is the default.
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
    with torch.no_grad():
        for i in range(0, len(gen), batch):  # batched: a whole video through AlexNet at once can exhaust memory
            out.append(net(lpips_input(gen[i : i + batch]), lpips_input(ref[i : i + batch])).flatten())
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
