"""Inputs and outputs at fsspec URIs: the same pipeline on the local and the in-memory filesystem."""

from __future__ import annotations

import json
from pathlib import Path

import fsspec
import pytest

from pipelines.build_senorita_long import SenoritaConfig, build_inputs, build_stages
from pipelines.common import RunConfig, load_config, run_corpus
from pipelines.demo_senorita import write_demo
from pipelines.verify import verify
from tests.spine.toy import Square, ToyConfig, toy_inputs


@pytest.fixture
def mem():
    fs = fsspec.filesystem("memory")
    root = f"/t{id(fs)}"
    yield fs, root
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_dataset_folder_in_memory_filesystem_refresh_and_verify(mem):
    fs, root = mem
    out = f"memory://{root}/toy"
    cfg = ToyConfig(run=RunConfig(out=out, runner="sequential", progress=False, shard_max_samples=3))
    s = run_corpus("toy", cfg, toy_inputs(range(1, 11)), [Square()])
    assert s.counts["accepted"] == 8 and len(s.shards) == 3
    assert fs.isfile(f"{root}/toy/dataset.json") and fs.isfile(f"{root}/toy/{s.shards[0]}")
    assert not any(".tmp" in p for p in fs.find(root))
    again = run_corpus("toy", cfg, toy_inputs(range(1, 13)), [Square()])
    assert again.counts["skipped_done"] == 10 and again.counts["processed"] == 2
    problems, stats = verify(out)
    assert problems == [] and stats["inputs"] == 12


def test_senorita_reads_pairs_from_a_uri_and_writes_to_one(mem, tmp_path):
    from models.tiny import build_tiny

    fs, root = mem
    local = write_demo(tmp_path / "in", n_pairs=1, size=(64, 48), broken=False)
    for p in Path(local.parent).rglob("*"):
        if p.is_file():
            fs.pipe_file(f"{root}/in/{p.relative_to(local.parent).as_posix()}", p.read_bytes())
    recs = json.loads(local.read_text()) + [{"source_video_path": "../escape.mp4", "target_video_path": "x.mp4",
                                              "instruction": "escape"}]
    fs.pipe_file(f"{root}/in/pairs.json", json.dumps(recs).encode())
    tiny = tmp_path / "tiny"
    cfg = load_config(SenoritaConfig, None, pairs=f"memory://{root}/in/pairs.json", run__out=f"memory://{root}/out",
                      run__runner="sequential", run__progress=False,
                      extend__model=str(build_tiny("framepack", tiny)), extend__num_new_frames=9, extend__steps=1,
                      descriptors__model=str(build_tiny("dinov2", tiny)))
    s = run_corpus("senorita_long", cfg, build_inputs(cfg), build_stages(cfg))
    assert s.counts["accepted"] == 1 and dict(s.reasons) == {"path_outside_root": 1}
    assert verify(f"memory://{root}/out")[0] == []
