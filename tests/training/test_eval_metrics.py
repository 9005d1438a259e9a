"""Metric properties that must hold, and formulas against hand computations."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.geometry import yaw_pose
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
    assert M.aesthetic(np.array([5.0])) == pytest.approx(0.5)  # VBench: score / 10, the default
    assert M.aesthetic(np.array([1.0, 10.0]), "memento") == pytest.approx(0.5)  # Memento App. D.4: (s - 1) / 9
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
    from models.tiny import build_tiny
    from training.encoders import AestheticHead
    from training.evaluate_models import ImageEncoder

    d = tmp_path_factory.mktemp("enc")
    clip = ImageEncoder(str(build_tiny("clip", d)), "clip", "--clip")
    return ImageEncoder(str(build_tiny("dinov2", d)), "dino", "--dino"), clip, AestheticHead(None, clip.dim)


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


def test_noise_lowers_consistency_monotonically(encoders):
    dino, clip, _ = encoders
    still = np.repeat(_video(1), 6, axis=0)
    rng = np.random.default_rng(3)
    scores = []
    for sigma in (0, 20, 80):
        noisy = np.clip(still + rng.normal(0, sigma, still.shape), 0, 255).astype(np.uint8)
        m, _ = evaluate_video(noisy, dino, clip)
        scores.append((m["subject_consistency"], m["background_consistency"]))
    assert scores[0] == pytest.approx((1.0, 1.0), abs=1e-6)
    assert scores[0][0] > scores[1][0] > scores[2][0] and scores[0][1] > scores[1][1] > scores[2][1]


def test_character_groups_and_consistency_by_hand():
    caps = ["[Person A] walks in", "Anna and [Person B] talk", "[Person A] sits with Anna", "an empty street"]
    groups = M.character_groups(caps, ["Anna", "Bob"])
    assert groups == {"Person A": [0, 2], "Anna": [1, 2], "Person B": [1]}
    f = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [5.0, 5.0]])
    c = np.sqrt(0.5)
    # Person A: cos(f0, f2) = c; Anna: cos(f1, f2) = c; Person B alone is skipped
    assert M.character_consistency(f, groups) == pytest.approx(c)
    assert M.character_consistency(f, {"x": [3]}) is None
    assert M.character_consistency(np.ones((3, 4)), {"x": [0, 1, 2]}) == pytest.approx(1.0)



def test_revisit_pairs_match_the_way_back_to_the_way_out():
    # Context-as-Memory §4.1: turn 40 degrees away in 10-degree steps and come back
    yaws = [0, 10, 20, 30, 40, 30, 20, 10, 0]
    poses = np.stack([yaw_pose(y) for y in yaws])
    pairs = M.revisit_pairs(poses, [[0, 3], [3, 6], [6, 9]], max_deg=1.0)
    assert pairs == [(6, 2), (7, 1), (8, 0)]  # frame 5 (yaw 30) is only one segment from frame 3: not counted
    assert all(yaws[i] == yaws[j] for i, j in pairs)
    assert M.revisit_pairs(poses, [[0, 9]]) == []


def test_model_records_hash_content_and_flag_tiny_models(tmp_path, encoders):
    from models.tiny import build_tiny
    from training.evaluate_models import content_hash, record

    dino, _, _ = encoders
    assert dino.record["tiny_random"] and dino.record["sha256"] == content_hash(dino.record["path"])
    f = tmp_path / "head.pth"
    f.write_bytes(b"a")
    h1 = record(f, "head")
    f.write_bytes(b"b")
    assert h1["sha256"] != record(f, "head")["sha256"] and not h1["tiny_random"]
    d = build_tiny("dinov2", tmp_path / "m")
    assert content_hash(d) == dino.record["sha256"]  # same code, same seed: the same tiny weights


def test_viclip_without_vbench_is_a_clear_error(tmp_path):
    from training.evaluate_models import ViClip

    ckpt = tmp_path / "ViClip-InternVid-10M-FLT.pth"
    ckpt.write_bytes(b"x")
    with pytest.raises(ValueError, match="vbench"):
        ViClip(str(ckpt))
    with pytest.raises(ValueError, match="--viclip"):
        ViClip(str(tmp_path / "missing.pth"))


def test_cli_records_models_and_warns_loudly_on_tiny_ones(encoders, tmp_path, capsys):
    import argparse

    from stages.video import encode_mp4
    from training.evaluate import add_arguments, run

    dino, clip, _ = encoders
    (tmp_path / "v.mp4").write_bytes(encode_mp4(np.repeat(_video(2), 4, axis=0), 8.0))
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(
        [
            str(tmp_path / "v.mp4"),
            "--dino",
            dino.record["path"],
            "--clip",
            clip.record["path"],
            "--prompt",
            "a red car",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "e"),
        ]
    )
    assert run(args) == 0
    m = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert "TINY RANDOM" in m["WARNING"] and "TINY RANDOM" in capsys.readouterr().err
    assert set(m["models"]) == {"subject_consistency", "background_consistency", "semantic_consistency"}
    assert m["models"]["semantic_consistency"]["path"] == clip.record["path"]
    assert m["semantic_model"].startswith("CLIP") and "generation" not in m  # no generation.json beside it
