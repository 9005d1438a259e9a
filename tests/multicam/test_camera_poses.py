"""Pose ingest: Unreal (left-handed, cm, row vectors) -> OpenCV camera-to-world metres, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from models.fov import relative_to
from pipelines.demo_multicam import BROKEN, scene_trajectories
from pipelines.runner import SequentialRunner
from stages.base import Sample
from stages.camera_poses import (
    LoadPoses,
    focal_from_folder,
    opencv_to_unreal,
    parse_cam_json,
    parse_recammaster,
    pose_problem,
    rotator_rows,
    rows_to_rotator,
    unreal_to_opencv,
)


@pytest.fixture(scope="module")
def real_poses(real_data):
    import json

    rows = parse_recammaster(json.loads((real_data / "recammaster_camera_extrinsics.json").read_text()))
    return {c: unreal_to_opencv(r) for c, r in rows.items()}


def test_real_file_shape_and_shared_first_frame(real_poses):
    assert sorted(real_poses) == [f"cam{i:02d}" for i in range(1, 11)]
    assert all(p.shape == (81, 4, 4) for p in real_poses.values())
    first = real_poses["cam01"][0]
    assert all(np.array_equal(p[0], first) for p in real_poses.values())
    # Unreal's identity rotation at (3390, 1380, 240) cm: looking along world +x, 2.4 m up.
    assert np.allclose(first[:3, 3], [33.90, -13.80, 2.40])
    assert np.allclose(first[:3, 2], [1, 0, 0]) and np.allclose(first[:3, 1], [0, 0, -1])
    for p in real_poses.values():
        assert pose_problem(p) is None
        assert np.allclose(np.linalg.det(p[:, :3, :3]), 1.0)


def test_real_pans_rotate_in_opposite_directions_without_moving(real_poses):
    rel = {c: relative_to(p, p[0]) for c, p in real_poses.items()}
    fwd1, fwd2 = rel["cam01"][-1, :3, 2], rel["cam02"][-1, :3, 2]
    # 20 degrees each way: forward's x (camera right) has opposite sign, y (down) stays 0.
    assert fwd1[0] == pytest.approx(np.sin(np.radians(19.88)), abs=2e-3) and fwd2[0] == pytest.approx(-fwd1[0])
    assert abs(fwd1[1]) < 1e-6 and abs(fwd2[1]) < 1e-6
    assert np.allclose(rel["cam01"][:, :3, 3], 0) and np.allclose(rel["cam02"][:, :3, 3], 0)
    # Tilts: cam03 ends looking up (negative y in OpenCV), cam04 down.
    assert rel["cam03"][-1, 1, 2] < -0.1 and rel["cam04"][-1, 1, 2] > 0.1
    # Dollies: cam05 moves ~2 m forward along its optical axis, cam06 the same distance back.
    assert np.allclose(rel["cam05"][-1, :3, 3], [0, 0, 1.9876], atol=1e-3)
    assert np.allclose(rel["cam06"][-1, :3, 3], [0, 0, -1.9876], atol=1e-3)
    assert np.allclose(rel["cam05"][:, :3, :3], np.eye(3))


def test_conversion_round_trips_and_hand_cases():
    rows = np.tile(np.eye(4), (2, 1, 1))
    rows[1, :3, :3] = rotator_rows([0.0], [90.0], [0.0])[0]  # yaw +90: Unreal turns right, towards +Y
    rows[1, 3, :3] = [0, 100, 0]  # 1 m to Unreal's right (+Y) -> -y in our right-handed world
    c2w = unreal_to_opencv(rows)
    assert np.allclose(c2w[1, :3, 3], [0, -1, 0])
    assert np.allclose(c2w[1, :3, 2], [0, -1, 0])  # looking to the right of the first camera
    assert np.allclose(relative_to(c2w, c2w[0])[1, :3, 2], [1, 0, 0])  # = camera-right of frame 0
    assert np.allclose(opencv_to_unreal(c2w), rows)
    r = rotator_rows([10, -5], [30, 200], [3, 0])
    assert np.allclose(rows_to_rotator(r), [[10, 30, 3], [-5, -160, 0]])


def test_pose_problems_are_named():
    good = unreal_to_opencv(np.tile(np.eye(4), (3, 1, 1)))
    nan, scaled, mirror = good.copy(), good.copy(), good.copy()
    nan[1, 0, 3] = np.nan
    scaled[2, :3, :3] *= 1.1
    mirror[:, :3, 0] *= -1
    assert pose_problem(good) is None
    assert pose_problem(nan)[0] == "pose_not_finite"
    assert pose_problem(scaled)[0] == "pose_not_rigid"
    assert pose_problem(mirror)[0] == "pose_reflection"


def test_parsers_reject_malformed_input():
    assert focal_from_folder("f24_aperture5") == 24.0 and focal_from_folder("35_aperture2.4") == 35.0
    with pytest.raises(ValueError, match="aperture"):
        focal_from_folder("scene1")
    with pytest.raises(ValueError, match="16 numbers"):
        parse_recammaster({"frame0": {"cam01": "[1 0 0] [0 1 0]"}})
    with pytest.raises(ValueError, match="position"):
        parse_cam_json([{"rotation": [0, 0, 0]}])
    rows, fov = parse_cam_json({"0": {"position": [100, 0, 0], "rotation": [0, 0, 0]}})
    assert fov is None and np.allclose(unreal_to_opencv(rows)[0, :3, 3], [1, 0, 0])


def test_load_scene_recovers_generated_poses(demo_root):
    split = demo_root / "multicam" / "train" / "f24_aperture5"
    inputs = [Sample(id=p.name, source={"layout": "multicam", "scene_dir": str(p)}) for p in sorted(split.iterdir())]
    out = {s.id: s for s in SequentialRunner().run([LoadPoses()], inputs)}
    truth = scene_trajectories(21, seed=0)
    s = out["scene1"]
    assert not s.rejected, s.errors
    ref = truth["cam01"][0]
    assert s.meta["cameras"] == sorted(truth) and s.arrays["poses"].shape == (len(truth), 21, 4, 4)
    for cam, p in truth.items():
        i = s.meta["cameras"].index(cam)
        assert np.allclose(s.arrays["poses"][i], relative_to(p, ref), atol=1e-5)
        assert np.allclose(s.arrays["poses_self"][i][0], np.eye(4), atol=1e-6)
        assert s.blobs[f"{cam}.mp4"][:12].find(b"ftyp") == 4
    assert s.arrays["intrinsics"][0, 0] == pytest.approx(24 / 23.76 * 32)
    assert s.meta["frames"] == 21 and s.meta["width"] == 32 and s.meta["focal_mm"] == 24.0
    for name, reason in BROKEN.items():
        if name.startswith("scene"):
            assert out[name].rejected and out[name].reason == reason, (name, out[name].errors)


def test_load_roam_recovers_generated_poses(demo_root):
    from pipelines.demo_multicam import roam_trajectory

    cam = demo_root / "cam"
    inputs = [Sample(id=n, source={"layout": "cam", "frames_dir": str(cam / "frames" / n),
                                   "pose_json": str(cam / "jsons" / f"{n}.json")}) for n in ("roam1", "roam_short")]
    good, short = SequentialRunner().run([LoadPoses()], inputs)
    truth = roam_trajectory(96)
    assert np.allclose(good.arrays["poses"], relative_to(truth, truth[0]), atol=1e-4)
    assert good.meta["fov_deg"] == pytest.approx(52.67) and good.meta["frames"] == 96
    assert "roam.mp4" in good.blobs
    assert short.rejected and short.reason == BROKEN["roam_short"]
