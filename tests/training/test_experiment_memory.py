"""The memory experiment's harness: its world, its arms, its pairing, its intervals, its report."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from training.experiment_memory import ARMS, Settings, evaluate, memory_for, run
from training.experiment_report import bootstrap_ci, write_report
from training.experiment_world import DISTRACTORS, REVISITS, GeometryPool, held_out

TINY = Settings(steps=4, batch=2, seeds=(0, 1), n_test=6, pool=4, n_boot=100, layers=1, heads=2, head_dim=12)


def _centre_gap(yaws: np.ndarray) -> np.ndarray:
    """Angular distance (deg) of each candidate's mean yaw from the target's."""
    return np.abs((yaws[1:].mean(1) - yaws[0].mean() + 180) % 360 - 180)


def test_videofov_ranks_the_revisits_first_and_painting_keeps_the_geometry():
    pool = GeometryPool(6, seed=3)
    for yaws, ranked in zip(pool.yaws, pool.ranked):
        revisits = set(np.argsort(_centre_gap(yaws))[:REVISITS].tolist())
        assert set(ranked[:REVISITS].tolist()) == revisits  # Alg. 1 finds the videos that cover the target
        assert len(ranked) == REVISITS + DISTRACTORS
    s = held_out(1, seed=4)[0]
    torch.testing.assert_close(s.cams[0, 0], torch.eye(4)[:3].flatten())  # relative to the target's first frame
    # Revisits see the target's places: some revisit frame is closer to a target frame than any distractor's.
    tgt = s.video(0)
    err = [min(float((tgt[:, f] - s.video(1 + c)[:, g]).abs().mean()) for f in range(3) for g in range(3))
           for c in range(REVISITS + DISTRACTORS)]  # fmt: skip
    assert min(err[c] for c in s.ranked[:REVISITS]) < min(err[c] for c in s.ranked[REVISITS:])


def test_each_arm_picks_its_memory():
    a, b = held_out(2, seed=5)
    rng = np.random.default_rng(0)
    assert memory_for("none", a, b, 3, rng) == []
    assert memory_for("fov", a, b, 3, rng) == [1 + int(i) for i in a.ranked[:3]]
    assert memory_for("shuffled", a, b, 3, rng) == [1 + int(i) for i in b.ranked[:3]]
    assert memory_for("oracle", a, b, 3, rng) == [0] + [1 + int(i) for i in a.ranked[:2]]
    r = memory_for("random", a, b, 3, rng)
    assert len(set(r)) == 3 and all(1 <= i <= REVISITS + DISTRACTORS for i in r)
    with pytest.raises(ValueError, match="arm"):
        memory_for("best", a, b, 3, rng)


def test_every_arm_sees_the_same_targets_noise_and_sigma():
    tests = held_out(5, seed=6)
    # A model that ignores memory: then every arm must score exactly the same, target by target.
    blind = evaluate(lambda z, xt, s: torch.zeros_like(xt), tests, TINY, chunk=2)
    for arm in ARMS[1:]:
        for m in ("loss", "x0_psnr"):
            np.testing.assert_array_equal(blind[arm][m], blind["none"][m])
    assert len(np.unique(blind["none"]["loss"][:, 0])) == 5  # ... while targets differ
    # A model that returns its first memory video: now the arms differ, and the oracle (the target itself) wins.
    copy = evaluate(lambda z, xt, s: (xt - z["memory"][0]) / s.view(-1, 1, 1, 1, 1) if z["memory"] else 0 * xt,
                    tests, TINY, chunk=2)  # fmt: skip
    assert np.all(copy["oracle"]["x0_psnr"] > 60)
    assert copy["fov"]["x0_psnr"].mean() > copy["shuffled"]["x0_psnr"].mean()


def test_bootstrap_interval_on_known_cases():
    assert bootstrap_ci(np.full((3, 50), 0.25), n_boot=200) == pytest.approx((0.25, 0.25))
    d = np.random.default_rng(1).normal(0.3, 1.0, (3, 400))
    lo, hi = bootstrap_ci(d, n_boot=2000)
    assert lo < d.mean() < hi
    assert hi - lo == pytest.approx(2 * 1.96 / np.sqrt(d.size), rel=0.15)  # the normal-theory width


def test_report_has_the_agreed_shape(tmp_path):
    res = run(TINY, log=lambda *_: None)
    write_report(res, TINY, tmp_path / "experiment_memory.json")
    doc = json.loads((tmp_path / "experiment_memory.json").read_text())
    assert set(doc) == {"arms", "comparisons"}
    assert set(doc["arms"]) == set(ARMS)
    for v in doc["arms"].values():
        assert set(v) == {"loss", "x0_psnr"} and all(set(v[m]) == {"0.3", "0.6", "0.9"} for m in v)
    assert set(doc["comparisons"]) == {"fov_vs_none", "fov_vs_random", "oracle_vs_fov", "shuffled_vs_none"}
    for c in doc["comparisons"].values():
        assert set(c) == {"loss_diff", "loss_ci95", "psnr_diff", "psnr_ci95"}
        assert c["psnr_ci95"][0] <= c["psnr_diff"] <= c["psnr_ci95"][1]
        assert c["loss_ci95"][0] <= c["loss_diff"] <= c["loss_ci95"][1]
    c = doc["comparisons"]["fov_vs_none"]
    assert c["psnr_diff"] == pytest.approx(
        doc["arms"]["fov"]["x0_psnr"]["0.6"] - doc["arms"]["none"]["x0_psnr"]["0.6"]
    )
    assert (tmp_path / "experiment_memory.png").stat().st_size > 1000


def test_settings_reject_mistakes():
    with pytest.raises(ValueError, match="compare_sigma"):
        replace(TINY, compare_sigma=0.5)
