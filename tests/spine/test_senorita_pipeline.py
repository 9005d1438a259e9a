"""Señorita-Long end to end on generated pairs and tiny random models: the spine's promises."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from pipelines.build_senorita_long import SenoritaConfig, build_inputs, build_stages, main, resolve_models
from pipelines.common import load_config, run_corpus
from pipelines.dataset import DatasetFolder
from pipelines.demo_senorita import BROKEN, write_demo
from pipelines.verify import verify
from stages.video import psnr, read_frames
from training.data import open_dataset

ROOT = Path(__file__).resolve().parents[2]
SIZE = (64, 48)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from models.tiny import build_tiny

    d = tmp_path_factory.mktemp("tiny")
    return {fam: str(build_tiny(fam, d)) for fam in ("framepack", "dinov2")}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """5 good pairs + the broken ones; ``pairs.json`` lists 3 good + broken, ``all.json`` everything."""
    root = tmp_path_factory.mktemp("senorita_in")
    full = write_demo(root, n_pairs=5, size=SIZE)
    recs = json.loads(full.read_text())
    (root / "all.json").write_text(json.dumps(recs))
    full.write_text(json.dumps(recs[:3] + recs[5:]))
    return full


def _cfg(out, pairs, tiny, runner="sequential", new_frames=200, **extra):
    return load_config(SenoritaConfig, None, pairs=str(pairs), run__out=str(out), run__runner=runner,
                       run__progress=False, run__shard_max_samples=2, extend__model=tiny["framepack"],
                       extend__num_new_frames=new_frames, extend__steps=2, descriptors__model=tiny["dinov2"],
                       run__ray_num_cpus=2, **extra)


@pytest.fixture(scope="module")
def built(tmp_path_factory, demo, tiny):
    out = tmp_path_factory.mktemp("senorita_out")
    cfg = _cfg(out, demo, tiny)
    summary = run_corpus("senorita_long", cfg, build_inputs(cfg), build_stages(cfg))
    return out, summary


def test_demo_pairs_accepted_and_broken_pairs_rejected_with_their_reason(built):
    out, s = built
    assert s.counts["accepted"] == 3
    assert s.counts["rejected"] == len(BROKEN)
    assert dict(s.reasons) == {reason: list(BROKEN.values()).count(reason) for reason in BROKEN.values()}
    problems, stats = verify(out)
    assert problems == [] and stats["inputs"] == 3 + len(BROKEN)


def test_round_trip_through_the_reader(built, demo):
    out, _ = built
    samples = list(open_dataset(str(out)))
    assert len(samples) >= 3
    for smp in samples:
        meta = smp["json"]
        ext = smp["target_extended.mp4"]
        tgt = smp["target.mp4"]
        assert ext.shape[0] == 233 and tgt.shape[0] == 33 and smp["source.mp4"].shape[0] == 33
        assert ext.shape[1:] == (SIZE[1], SIZE[0], 3)
        assert meta["extension"]["memory_frames"] == [33, 233]
        # the first 33 frames of the extension are the input target (re-encoded once more)
        original = read_frames(demo.parent / meta["target_video_path"])
        assert psnr(ext[:33], original) >= 35.0
        for role in ("source", "target"):
            d = smp[f"{role}_dino.npy"]
            assert d.ndim == 2 and d.dtype == np.float32 and np.isfinite(d).all()


def test_refresh_adds_nothing_then_only_new_pairs(built, demo, tiny):
    out, _ = built
    cfg = _cfg(out, demo, tiny)
    again = run_corpus("senorita_long", cfg, build_inputs(cfg), build_stages(cfg))
    assert again.counts["processed"] == 0 and again.shards == [] and again.counts["skipped_done"] == 3 + len(BROKEN)
    cfg = _cfg(out, demo.parent / "all.json", tiny)  # two pairs appended to the metadata
    third = run_corpus("senorita_long", cfg, build_inputs(cfg), build_stages(cfg))
    assert third.counts["skipped_done"] == 3 + len(BROKEN)
    assert third.counts["processed"] == 2 and third.counts["accepted"] == 2
    assert verify(out)[0] == []
    assert len(list(open_dataset(str(out)))) == 5


def test_missing_model_is_a_clear_error(demo, tmp_path):
    cfg = load_config(SenoritaConfig, None, pairs=str(demo), run__out=str(tmp_path))
    with pytest.raises(ValueError, match="extend.model"):
        resolve_models(cfg)


@pytest.mark.ray
def test_ray_runner_gives_the_same_manifest(built, demo, tiny, tmp_path):
    out, _ = built
    cfg = _cfg(tmp_path / "ray", demo, tiny, runner="ray", new_frames=9)
    s = run_corpus("senorita_long", cfg, build_inputs(cfg), build_stages(cfg))
    assert s.counts["accepted"] == 3
    # num_new_frames differs (9 here, for speed) and is an output setting, so the refresh keys differ by design
    key = lambda r: (r["id"], r["status"], r["reason"], len(r["samples"]))
    seq = sorted(map(key, DatasetFolder(out, "senorita_long").rows("inputs")) )
    ray_rows = sorted(map(key, DatasetFolder(tmp_path / "ray", "senorita_long").rows("inputs")))
    assert ray_rows == [r for r in seq if r[0] in {x[0] for x in ray_rows}] and len(ray_rows) == 3 + len(BROKEN)
    assert verify(tmp_path / "ray")[0] == []
    # The shards were written by Ray workers: only small rows reached the driver, not the clips.
    rec = json.loads((tmp_path / "ray" / "runs" / f"{s.run}.json").read_text())
    assert 0 < rec["driver_payload_bytes"] <= 4096 * s.counts["samples_written"] < rec["bytes_written"]
    idx = json.loads((tmp_path / "ray" / "dataset.json").read_text())
    assert all(int(sh["writer"].rsplit("/", 1)[1]) != os.getpid() for sh in idx["shards"])


def test_sigkill_mid_run_then_rerun_passes_verify(demo, tiny, tmp_path):
    """Kill the driver once the first shard is listed; the same command again completes exactly once."""
    pairs = write_demo(tmp_path / "in", n_pairs=6, size=SIZE, broken=True)
    out = tmp_path / "out"
    cmd = [sys.executable, str(ROOT / "pipelines" / "build_senorita_long.py"), "--pairs", str(pairs), "--out",
           str(out), "--runner", "sequential", "--set", f"extend.model={tiny['framepack']}", "--set",
           f"descriptors.model={tiny['dinov2']}", "--set", "extend.steps=1", "--set", "extend.num_new_frames=9", "--set", "run.shard_max_samples=1",
           "--set", "run.progress=false"]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline:
        idx = out / "dataset.json"
        if idx.exists() and json.loads(idx.read_text())["shards"]:
            break
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (out / "dataset.json").exists()
    rerun = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    idx = json.loads((out / "dataset.json").read_text())
    assert [r["crashed"] for r in idx["runs"]] == [True, False]  # the killed run was folded, then finished
    problems, stats = verify(out)
    assert problems == []
    assert stats["inputs"] == 6 + len(BROKEN) and stats["accepted"] == 6 and stats["samples"] == 6


def test_main_rejects_unknown_config_key(tmp_path):
    with pytest.raises(ValueError, match="unknown config key"):
        main(["--out", str(tmp_path), "--set", "extend.modle=x"])


def test_trainer_builds_examples_from_what_the_pipeline_wrote(built):
    """The trainer's Señorita example: memory clips cut from the extended part, ranked by DINOv2."""
    from training.examples import ExampleConfig, senorita_example

    out, _ = built
    smp = next(s for s in open_dataset(str(out)) if s["target_extended.mp4"].shape[0] == 233)
    segs = smp["json"]["segments"]["target"]
    assert len(segs) == smp["target_dino.npy"].shape[0] and all(33 <= a < b <= 233 for a, b in segs)
    ex = senorita_example(smp, ExampleConfig(memory_k=3), np.random.default_rng(0))
    assert ex is not None and len(ex["memory"]) == 3
    assert ex["target"].shape == ex["user"].shape == ex["memory"][0].shape == (3, 9, 64, 64)
