"""Roam co-visibility: a second lap along the same circle finds the first lap; opposite views do not."""

from __future__ import annotations

import numpy as np
import pytest

from models.fov import intrinsics, relative_to
from pipelines.demo_multicam import roam_trajectory
from stages.covisibility import candidates, covisibility, runs_csr


def _roam(frames=160):
    p = roam_trajectory(frames, laps=2.0)  # frame i + frames/2 has exactly frame i's pose
    return relative_to(p, p[0])


def test_runs_csr_keeps_one_middle_frame_per_run():
    co = np.zeros((1, 12), bool)
    co[0, [1, 2, 3, 6, 9, 10]] = True  # frame 11's earlier co-visible frames: runs 1-3, 6, 9-10
    csr = runs_csr([(np.array([11]), co)], n=12)
    assert list(candidates(csr, 11)) == [2, 6, 10]  # start + len // 2
    o = csr["covis_offsets"]
    assert list(csr["covis_run_start"][o[11]:o[12]]) == [1, 6, 9]
    assert list(csr["covis_run_len"][o[11]:o[12]]) == [3, 1, 2]
    assert all(len(candidates(csr, i)) == 0 for i in range(11))
    # A frame never lists itself or a later frame, even if the block says so.
    co2 = np.ones((1, 5), bool)
    assert list(candidates(runs_csr([(np.array([2]), co2)], n=5), 2)) == [1]


@pytest.mark.parametrize("method", ["fov", "rule"])
def test_second_lap_revisits_first_lap(method):
    n, half = 160, 80
    csr = covisibility(_roam(n), intrinsics(52.67, 64, 36), 64, 36, method, workers=1)
    o = csr["covis_offsets"]
    assert o[0] == 0 and o[-1] == len(csr["covis_frames"]) and np.all(np.diff(o) >= 0)
    for i in (100, 130, 150):
        cands = candidates(csr, i)
        starts = csr["covis_run_start"][o[i]:o[i + 1]]
        lens = csr["covis_run_len"][o[i]:o[i + 1]]
        assert np.all(cands < i)
        assert np.all(np.diff(cands) >= 2)  # one per run: kept candidates are never adjacent
        # The same pose one lap earlier lies inside a kept run.
        assert np.any((starts <= i - half) & (i - half < starts + lens)), (i, list(zip(starts, lens)))
        # Facing the opposite way across the circle (half a lap earlier) is not co-visible.
        opposite = i - half // 2
        assert not np.any((starts <= opposite) & (opposite < starts + lens)), (i, list(zip(starts, lens)))


def test_unknown_method_is_a_value_error():
    with pytest.raises(ValueError, match="method"):
        covisibility(_roam(8), intrinsics(52.67, 64, 36), 64, 36, "magic")


def test_rule_crossing_rays_and_back_to_back():
    from stages.covisibility import _ray_hit, _rot, rule_block

    def fan(x, yaw_deg):  # ground-plane camera at (x, 0), yaw measured from +z towards +x
        a = np.radians(yaw_deg)
        return [x, 0.0], [np.sin(a), np.cos(a)]

    cams = [fan(0, 0), fan(2, -20), fan(2, 180), fan(0.5, 0)]  # converging pair, one facing away, a parallel twin
    pos, fwd = np.array([c[0] for c in cams]), np.array([c[1] for c in cams])
    co = rule_block(np.array([1, 2, 3]), pos, fwd, np.radians(26.335), 0.5, 10.0)
    assert co[0, 0]  # camera 1 turned 20 degrees towards camera 0
    # ... and that pair passes on the paper's rule alone: left rays cross and right rays cross, ahead.
    half = np.radians(26.335)
    for side in (half, -half):
        hit = _ray_hit(pos[[1]], _rot(fwd[[1]], side), pos[[0]], _rot(fwd[[0]], side), 0.5, 10.0)
        assert hit[0, 0]
    assert not _ray_hit(pos[[3]], _rot(fwd[[3]], half), pos[[0]], _rot(fwd[[0]], half), 0.5, 10.0)[0, 0]
    assert not co[1, 0] and not co[1, 1]  # camera 2 looks the other way
    assert co[2, 0]  # parallel, 0.5 m apart: no crossing, kept by the parallel-view clause
