"""FSDP2 (``strategy: fsdp``) on CPU: 2 gloo ranks started with torch.multiprocessing (not Ray Train: its
start-up alone costs more than this test's budget; the Ray wiring is shared with DDP and tested there).

Both ranks fit one fixed batch; a run resumed from the step-2 checkpoint must repeat the uninterrupted run's
losses for steps 3-4, which only holds when the AdamW moments are restored along with the weights.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from training.config import load_train_config
from training.synthetic import write_senorita

WORLD = 2


def _worker(rank: int, kw: dict, out: str, port: int) -> None:
    from training.train import CKPT_FILE, _load_state, train_worker

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), HF_HUB_OFFLINE="1")
    torch.set_num_threads(1)  # two ranks on two cores
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        runs = {"full": (4, None), "resumed": (4, Path(out) / "full" / "2")}
        for name, (steps, resume) in runs.items():
            cfg = load_train_config(None, steps=steps, name=name, **kw)
            state = _load_state(resume) if resume else None
            losses = []

            def report(stats, ckpt, name=name, losses=losses):
                losses.append((stats["step"], stats["loss"], stats["world"]))
                if ckpt is not None:
                    d = Path(out) / name / str(ckpt["step"])
                    d.mkdir(parents=True)
                    torch.save(ckpt, d / CKPT_FILE)

            train_worker(cfg, rank, WORLD, torch.device("cpu"), state, report)
            if rank == 0:
                (Path(out) / f"{name}.json").write_text(json.dumps(losses))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fsdp2_two_ranks_fit_checkpoint_and_resume_with_optimizer(tmp_path, tiny_wan_dir):
    from training.train import CKPT_FILE

    data = write_senorita(tmp_path / "data", n=4)
    out = tmp_path / "runs"
    kw = {
        "dataset": str(data),
        "backbone": tiny_wan_dir,
        "out": str(out),
        "strategy": "fsdp",
        "num_workers": WORLD,
        "fixed_batch": True,
        "lr": 3e-3,
        "frames": 5,
        "size": (32, 32),
        "memory_k": 2,
        "merge_blocks": [2],
        "checkpoint_every": 2,
        "shuffle": 0,
    }
    # fork, after importing what the ranks use: a spawned rank re-imports torch/diffusers, ~1 min on a loaded box.
    import training.data
    import training.examples  # noqa: F401
    import training.train as train_mod
    from models.wan_loader import load_wan

    train_mod.build_objective(load_train_config(None, **kw))
    tr, _ = load_wan(tiny_wan_dir, key="backbone")
    mp.start_processes(_worker, args=(kw, str(out), _free_port()), nprocs=WORLD, join=True, start_method="fork")
    full = json.loads((out / "full.json").read_text())
    resumed = json.loads((out / "resumed.json").read_text())
    losses = [loss for _, loss, _ in full]
    assert [s for s, _, _ in full] == [1, 2, 3, 4] and all(w == WORLD for _, _, w in full)
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0], losses
    # checkpoints hold full (unsharded) tensors and name-keyed optimiser state, readable with weights_only
    state = torch.load(out / "full" / "2" / CKPT_FILE, map_location="cpu", weights_only=True)
    assert state["step"] == 2 and state["strategy"] == "fsdp"
    w = state["model"]["backbone.blocks.0.attn1.to_q.weight"]
    assert type(w) is torch.Tensor and w.shape == tr.blocks[0].attn1.to_q.weight.shape
    moments = state["optim"]["state"]["dit.backbone.blocks.0.attn1.to_q.weight"]
    assert moments["exp_avg"].shape == w.shape and float(moments["exp_avg_sq"].abs().sum()) > 0
    # resumed at step 2: steps 3-4 match the uninterrupted run (fresh AdamW moments would not)
    assert [s for s, _, _ in resumed] == [3, 4]
    assert [loss for _, loss, _ in resumed] == pytest.approx(losses[2:], rel=1e-4, abs=1e-6)
