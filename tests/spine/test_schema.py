"""The per-corpus sample schema: real pipeline output conforms, the writer refuses what does not, and a
dataset written under an older schema is one clear error for every reader."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass

import numpy as np
import pytest

from pipelines.dataset import DatasetFolder
from pipelines.schema import MULTICAM, SCHEMAS, check_sample, npy_header
from pipelines.verify import verify
from pipelines.writer import SchemaViolation, encode_members
from stages.base import Sample, Stage
from tests.spine.toy import ToyConfig
from training.data import open_dataset, read_index


@pytest.mark.parametrize("fixture", ["senorita_demo_dataset", "memento_demo_dataset", "multicam_demo_dataset"])
def test_demo_builds_conform_and_record_their_schema(fixture, request):
    root = request.getfixturevalue(fixture)
    index = read_index(root)
    schema = SCHEMAS[index["corpus"]]
    assert index["schema"] == {"name": schema.corpus, "version": schema.version}
    n = 0
    for s in open_dataset(root, decode=False):
        members = {k: (npy_header(v) if k.endswith(".npy") else None) for k, v in s.items() if not k.startswith("__")}
        assert check_sample(schema.corpus, json.loads(s["json"]), members) == [], s["__key__"]
        n += 1
    assert n > 0
    problems, _ = verify(root)
    assert problems == []


def _scene(cams=("cam01", "cam02"), frames=3) -> Sample:
    s = Sample(id="scene", source={})
    s.meta = {"layout": "multicam", "cameras": list(cams), "frames": frames, "fps": 15.0, "width": 8, "height": 8,
              "videofov": {}}
    c = len(cams)
    s.arrays = {"poses": np.zeros((c, frames, 4, 4), np.float32), "poses_self": np.zeros((c, frames, 4, 4), np.float32),
                "intrinsics": np.eye(3, dtype=np.float32), "fov": np.zeros((c, 16), np.uint8),
                "scores": np.eye(c, dtype=np.float32)}
    s.blobs = {f"{cam}.mp4": b"x" for cam in cams}
    return s


def test_writer_refuses_a_sample_off_schema():
    assert "poses.npy" in encode_members(_scene(), "multicam")
    old = _scene()
    del old.arrays["poses"]
    old.arrays["cam01_poses"] = np.zeros((3, 4, 4), np.float32)  # the per-camera layout of schema multicam/1
    with pytest.raises(SchemaViolation, match=r"poses.npy missing.*not in schema multicam/2.*cam01_poses.npy"):
        encode_members(old, "multicam")
    short = _scene()
    short.arrays["poses"] = np.zeros((2, 2, 4, 4), np.float32)  # 2 pose frames for 3 video frames
    with pytest.raises(SchemaViolation, match="poses.npy: shape"):
        encode_members(short, "multicam")
    wrong = _scene()
    wrong.arrays["scores"] = wrong.arrays["scores"].astype(np.float64)
    with pytest.raises(SchemaViolation, match="dtype float64"):
        encode_members(wrong, "multicam")
    assert encode_members(Sample(id="t", source={}), "toy")  # corpora without a schema are not checked


def test_older_schema_dataset_is_one_clear_error(multicam_demo_dataset, tmp_path):
    root = tmp_path / "old"
    shutil.copytree(multicam_demo_dataset, root)
    index = json.loads((root / "dataset.json").read_text())
    index.pop("schema")  # a dataset from before versioning reads as version 1
    (root / "dataset.json").write_text(json.dumps(index))
    want = rf"schema multicam/1, this memcorpus reads multicam/{MULTICAM.version}"
    with pytest.raises(ValueError, match=want):
        read_index(root)
    with pytest.raises(ValueError, match=want):
        DatasetFolder(root, "multicam").index()


@dataclass
class EmitScenes(Stage):
    """Fills each input with a prepared scene; ``old`` inputs get the per-camera layout of schema multicam/1."""

    version: str = "emit/1"

    def process(self, batch: list[Sample]) -> list[Sample]:
        for s in batch:
            scene = _scene()
            s.meta, s.arrays, s.blobs = scene.meta, scene.arrays, scene.blobs
            if s.source["old"]:
                s.arrays["cam01_poses"] = s.arrays.pop("poses")[0]
        return batch


def test_verify_checks_every_sample_against_the_schema(tmp_path, monkeypatch):
    from pipelines.common import RunConfig, run_corpus

    cfg = ToyConfig(run=RunConfig(out=str(tmp_path), runner="sequential", progress=False))
    inputs = [Sample(id=name, source={"old": name == "old"}) for name in ("new", "old")]
    monkeypatch.setattr("pipelines.writer.check_sample", lambda *a: [])  # an older or foreign writer
    run_corpus("multicam", cfg, inputs, [EmitScenes()])
    monkeypatch.undo()
    problems, _ = verify(tmp_path)
    assert [p for p in problems if "schema" in p] == [p for p in problems if "sample old" in p] and problems
    assert "poses.npy missing" in problems[0] and "cam01_poses.npy" in problems[0]
    assert verify(tmp_path, quick=True)[0] == []  # --quick reads no payload, so it cannot see the layout
