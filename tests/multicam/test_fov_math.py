"""VideoFOV (Alg. 1): the fast geometric path equals the straightforward reference bit for bit."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from models import fov

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import reference_fov as ref


def _rot(axis, ang):
    a = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]])
    return np.eye(3) + np.sin(ang) * k + (1 - np.cos(ang)) * k @ k


def _traj(rng, frames=21):
    """Random rotation sweep plus translation, sometimes leaving the unit sphere."""
    ax, r0 = rng.normal(size=3), _rot(rng.normal(size=3), rng.uniform(0, np.pi))
    w, c0 = rng.uniform(-1.5, 1.5), rng.normal(size=3) * rng.choice([0, 0.3, 2])
    v = rng.normal(size=3) * rng.choice([0, 0.5, 3])
    p = np.tile(np.eye(4), (frames, 1, 1))
    for t, s in enumerate(np.linspace(0, 1, frames)):
        p[t, :3, :3], p[t, :3, 3] = r0 @ _rot(ax, w * s), c0 + v * s
    return p


def test_grid_is_the_reference_grid():
    _, _, x, y, z = fov.sphere_grid()
    rx, ry, rz = ref.sphere_points()
    assert x.size == 64_800
    assert np.array_equal(x.ravel(), rx) and np.array_equal(y.ravel(), ry) and np.array_equal(z.ravel(), rz)


def test_fast_mask_equals_reference_on_random_trajectories():
    rng = np.random.default_rng(1)
    pts = ref.sphere_points()
    for _ in range(12):
        p = _traj(rng)
        w, h = 64, int(rng.choice([36, 48, 64]))
        k = fov.intrinsics(rng.uniform(20, 120), w, h)
        fast = fov.fov_mask(p, k, w, h)
        slow = ref.video_fov(p, k, w, h, pts).reshape(fast.shape)
        assert np.array_equal(fast, slow), np.count_nonzero(fast != slow)


@pytest.mark.parametrize("case", ["identity", "straight_up", "principal_point_outside", "far_outside_sphere"])
def test_fast_mask_equals_reference_on_edge_cases(case):
    p = np.tile(np.eye(4), (3, 1, 1))
    k = fov.intrinsics(90, 64, 64)  # image edges at exactly 45 degrees
    if case == "straight_up":
        p[:, :3, :3] = _rot([1, 0, 0], np.pi / 2)
    if case == "principal_point_outside":
        k[0, 2] = -10.0  # the z > 0 test is no longer implied by the image bounds
    if case == "far_outside_sphere":
        p[:, :3, 3] = [0.0, 0.0, -5.0]
    fast = fov.fov_mask(p, k, 64, 64)
    slow = ref.video_fov(p, k, 64, 64, ref.sphere_points()).reshape(fast.shape)
    assert np.array_equal(fast, slow)
    assert fast.any()


def test_retrieve_scores_match_reference_and_make_geometric_sense():
    rng = np.random.default_rng(2)
    k = fov.intrinsics(52.67, 64, 64)
    target = np.tile(np.eye(4), (11, 1, 1))
    same = target.copy()
    behind = target.copy()
    behind[:, :3, :3] = _rot([0, 1, 0], np.pi)  # facing the other way
    pan = np.tile(np.eye(4), (11, 1, 1))
    for t in range(11):
        pan[t, :3, :3] = _rot([0, 1, 0], np.radians(4 * t))  # a 40-degree pan that starts at the target's view
    cached = [same, behind, pan, _traj(rng, 11), _traj(rng, 11)]
    order, scores = fov.retrieve(target, cached, k, [k] * 5, 64, 64, top_k=3)
    r_order, r_scores = ref.retrieve(target, cached, k, [k] * 5, 64, 64, top_k=3)
    assert np.max(np.abs(scores - r_scores)) <= 1e-6
    assert list(order) == list(r_order)
    assert scores[0] == pytest.approx(1.0) and scores[1] == 0.0
    # The pan contains every direction of the target: containment 1, so score = 0.5 * IoU + 0.5.
    n_t = fov.fov_mask(target, k, 64, 64).sum()
    n_pan = fov.fov_mask(pan, k, 64, 64).sum()
    assert scores[2] == pytest.approx(0.5 * n_t / n_pan + 0.5)
    assert order[0] == 0 and 1 not in order[:2]


def test_full_turn_sees_every_equator_cell():
    p = np.tile(np.eye(4), (36, 1, 1))
    for t in range(36):
        p[t, :3, :3] = _rot([0, 1, 0], np.radians(10 * t))
    m = fov.fov_mask(p, fov.intrinsics(52.67, 64, 64), 64, 64)
    assert m[89].all() and m[90].all() and not m[0].any() and not m[-1].any()


def test_rank_videos_counts_bits_exactly():
    rng = np.random.default_rng(3)
    cached = rng.integers(0, 256, (2000, 8100), dtype=np.uint8) & rng.integers(0, 256, (2000, 1), dtype=np.uint8)
    query = cached[17].copy()
    query[:4000] = 0  # the query sees only part of the sphere
    order, scores = fov.rank_videos(query, cached, lam=0.5, k=5)
    qb, cb = np.unpackbits(query).astype(bool), np.unpackbits(cached, axis=1).astype(bool)
    inter = (cb & qb).sum(1)
    union = (cb | qb).sum(1)
    expect = 0.5 * inter / union + 0.5 * inter / qb.sum()
    assert np.max(np.abs(scores - expect)) < 1e-12
    assert list(order) == list(np.argsort(-expect, kind="stable")[:5])
    assert len(fov.video_fov(np.eye(4)[None], fov.intrinsics(60, 32, 32), 32, 32)) == 8100


def test_bad_arguments_are_value_errors():
    with pytest.raises(ValueError, match="poses"):
        fov.fov_mask(np.eye(4), fov.intrinsics(60, 32, 32), 32, 32)
    with pytest.raises(ValueError, match="NaN"):
        fov.fov_mask(np.full((2, 4, 4), np.nan), fov.intrinsics(60, 32, 32), 32, 32)
    with pytest.raises(ValueError, match="lam"):
        fov.fov_scores(np.zeros(10, np.uint8), np.zeros((2, 10), np.uint8), lam=2)


def test_fast_mask_equals_reference_on_real_recammaster_trajectories(real_data):
    real = real_data / "recammaster_camera_extrinsics.json"
    import json

    from stages.camera_poses import intrinsics_from_focal, parse_recammaster, unreal_to_opencv

    rows = parse_recammaster(json.loads(real.read_text()))
    k = intrinsics_from_focal(24.0, 1280, 1280)
    for cam in ("cam01", "cam05", "cam09"):  # a pan, a dolly out of the unit sphere, an arc
        p = unreal_to_opencv(rows[cam])
        p = fov.relative_to(p, p[0])
        fast = fov.fov_mask(p, k, 1280, 1280)
        assert np.array_equal(fast, ref.video_fov(p, k, 1280, 1280, ref.sphere_points()).reshape(fast.shape))
