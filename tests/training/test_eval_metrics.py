"""Metric properties that must hold, and formulas against hand computations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training import metrics as M
from training.evaluate import evaluate_video, write_report


def _video(t=8, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    frames = np.stack([np.roll(base, 2 * i, axis=1) for i in range(t)])  # a slow pan
    return frames


def test_consistency_formula_by_hand():
    f = np.array([[1, 0], [1, 1], [0, 1]], float)
    c = np.sqrt(0.5)
    # i=1: ½(cos(f0,f1) + cos(f0,f1)) = c ; i=2: ½(cos(f1,f2) + max(0, cos(f0,f2))) = ½(c + 0)
    assert M.temporal_consistency(f) == pytest.approx((c + 0.5 * c) / 2)
    assert M.temporal_consistency(np.tile([[0.3, -2.0, 1.0]], (5, 1))) == pytest.approx(1.0)


def test_psnr_cap_and_value():
    a = np.full((2, 4, 4, 3), 100, np.uint8)
    assert M.psnr_frames(a, a).tolist() == [M.PSNR_CAP, M.PSNR_CAP]
    b = a.copy()
    b[1] += 10  # mse = 100
    assert M.psnr_frames(a, b)[1] == pytest.approx(10 * np.log10(255**2 / 100))


def test_aesthetic_and_semantic_and_inter_shot_by_hand():
    assert M.aesthetic(np.array([1.0, 10.0])) == pytest.approx(0.5)
    assert M.aesthetic(np.array([5.0]), "vbench") == pytest.approx(0.5)
    v = np.array([[1, 0], [0, 1]], float)
    assert M.semantic_consistency(v, np.array([1.0, 1.0])) == pytest.approx(1.0)
    shots = [np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), np.array([[0.0, 2.0]])]
    assert M.inter_shot_consistency(shots) == pytest.approx(0.5)


def test_camera_errors():
    t = 5
    gt = np.tile(np.eye(4), (t, 1, 1))
    gt[:, 0, 3] = np.arange(t)
    assert M.camera_errors(gt, gt) == {"rot_err_deg": pytest.approx(0.0), "trans_err": pytest.approx(0.0)}
    scaled = gt.copy()
    scaled[:, 0, 3] *= 3  # same path at another scale: translation error is scale-free
    assert M.camera_errors(scaled, gt)["trans_err"] == pytest.approx(0.0, abs=1e-9)
    rot = gt.copy()
    th = np.radians(10)
    rot[-1, :3, :3] = [[np.cos(th), 0, np.sin(th)], [0, 1, 0], [-np.sin(th), 0, np.cos(th)]]
    assert M.camera_errors(rot, gt)["rot_err_deg"] == pytest.approx(10.0)


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    from models.tiny_encoders import build_clip, build_dinov2
    from training.encoders import AestheticHead, ClipEncoder, DinoEncoder

    d = tmp_path_factory.mktemp("enc")
    build_dinov2(d / "dinov2")
    build_clip(d / "clip")
    clip = ClipEncoder(str(d / "clip"))
    return DinoEncoder(str(d / "dinov2")), clip, AestheticHead(None, clip.dim)


def test_static_video_scores_one_and_shuffling_lowers_it(encoders, tmp_path):
    dino, clip, head = encoders
    still = np.repeat(_video(1), 8, axis=0)
    m, _ = evaluate_video(still, dino, clip)
    assert m["subject_consistency"] == pytest.approx(1.0, abs=1e-6)
    assert m["background_consistency"] == pytest.approx(1.0, abs=1e-6)
    # a smooth sequence of distinct frames vs the same frames in shuffled order
    rng = np.random.default_rng(1)
    frames = np.stack([np.full((32, 32, 3), 0, np.uint8) for _ in range(10)])
    for i in range(10):
        frames[i, :, : 3 * (i + 1)] = 255  # a bar growing smoothly
    smooth, _ = evaluate_video(frames, dino)
    shuffled, _ = evaluate_video(frames[rng.permutation(10)], dino)
    assert shuffled["subject_consistency"] < smooth["subject_consistency"]
    m, curves = evaluate_video(still, dino, clip, head, prompt="a red car", history=still, shots=[(0, 4), (4, 8)])
    assert m["history_psnr"] == M.PSNR_CAP and -1 <= m["semantic_consistency"] <= 1
    assert m["inter_shot_subject"] == pytest.approx(1.0, abs=1e-6)
    written = write_report(tmp_path, m, curves)
    assert json.loads((tmp_path / "metrics.json").read_text())["history_psnr"] == M.PSNR_CAP
    assert all(p.exists() and p.stat().st_size > 0 for p in written) and any(p.suffix == ".png" for p in written)
