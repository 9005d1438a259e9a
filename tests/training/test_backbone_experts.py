"""Wan2.2-A14B's two experts on a tiny random two-expert folder: loading, routing by timestep, the per-step noise
regime, and weights read by rank 0 only (DDP here; FSDP2 in test_fsdp.py)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from models.experts import ExpertDiT, backbones, build_dit
from models.memory_dit import MemoryDiT, MemoryDiTConfig
from models.wan_loader import load_wan, load_wan_backbone

BOUNDARY = 0.875  # Wan2.2-T2V-A14B's boundary_ratio: timestep 875 of 1000


@pytest.fixture(scope="module")
def wan22(tmp_path_factory):
    from models.tiny_wan import build

    d = tmp_path_factory.mktemp("tiny22") / "wan"
    build(d, experts=2, boundary_ratio=BOUNDARY)
    return str(d)


def _inputs(b=2, t=2):
    g = torch.Generator().manual_seed(0)
    lat = lambda f=t: torch.randn(b, 4, f, 8, 8, generator=g)
    return lat, torch.randn(b, 5, 32, generator=g)


def test_two_expert_folder_loads_both_and_the_single_layout_is_unchanged(wan22, tiny_wan_dir):
    wan = load_wan_backbone(wan22, key="backbone")
    assert len(wan.experts) == 2 and wan.boundary == pytest.approx(BOUNDARY * 1000)
    a, b = (e.blocks[0].attn1.to_q.weight for e in wan.experts)
    assert a.shape == b.shape and not torch.equal(a, b)  # two distinct experts, not one loaded twice
    one = load_wan_backbone(tiny_wan_dir)
    assert len(one.experts) == 1 and one.boundary is None
    assert (
        not (Path(tiny_wan_dir) / "transformer_2").exists() and not (Path(tiny_wan_dir) / "model_index.json").exists()
    )
    tr, _ = load_wan(wan22)  # single-backbone callers get the high-noise expert
    assert torch.equal(tr.blocks[0].attn1.to_q.weight, a)


def test_bad_folders_name_the_backbone_key(wan22, tmp_path):
    import shutil

    with pytest.raises(ValueError, match=r"backbone=.*transformer/config\.json"):
        (tmp_path / "empty").mkdir()
        load_wan_backbone(str(tmp_path / "empty"), key="backbone")
    bad = tmp_path / "bad"
    shutil.copytree(wan22, bad)
    index = json.loads((bad / "model_index.json").read_text())
    for ratio in (1.5, None, "high"):
        (bad / "model_index.json").write_text(json.dumps({**index, "boundary_ratio": ratio}))
        with pytest.raises(ValueError, match=r"backbone=.*boundary_ratio"):
            load_wan_backbone(str(bad), key="backbone")


def test_precision_is_validated_and_auto_means_bf16_on_gpu_only():
    from training.config import load_train_config
    from training.train import _bf16

    with pytest.raises(ValueError, match="precision"):
        load_train_config(None, dataset="d", backbone="b", precision="fp16")
    cfg = load_train_config(None, dataset="d", backbone="b")
    assert cfg.precision == "auto" and _bf16(cfg, torch.device("cuda")) and not _bf16(cfg, torch.device("cpu"))


def test_each_timestep_is_denoised_by_its_expert(wan22):
    wan = load_wan_backbone(wan22)
    dit = build_dit(wan.experts, MemoryDiTConfig(merge_blocks=()), wan.boundary).eval()
    assert isinstance(dit, ExpertDiT)
    lat, text = _inputs()
    x, mem = lat(), [lat()]
    ts = torch.tensor([900.0, 100.0])  # sample 0 high noise (>= 875), sample 1 low noise
    with torch.no_grad():
        base = dit(x, ts, text, memory=mem)
        # the mixed batch is split per sample: each row is what its expert's MemoryDiT gives for it alone
        for i, view in enumerate(dit._views):
            assert isinstance(view, MemoryDiT) and view.backbone is wan.experts[i]
            ref = view(x[i : i + 1], ts[i : i + 1], text[i : i + 1], memory=[mem[0][i : i + 1]])
            torch.testing.assert_close(base[i : i + 1], ref, rtol=1e-5, atol=1e-6)
        for expert, changed in ((dit.transformer_2, 1), (dit.transformer, 0)):
            w = expert.blocks[1].ffn.net[2].weight
            orig = w.clone()
            w.add_(0.5)
            moved = (dit(x, ts, text, memory=mem) - base).flatten(1).abs().amax(1)  # (B,)
            w.copy_(orig)
            assert moved[changed] > 1e-3 and moved[1 - changed] == 0, (changed, moved)


def test_memory_modules_are_shared_and_stored_once(wan22):
    wan = load_wan_backbone(wan22)
    dit = build_dit(wan.experts, MemoryDiTConfig(merge_blocks=(2,), camera=True, bank=True), wan.boundary)
    high, low = dit._views
    assert low.tokenizer is high.tokenizer and low.merger is high.merger and low.bank is high.bank
    assert dit.merger is high.merger and dit.cfg.merge_blocks == (2,)  # what training/step.py reads
    keys = list(dit.state_dict())
    assert [bb is e for bb, e in zip(backbones(dit), wan.experts)] == [True, True]
    memory = [k for k in keys if not k.startswith(("transformer.", "transformer_2."))]
    assert memory and all(k.split(".")[0] in ("tokenizer", "merger", "camera", "bank") for k in memory)
    n_params = sum(p.numel() for p in dit.parameters())
    n_memory = sum(p.numel() for n, p in dit.named_parameters() if n in memory)
    assert n_params == sum(p.numel() for e in wan.experts for p in e.parameters()) + n_memory


def test_each_step_draws_one_side_of_the_boundary_the_same_on_every_rank(wan22):
    wan = load_wan_backbone(wan22, weights=False)  # architecture only: this test needs no weights
    dit = build_dit(wan.experts, MemoryDiTConfig(merge_blocks=()), wan.boundary, seed=3)
    for shift in (1.0, 3.0):
        highs = []
        for step in range(400):
            sides = []
            for rank in range(2):  # each rank's own per-sample generator
                dit.set_step(step)
                t = dit.sample_sigmas(4, torch.Generator().manual_seed(step * 2 + rank), shift) * 1000
                assert bool((t >= dit.boundary).all()) or bool((t < dit.boundary).all())
                sides.append(bool(t[0] >= dit.boundary))
            assert sides[0] == sides[1]
            highs.append(sides[0])
        # the marginal is the single-expert one: P(σ >= s_b) under σ(u) = shift·u / (1 + (shift-1)·u)
        s_b = BOUNDARY
        expected = 1 - s_b / (shift - (shift - 1) * s_b)
        assert abs(sum(highs) / len(highs) - expected) < 0.06, (shift, sum(highs) / len(highs), expected)


def test_meta_build_reads_no_weight_file(wan22, monkeypatch):
    from diffusers import WanTransformer3DModel

    def refuse(*a, **k):
        raise AssertionError("weights=False must not read transformer weights")

    monkeypatch.setattr(WanTransformer3DModel, "from_pretrained", refuse)
    wan = load_wan_backbone(wan22, weights=False)
    assert all(p.is_meta for e in wan.experts for p in e.parameters())


def _ddp_worker(rank: int, kw: dict, out: str, port: int) -> None:
    import ray.train.torch as rtt
    from torch.nn.parallel import DistributedDataParallel

    from training.config import load_train_config
    from training.train import _wrap, build_objective

    # Ray's prepare_model without a Ray session: plain DDP, as it wraps for world > 1
    rtt.prepare_model = lambda m, parallel_strategy_kwargs=None: DistributedDataParallel(m, **parallel_strategy_kwargs)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), HF_HUB_OFFLINE="1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        cfg = load_train_config(None, **kw)
        obj, _, _ = build_objective(cfg, weights=rank == 0)
        model = _wrap(obj, cfg, torch.device("cpu"), rank, 2)
        torch.save(obj.dit.state_dict(), Path(out) / f"rank{rank}.pt")
        g = torch.Generator().manual_seed(rank)
        z = {"target": torch.randn(1, 4, 2, 4, 4, generator=g), "text": torch.randn(1, 5, 32, generator=g)}
        z.update(user=None, memory=[])
        obj.dit.set_step(0)
        with torch.autocast("cpu", dtype=torch.bfloat16):  # precision: bf16 under DDP
            loss, _ = model(z, g)
        loss.backward()
        grads = {n: p.grad for n, p in obj.dit.named_parameters() if p.grad is not None}
        torch.save(grads, Path(out) / f"grads{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_ddp_rank0_reads_weights_and_the_other_rank_receives_them(wan22, tmp_path):
    import training.train  # noqa: F401  (imported before the fork, not once per rank)

    kw = {"dataset": str(tmp_path), "backbone": wan22, "merge_blocks": [], "camera": False, "bank": False}
    kw.update(precision="bf16")  # autocast under DDP
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_ddp_worker, args=(kw, str(tmp_path), port), nprocs=2, join=True, start_method="fork")
    rank0, rank1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert rank0.keys() == rank1.keys()
    assert all(torch.equal(rank0[k], rank1[k]) for k in rank0)  # rank 1 built on meta, got rank 0's weights
    files = load_wan_backbone(wan22).experts[1].state_dict()
    assert all(torch.equal(rank1["transformer_2." + k], v) for k, v in files.items())
    g0, g1 = (torch.load(tmp_path / f"grads{r}.pt", weights_only=True) for r in range(2))
    assert g0 and g0.keys() == g1.keys() and all(torch.allclose(g0[k], g1[k]) for k in g0)  # DDP averaged them
