"""Ray Train on CPU: 2 DDP workers (gloo) fit a fixed batch from shards; checkpoint round trip and resume."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from training.config import load_train_config

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1"}}
    )
    yield ray
    ray.shutdown()


def _steps(out: Path, name: str) -> list[dict]:
    return [json.loads(line) for line in (out / name / "steps.jsonl").read_text().splitlines()]


def test_two_worker_ddp_fits_fixed_batch_then_resumes(ray_local, tmp_path, tiny_wan_dir, senorita_demo_dataset):
    from training.train import CKPT_FILE, fit

    data = senorita_demo_dataset  # what the real pipeline wrote (tests/conftest.py)
    out = tmp_path / "runs"
    common = {
        "dataset": str(data),
        "backbone": tiny_wan_dir,
        "out": str(out),
        "name": "ddp",
        "num_workers": 2,
        "cpus_per_worker": 0.5,
        "fixed_batch": True,
        "lr": 3e-3,
        "frames": 5,
        "size": (32, 32),
        "memory_k": 2,
        "merge_blocks": [2],
        "checkpoint_every": 3,
        "shuffle": 0,
    }
    res = fit(load_train_config(None, steps=6, **common))
    assert res.error is None, res.error
    steps = _steps(out, "ddp")
    losses = [s["loss"] for s in steps]
    assert [s["step"] for s in steps] == [1, 2, 3, 4, 5, 6]
    assert all(torch.isfinite(torch.tensor(losses))) and all(s["world"] == 2 for s in steps)
    assert losses[-1] < losses[0], losses
    # checkpoint round trip: weights_only loading gives back the rank-0 weights at step 6
    with res.checkpoint.as_directory() as d:
        state = torch.load(Path(d) / CKPT_FILE, map_location="cpu", weights_only=True)
    assert state["step"] == 6 and any(k.startswith("backbone.blocks.0") for k in state["model"])
    # same run name: Ray Train restores the latest checkpoint, training continues at step 7
    res2 = fit(load_train_config(None, steps=8, **common))
    assert res2.error is None, res2.error
    steps = _steps(out, "ddp")
    assert [s["step"] for s in steps][-2:] == [7, 8] and len(steps) == 8
    assert steps[6]["loss"] < losses[0]  # resumed weights, not a fresh start
