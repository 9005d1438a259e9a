"""Multi-camera and Memento samples -> examples -> one loss with their model parts (bank, cameras)."""

from __future__ import annotations

import json

import numpy as np
import torch

from models.memory_dit import MemoryDiT, MemoryDiTConfig
from models.wan_loader import load_wan
from training.examples import ExampleConfig, memento_example, multicam_example
from training.step import FlowObjective, LatentEncoder, StepConfig, collate, encode_batch
from training.text import HashText

CFG = ExampleConfig(frames=5, size=(32, 32), memory_k=2)


def _video(level: int, t: int = 6) -> np.ndarray:
    v = np.full((t, 32, 32, 3), level, np.uint8)
    v[:, :, :4] = 255
    return v


def _multicam(n=4):
    s = {
        "json": {"caption": "a street"},
        "scores.npy": np.array(
            [[1, 0.2, 0.9, 0.5], [0.2, 1, 0.1, 0.3], [0.9, 0.1, 1, 0.4], [0.5, 0.3, 0.4, 1]], np.float32
        ),
    }
    poses = np.tile(np.eye(4, dtype=np.float32), (n, 6, 1, 1))
    poses[:, :, 0, 3] = np.arange(n)[:, None]  # camera j sits at x = j
    s["poses.npy"] = poses
    for j in range(n):
        s[f"cam{j:02d}.mp4"] = _video(40 * j + 20)
    return s


def test_multicam_example_ranks_by_fov_score():
    s = _multicam()
    for seed in range(6):
        ex = multicam_example(s, CFG, np.random.default_rng(seed))
        tgt_level = float((ex["target"][:, :, :, 8:] + 1).mean() * 127.5)
        i = round((tgt_level - 20) / 40)
        others = [j for j in range(4) if j != i]
        want = sorted(others, key=lambda j: -s["scores.npy"][i, j])[:2]
        got = [round((float((m[:, :, :, 8:] + 1).mean() * 127.5) - 20) / 40) for m in ex["memory"]]
        assert got == want
        assert ex["cams"]["memory"][0].shape == (5, 12) and float(ex["cams"]["memory"][0][0, 3]) == want[0]
    none = multicam_example(s, ExampleConfig(frames=5, size=(32, 32), memory_mode="none"), np.random.default_rng(0))
    assert none["memory"] == []


def _memento():
    clip = np.concatenate([_video(30, 8), _video(120, 8), _video(200, 8)])
    meta = {
        "shots": [
            {"start": 0, "end": 8, "caption": "Anna walks in"},
            {"start": 8, "end": 16, "caption": "Anna sits"},
            {"start": 16, "end": 24, "caption": "Anna smiles"},
        ],
        "captions": {"story": "Anna in a cafe"},
    }
    return {"json": json.loads(json.dumps(meta)), "clip.mp4": clip, "recon_0.jpg": _video(90, 1)[0]}


def test_memento_example_and_objective_with_bank_and_recon(tiny_wan_dir):
    ex = memento_example(_memento(), CFG, np.random.default_rng(1))
    assert ex["target"].shape == (3, 5, 32, 32) and ex["recon"].shape == (3, 1, 32, 32)
    assert 1 <= len(ex["history"]) <= 2 and ex["story"] == "Anna in a cafe"
    assert ex["caption"] in ("Anna sits", "Anna smiles")
    tr, vae = load_wan(tiny_wan_dir)
    dit = MemoryDiT(tr, MemoryDiTConfig(merge_blocks=(), bank=True, bank_k=3))
    obj = FlowObjective(dit, StepConfig(caption_dropout=0.0))
    z = encode_batch(collate([ex, ex]), LatentEncoder(vae), HashText(32), "cpu")
    loss, stats = obj(z, torch.Generator().manual_seed(0))
    assert torch.isfinite(loss) and "l_recon" in stats
    assert abs(stats["loss"] - (stats["l_diff"] + 0.5 * stats["l_recon"])) < 1e-4
    loss.backward()
    assert dit.bank.story.queries.grad.abs().sum() > 0  # the recon branch trains the story queries


def test_camera_conditioned_objective_runs(tiny_wan_dir):
    tr, vae = load_wan(tiny_wan_dir)
    dit = MemoryDiT(tr, MemoryDiTConfig(merge_blocks=(1,), camera=True))
    ex = multicam_example(_multicam(), CFG, np.random.default_rng(0))
    z = encode_batch(collate([ex]), LatentEncoder(vae), HashText(32), "cpu")
    loss, stats = FlowObjective(dit)(z, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss) and 0.3 <= stats["merge_ratio"] <= 0.7
    assert dit.camera.proj[0].weight.grad is not None
