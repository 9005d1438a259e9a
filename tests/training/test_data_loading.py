"""open_dataset reads what the real writer committed: every live sample once, decoded, and nothing else."""

from __future__ import annotations

import json
import shutil

import pytest
import webdataset as wds

from pipelines.common import RunConfig, run_corpus
from pipelines.dataset import DatasetFolder
from tests.spine.toy import Square, ToyConfig, toy_inputs
from training.data import open_dataset, read_index


@pytest.fixture
def toy(tmp_path):
    """A toy corpus through run_corpus and the real writer: 20 inputs, 16 accepted, 2 samples per shard."""
    cfg = ToyConfig(run=RunConfig(out=str(tmp_path), runner="sequential", progress=False, shard_max_samples=2))
    run_corpus("toy", cfg, toy_inputs(range(1, 21)), [Square()])
    return tmp_path, {r["key"]: r["input_id"] for r in DatasetFolder(tmp_path, "toy").rows("samples")}


def test_open_dataset_reads_every_live_sample_decoded(senorita_demo_dataset, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(senorita_demo_dataset, root)
    # A tar that dataset.json does not list (a crashed writer's leftover) must not be read.
    with wds.TarWriter(str(root / "shards" / "senorita_long-stray-000000.tar")) as w:
        w.write({"__key__": "stray", "json": b"{}"})
    live = {r["key"] for r in DatasetFolder(root, "senorita_long").rows("samples")}
    got = {s["__key__"]: s for s in open_dataset(root)}
    assert set(got) == live and live
    for s in got.values():
        meta = s["json"]
        assert isinstance(meta, dict) and meta["instruction"]
        assert s["source.mp4"].shape[0] == s["target.mp4"].shape[0] == meta["frames"] == 33
        assert s["target_extended.mp4"].shape[0] == meta["extension"]["memory_frames"][1] == 233
        assert s["source.mp4"].dtype.name == "uint8" and s["source.mp4"].shape[1:] == (48, 64, 3)
        assert s["target_dino.npy"].shape[0] == len(meta["segments"]["target"])


def test_split_by_rank_is_a_disjoint_cover(toy):
    root, truth = toy
    parts = [{s["__key__"] for s in open_dataset(root, decode=False, rank=r, world_size=2)} for r in range(2)]
    assert parts[0] and parts[1] and not parts[0] & parts[1]
    assert parts[0] | parts[1] == set(truth)


def test_shuffle_and_resample(toy):
    root, truth = toy
    plain = [s["__key__"] for s in open_dataset(root, decode=False)]
    shuffled = [s["__key__"] for s in open_dataset(root, decode=False, shuffle=50, seed=3)]
    assert sorted(shuffled) == sorted(plain) == sorted(truth) and shuffled != plain
    stream = iter(open_dataset(root, decode=False, resampled=True))
    drawn = [next(stream)["__key__"] for _ in range(40)]  # more than one pass: resampling never ends
    assert set(drawn) <= set(truth) and len(drawn) == 40


def test_not_a_dataset_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="dataset.json"):
        read_index(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({"format": "other/9", "shards": []}))
    with pytest.raises(ValueError, match="memcorpus/2"):
        open_dataset(tmp_path)
