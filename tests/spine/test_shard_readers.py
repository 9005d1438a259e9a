"""Each demo corpus, as the real pipelines wrote it, reads with other tools: webdataset, ray.data.read_webdataset
and HF datasets' "webdataset" loader. Samples of different layouts (multi-camera scenes, roams) sit in
separate shard sets, so every shard of a set has the same members, which those readers require."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest
import webdataset as wds

from pipelines.verify import verify
from training.data import shard_paths

CORPORA = ["senorita_demo_dataset", "memento_demo_dataset", "multicam_demo_dataset"]


def _sets(root: Path) -> dict[str, list[str]]:
    """Shard set -> the paths of its shards, as dataset.json lists them (no retired samples in the demos)."""
    idx = json.loads((root / "dataset.json").read_text())
    out = defaultdict(list)
    for s in idx["shards"]:
        assert not s.get("retired") and not s.get("damaged")
        out[s.get("set", "")].append(str(root / s["path"]))
    return dict(out)


def _members(sample: dict) -> frozenset[str]:
    return frozenset(k for k in sample if not k.startswith("__"))


@pytest.fixture(scope="module")
def ray_local():
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.ray
@pytest.mark.parametrize("corpus", CORPORA)
def test_each_shard_set_reads_with_webdataset_ray_data_and_hf(corpus, request, ray_local, tmp_path):
    root = request.getfixturevalue(corpus)
    problems, stats = verify(root)
    assert problems == []
    sets = _sets(root)
    if corpus == "multicam_demo_dataset":
        assert {"scenes", "roams"} <= set(sets), sets  # the two layouts never share a shard
        assert all(Path(p).name.startswith(f"{name}-") for name, paths in sets.items() for p in paths)
    total = 0
    for name, paths in sets.items():
        samples = list(wds.WebDataset(paths, shardshuffle=False))
        assert samples and len({_members(s) for s in samples}) == 1, f"set {name!r} mixes member layouts"
        keys = sorted(s["__key__"] for s in samples)

        rows = ray_local.data.read_webdataset(paths).take_all()
        assert sorted(r["__key__"] for r in rows) == keys
        assert {frozenset(k for k in r if not k.startswith("__")) for r in rows} == {_members(samples[0])}

        datasets = pytest.importorskip("datasets")  # extra `dev`; installed from PyPI in this project
        hf = datasets.load_dataset("webdataset", data_files={"train": paths}, split="train",
                                   cache_dir=str(tmp_path / "hf"))
        assert len(hf) == len(samples) and sorted(hf["__key__"]) == keys
        total += len(samples)
    assert total == stats["samples"]
    # The project's own reader reads every set at once.
    assert sorted(shard_paths(root)) == sorted(p for paths in sets.values() for p in paths)
