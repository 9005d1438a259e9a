"""The run record's throughput (hours of footage per wall/CPU/GPU hour) from real builds: the Señorita
demo (pairs of 33-frame clips at 16 fps) and the multi-camera demo (scenes of equal-length videos)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipelines.dataset import DatasetFolder
from stages.camera_poses import LoadPoses
from stages.video import probe


def _record(ds: Path) -> dict:
    (entry,) = json.loads((ds / "dataset.json").read_text())["runs"]
    return json.loads((ds / entry["record"]).read_text())


def test_senorita_record_counts_the_footage_of_every_valid_pair(senorita_demo_dataset):
    rec = _record(senorita_demo_dataset)
    folder = DatasetFolder(senorita_demo_dataset, "senorita_long")
    accepted = [r for r in folder.live().inputs.values() if r["status"] == "accepted"]
    want_s = 0.0
    for r in accepted:  # both clips of each accepted pair, as probed
        src = json.loads(r["source"])
        for role in ("source", "target"):
            info = probe(src[f"{role}_abs"])
            want_s += info.frames / info.fps
    t = rec["throughput"]
    assert t["footage_hours"] * 3600 == pytest.approx(want_s, rel=1e-3)
    assert t["footage_hours_per_wall_hour"] == pytest.approx(t["footage_hours"] * 3600 / rec["wall_s"], rel=1e-2)
    assert t["footage_hours_per_cpu_hour"] == pytest.approx(t["footage_hours_per_wall_hour"] / t["cpus"], rel=1e-2)
    assert t["gpus"] == 0 and t["footage_hours_per_gpu_hour"] is None
    assert rec["status"] == "complete"


def test_multicam_record_counts_every_camera_of_every_scene(multicam_demo_dataset):
    rec = _record(multicam_demo_dataset)
    live = DatasetFolder(multicam_demo_dataset, "multicam").live()
    want_s = 0.0
    for r in live.inputs.values():
        if r["status"] != "accepted":
            continue
        src = json.loads(r["source"])
        if "scene_dir" in src:  # a scene: every camera's video
            for video in sorted((Path(src["scene_dir"]) / "videos").glob("*.mp4")):
                info = probe(video)
                want_s += info.frames / info.fps
        else:  # a roam: numbered frames at the stage's roam_fps
            want_s += len(list(Path(src["frames_dir"]).iterdir())) / LoadPoses().roam_fps  # the build's stage default
    assert want_s > 0
    assert rec["throughput"]["footage_hours"] * 3600 == pytest.approx(want_s, rel=1e-3)
