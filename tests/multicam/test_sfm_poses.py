"""The optional pycolmap backend: SfM poses of rendered static views match the cameras that rendered them."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("pycolmap", reason="optional SfM backend: pip install -c constraints.txt pycolmap")

from models.fov import relative_to
from pipelines.demo_multicam import write_views
from pipelines.runner import SequentialRunner
from stages.base import Sample
from stages.camera_poses import EstimatePoses, pose_problem


def test_sfm_recovers_rotations_and_translation_directions(tmp_path):
    pillar, broken = tmp_path / "views" / "pillar", tmp_path / "views" / "broken"
    truth = write_views(pillar, n=8)
    broken.mkdir()
    (broken / "0.png").write_bytes(b"not a png")
    inputs = [Sample(id=d.name, source={"layout": "frames", "frames_dir": str(d)}) for d in (broken, pillar)]
    bad, good = SequentialRunner().run([EstimatePoses(fov_deg=70.0)], inputs)
    assert bad.rejected and bad.reason in ("undecodable", "no_frames")
    assert not good.rejected, good.errors
    assert good.arrays["registered"].all() and good.meta["scale"].startswith("arbitrary")
    est = good.arrays["poses"].astype(np.float64)
    assert pose_problem(est) is None
    gt = relative_to(truth, truth[0])
    for i in range(1, len(gt)):
        r = gt[i, :3, :3].T @ est[i, :3, :3]
        assert np.degrees(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1))) < 2.0
        tg, te = gt[i, :3, 3], est[i, :3, 3]
        assert tg @ te / (np.linalg.norm(tg) * np.linalg.norm(te)) > 0.99
