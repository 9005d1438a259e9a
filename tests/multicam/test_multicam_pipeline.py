"""The multicam corpus end to end on generated scenes: scores with ground truth, captions, CLI, dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models.fov import rank_videos
from pipelines.build_multicam_corpus import MulticamConfig, build_inputs, build_stages, main
from pipelines.common import RunConfig
from pipelines.runner import SequentialRunner
from stages.multicam_captions import CaptionWindows, caption_windows


@pytest.fixture(scope="module")
def built(demo_root, tmp_path_factory):
    cfg = MulticamConfig(multicam=str(demo_root / "multicam"), roams=str(demo_root / "cam"),
                         run=RunConfig(out=str(tmp_path_factory.mktemp("out") / "ds"), runner="sequential"))
    out = list(SequentialRunner().run(build_stages(cfg), build_inputs(cfg)))
    return {s.source.get("scene_dir", s.source.get("frames_dir", "")).rsplit("/", 1)[-1]: s for s in out}


def test_scene_scores_follow_the_cameras_directions(built):
    s = built["scene1"]
    assert not s.rejected, s.errors
    cams = s.meta["cameras"]
    scores = s.arrays["scores"]
    assert scores.shape == (10, 10) and scores.dtype == np.float32
    assert np.allclose(np.diag(scores), 1.0)
    front = [cams.index(c) for c in ("cam01", "cam02", "cam03", "cam04")]
    back = [cams.index("cam09"), cams.index("cam10")]
    # cam09/cam10 face the opposite wall from cam01-04: no shared direction on the sphere.
    assert scores[np.ix_(front, back)].max() == 0 and scores[np.ix_(back, front)].max() == 0
    assert s.meta["videofov"]["topk"]["cam09"][0] == "cam10"
    assert not set(s.meta["videofov"]["topk"]["cam01"]) & {"cam09", "cam10"}
    # The reference camera's row is Alg. 1 on the stored bitsets (they share its first frame).
    bits = s.arrays["fov"]
    assert bits.shape == (10, 8100) and bits.dtype == np.uint8
    assert s.arrays["poses"].shape == (10, 21, 4, 4) and s.arrays["poses_self"].shape == (10, 21, 4, 4)
    _, row = rank_videos(bits[cams.index("cam01")], bits)
    assert np.max(np.abs(row - scores[cams.index("cam01")])) < 1e-6


def test_roam_gets_covisibility_and_skipped_captions(built):
    s = built["roam1"]
    assert not s.rejected, s.errors
    o = s.arrays["covis_offsets"]
    assert len(o) == 97 and o[-1] == len(s.arrays["covis_frames"]) > 0
    assert s.meta["captions"] == {"skipped": "no captioner configured (captions.captioner is None)"}
    assert {k for k, v in built.items() if v.rejected} == {"scene_nan", "scene_short", "scene_mirror", "roam_short"}


def test_caption_windows_every_77_frames():
    assert caption_windows(240) == [(0, 77), (77, 154), (154, 240)]  # a 9-frame tail joins the last window
    assert caption_windows(81) == [(0, 81)]
    assert caption_windows(7601)[-1] == (7546, 7601) and len(caption_windows(7601)) == 99


def test_configured_captioner_sees_each_window(built, monkeypatch):
    import models.captioner

    seen = []

    class Fake:
        def caption_clip(self, frames, fps):
            seen.append((frames.shape, fps))
            return f"window of {len(frames)} frames"

    monkeypatch.setattr(models.captioner, "build_captioner", lambda backend, model=None: Fake())
    stage = CaptionWindows(captioner="transformers", model="/nowhere", window=45)
    stage.setup()
    (roam,) = stage([built["roam1"]])
    # 96 frames in windows of 45: the 6-frame tail joins the second window
    assert [c["text"] for c in roam.meta["captions"]] == ["window of 45 frames", "window of 51 frames"]
    assert seen[0][0] == (45, 32, 48, 3) and seen[0][1] == 30.0
    (scene,) = stage([built["scene2"]])
    assert set(scene.meta["captions"]) == set(scene.meta["cameras"])
    assert scene.meta["captions"]["cam05"] == [{"start": 0, "end": 21, "text": "window of 21 frames"}]


def test_fov_command_prints_json(demo_root, capsys):
    from pipelines.cli import main as cli

    scene = demo_root / "multicam" / "train" / "f24_aperture5" / "scene1"
    assert cli(["fov", str(scene), "--json", "--top-k", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["videos"][0] == "cam01" and len(out["scores"]) == 10 and len(out["scores"][0]) == 10
    assert out["topk"]["cam09"] == ["cam10", out["topk"]["cam09"][1]] and len(out["topk"]["cam01"]) == 2
    assert cli(["fov", str(scene.parent / "scene_nan")]) == 2


def test_main_builds_dataset_and_second_run_adds_nothing(demo_root, tmp_path):
    from pipelines.dataset import DatasetFolder

    argv = ["--runner", "sequential", "--out", str(tmp_path / "ds"), "--multicam", str(demo_root / "multicam"),
            "--roams", str(demo_root / "cam")]
    assert main(argv) == 0
    rows = DatasetFolder(tmp_path / "ds", "multicam").rows("inputs")
    assert len(rows) == 7
    assert sorted(r["status"] for r in rows) == ["accepted"] * 3 + ["rejected"] * 4
    shards = json.loads((tmp_path / "ds" / "dataset.json").read_text())["shards"]
    assert main(argv) == 0
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text())["shards"] == shards
    assert len(DatasetFolder(tmp_path / "ds", "multicam").rows("inputs")) == 7
