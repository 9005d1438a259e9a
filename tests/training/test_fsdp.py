"""FSDP2 (``strategy: fsdp``) on CPU: 2 gloo ranks started with torch.multiprocessing (not Ray Train: its
start-up alone costs more than this test's budget; the Ray wiring is shared with DDP and tested there).

Both ranks fit one fixed batch; a run resumed from the step-2 checkpoint must repeat the uninterrupted run's
losses for steps 3-4, which only holds when the AdamW moments are restored along with the weights.

A two-expert (Wan2.2-A14B layout) backbone under bf16 FSDP2: only rank 0 reads the transformer weights, rank 1
ends up with exactly rank 0's, every step trains one expert on both ranks, and the checkpoint holds both.
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


def _experts_worker(rank: int, kw: dict, out: str, port: int) -> None:
    from diffusers import WanTransformer3DModel

    from training.train import train_worker

    reads = []  # subfolders whose transformer weights this rank read
    real = WanTransformer3DModel.from_pretrained.__func__

    def counting(cls, *args, **kwargs):
        reads.append(kwargs.get("subfolder"))
        return real(cls, *args, **kwargs)

    WanTransformer3DModel.from_pretrained = classmethod(counting)  # this forked rank only
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), HF_HUB_OFFLINE="1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        record = {"reads": reads}
        # lr=0: the checkpoint is the weights as broadcast; lr>0: the weights after 4 steps
        for name, lr, steps in (("frozen", 0.0, 1), ("trained", 3e-3, 4)):
            cfg = load_train_config(None, steps=steps, lr=lr, name=name, checkpoint_every=steps, **kw)
            rows = record[name] = []

            def report(stats, ckpt, name=name, rows=rows):
                rows.append({k: stats[k] for k in ("step", "loss", "routed")})
                if ckpt is not None:
                    torch.save(ckpt, Path(out) / f"{name}.pt")

            train_worker(cfg, rank, WORLD, torch.device("cpu"), None, report)
        (Path(out) / f"rank{rank}.json").write_text(json.dumps(record))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_fsdp2_two_ranks_fit_checkpoint_and_resume_with_optimizer(tmp_path, tiny_wan_dir, senorita_demo_dataset):
    from training.train import CKPT_FILE

    data = senorita_demo_dataset  # what the real pipeline wrote (tests/conftest.py)
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


def test_fsdp2_two_experts_bf16_rank0_loads_and_checkpoint_holds_both(tmp_path, senorita_demo_dataset):
    from models.tiny_wan import build
    from models.wan_loader import load_wan_backbone

    wan = tmp_path / "wan22"
    build(wan, experts=2, boundary_ratio=0.5)  # both experts get steps within a short run
    data = senorita_demo_dataset  # what the real pipeline wrote (tests/conftest.py)
    out = tmp_path / "runs"
    out.mkdir()
    kw = {
        "dataset": str(data),
        "backbone": str(wan),
        "out": str(out),
        "strategy": "fsdp",
        "precision": "bf16",  # FSDP2 MixedPrecisionPolicy(bf16 params, fp32 reduce) + bf16 autocast, on CPU
        "num_workers": WORLD,
        "fixed_batch": True,
        "frames": 5,
        "size": (32, 32),
        "memory_k": 2,
        "merge_blocks": [2],
        "shuffle": 0,
    }
    import training.data
    import training.examples
    import training.train  # noqa: F401

    files = load_wan_backbone(str(wan), key="backbone").experts
    mp.start_processes(
        _experts_worker, args=(kw, str(out), _free_port()), nprocs=WORLD, join=True, start_method="fork"
    )
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]
    # only rank 0 read weight files (both experts, once per run); rank 1 built on meta and received them
    assert ranks[0]["reads"] == ["transformer", "transformer_2"] * 2 and ranks[1]["reads"] == []
    frozen = torch.load(out / "frozen.pt", map_location="cpu", weights_only=True)["model"]
    for prefix, expert in zip(("transformer.", "transformer_2."), files):
        for k, v in expert.state_dict().items():
            assert torch.equal(frozen[prefix + k], v), prefix + k  # rank 1's half of each tensor included
    # one expert per step, the same on both ranks; each expert trained on its own steps
    rows = ranks[0]["trained"]
    assert [(r["step"], r["routed"]) for r in rows] == [(r["step"], r["routed"]) for r in ranks[1]["trained"]]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and all(torch.isfinite(torch.tensor([r["loss"] for r in rows])))
    assert all(min(r["routed"]) == 0 and max(r["routed"]) > 0 for r in rows), rows
    used = [any(r["routed"][i] for r in rows) for i in range(2)]
    assert all(used), rows  # this seed draws both regimes in 4 steps: both experts are exercised
    trained = torch.load(out / "trained.pt", map_location="cpu", weights_only=True)
    assert trained["step"] == 4 and trained["strategy"] == "fsdp"
    for prefix in ("transformer.", "transformer_2."):
        w = trained["model"][prefix + "blocks.0.attn1.to_q.weight"]
        assert w.dtype == torch.float32 and not torch.equal(w, frozen[prefix + "blocks.0.attn1.to_q.weight"])
    # the memory modules are shared: one copy, next to the two experts
    assert "tokenizer.embed.mid.weight" in trained["model"] and not any("_views" in k for k in trained["model"])
    assert "dit.transformer_2.blocks.0.attn1.to_q.weight" in trained["optim"]["state"]
