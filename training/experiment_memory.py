"""Toy memory experiment: camera roams that revisit places; FOV-retrieved vs random vs no memory.

    .venv/bin/python -m training.experiment_memory [--steps 600] [--quick]   (make experiment-memory)

World: a camera at the origin of a textured cylinder (360° panorama) turns left and right;
each video is 5 frames of a pan, rendered by cropping the panorama (FOV 52.67°, Context-as-
Memory's). A scene holds 6 videos at random headings; VideoFOV scores (models/fov.py,
Alg. 1) rank the others for each target. The tiny memory DiT is trained three times with the
same seed and steps, conditioning on the top-2 FOV-retrieved videos, 2 random ones, or none,
then samples held-out targets (20 Euler steps) and reports PSNR against the true views: the
places were seen before, so memory can help. Latents are an exact space-to-depth codec
(4x4 pixels -> 48 channels) instead of the random tiny VAE, which cannot reconstruct and
would make every PSNR measure the VAE. The papers predict retrieved > random > none.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

os.environ.setdefault("HF_HUB_OFFLINE", "1")

FOV_DEG, SIZE, FRAMES, CAMS = 52.67, 32, 5, 6


class PixelCodec:
    """Exact 'VAE': (B, 3, F, H, W) in [-1, 1] <-> (B, 48, F, H/4, W/4)."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = x.shape
        y = F.pixel_unshuffle(x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w), 4)
        return y.reshape(b, f, -1, h // 4, w // 4).permute(0, 2, 1, 3, 4).contiguous()

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        b, c, f, h, w = z.shape
        y = F.pixel_shuffle(z.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w), 4)
        return y.reshape(b, f, 3, h * 4, w * 4).permute(0, 2, 1, 3, 4).clamp(-1, 1)


def panorama(rng: np.random.Generator) -> np.ndarray:
    width = round(SIZE * 360 / FOV_DEG)
    yy, xx = np.mgrid[0:SIZE, 0:width]
    pano = np.zeros((SIZE, width, 3))
    for c in range(3):
        for _ in range(3):
            k = rng.integers(1, 6)  # whole periods around the circle: the panorama wraps seamlessly
            pano[..., c] += (
                rng.uniform(20, 50)
                * np.sin(2 * np.pi * k * xx / width + rng.uniform(0, 6))
                * np.cos(yy / rng.uniform(3, 8))
            )
    for _ in range(8):  # landmarks make places recognisable
        x0, y0 = rng.integers(0, width), rng.integers(0, SIZE - 8)
        cols = np.arange(x0, x0 + 8) % width
        pano[y0 : y0 + 8, cols] = rng.uniform(-100, 100, 3)
    return (pano + 128).clip(0, 255).astype(np.uint8)


def render(pano: np.ndarray, yaws_deg: np.ndarray) -> np.ndarray:
    w = pano.shape[1]
    out = []
    for y in yaws_deg:
        c = round(y / 360 * w) - SIZE // 2
        out.append(pano[:, np.arange(c, c + SIZE) % w])
    return np.stack(out)  # (F, H, W, 3)


def pose(yaw_deg: float) -> np.ndarray:
    t = np.radians(yaw_deg)
    p = np.eye(4)
    p[:3, :3] = [[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]]
    return p


def scene(rng: np.random.Generator) -> dict:
    from models.fov import intrinsics, score_matrix

    pano = panorama(rng)
    starts = rng.uniform(0, 360, CAMS)
    starts[1] = starts[0] + rng.uniform(-15, 15)  # a revisit: video 1 sees what video 0 saw
    pans = rng.choice([-1, 1], CAMS) * rng.uniform(10, 30, CAMS)
    yaws = [s + np.linspace(0, p, FRAMES) for s, p in zip(starts, pans)]
    poses = [np.stack([pose(y) for y in ys]) for ys in yaws]
    k = intrinsics(FOV_DEG, SIZE, SIZE)
    scores = score_matrix(poses, [k] * CAMS, SIZE, SIZE, n_theta=45, n_phi=90)
    return {"videos": [render(pano, ys) for ys in yaws], "scores": scores, "poses": np.stack(poses)}


def write_roams(root: Path, n: int, seed: int) -> Path:
    from stages.video import encode_mp4
    from training.synthetic import npy, write_dataset_folder

    rng = np.random.default_rng(seed)
    samples = []
    for i in range(n):
        s = scene(rng)
        d = {
            "__key__": f"roam{seed}_{i:04d}",
            "json": json.dumps({"caption": "a camera looks around", "layout": "multicam",
                                "cameras": [f"cam{j:02d}" for j in range(CAMS)], "frames": FRAMES}).encode(),
            "scores.npy": npy(s["scores"].astype(np.float32)),
            "poses.npy": npy(s["poses"].astype(np.float32)),
        }
        for j, v in enumerate(s["videos"]):
            d[f"cam{j:02d}.mp4"] = encode_mp4(v, fps=8, crf=10)
        samples.append(d)
    return write_dataset_folder(root, "multicam", samples)


def _objective(seed: int):
    from diffusers import WanTransformer3DModel

    from models.memory_dit import MemoryDiT, MemoryDiTConfig
    from models.tiny_wan import TRANSFORMER
    from training.step import FlowObjective, StepConfig

    torch.manual_seed(seed)
    tr = WanTransformer3DModel(
        **{
            **TRANSFORMER,
            "in_channels": 48,
            "out_channels": 48,
            "num_layers": 4,
            "num_attention_heads": 4,
            "attention_head_dim": 24,
            "ffn_dim": 192,
        }
    )
    dit = MemoryDiT(tr, MemoryDiTConfig(merge_blocks=(), memory_level="fine"))  # Context-as-Memory style
    return FlowObjective(dit, StepConfig(caption_dropout=0.0, memory_noise=0.0, user_dropout=0.0))


def _examples(root: Path, mode: str, seed: int):
    from training.data import open_dataset
    from training.examples import ExampleConfig, multicam_example

    cfg = ExampleConfig(frames=FRAMES, size=(SIZE, SIZE), memory_k=2, memory_mode=mode)
    # One generator per scene: every mode picks the same target camera of a scene (its first draw).
    out = []
    for i, s in enumerate(open_dataset(root)):
        e = multicam_example(s, cfg, np.random.default_rng([seed, i]))
        if e is not None:
            # The arms compare memory alone: no user video, no cameras (the experiment predates both).
            out.append({k: v for k, v in e.items() if k not in ("user", "cams")})
    return out


def run_mode(mode: str, train_root: Path, test_root: Path, steps: int, seed: int) -> dict:
    from training.losses import euler_sample
    from training.step import collate, encode_batch
    from training.text import HashText

    torch.manual_seed(seed)
    obj = _objective(seed)
    codec, text = PixelCodec(), HashText(32)
    train = _examples(train_root, mode, seed)
    opt = torch.optim.AdamW(obj.parameters(), lr=2e-3)
    t0, losses = time.perf_counter(), []
    g = torch.Generator().manual_seed(seed)
    for step in range(steps):
        batch = collate([train[int(i)] for i in torch.randint(len(train), (4,), generator=g)])
        loss, _ = obj(encode_batch(batch, codec, text, "cpu"), g, merge=False)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
    obj.eval()
    psnrs, copies, halves = [], [], []
    with torch.no_grad():
        for ex in _examples(test_root, mode, seed + 1):
            z = encode_batch(collate([ex]), codec, text, "cpu")
            fn = lambda x, s, z=z: obj.dit(x, s * 1000, z["text"], memory=z["memory"])
            lat = euler_sample(fn, z["target"].shape, 20, torch.Generator().manual_seed(0))
            gen = ((codec.decode(lat) + 1) * 127.5).round()
            ref = ((ex["target"][None] + 1) * 127.5).round()
            mse = float(((gen - ref) ** 2).mean())
            psnrs.append(10 * np.log10(255**2 / max(mse, 1e-10)))
            # From σ=0.5 the model must restore half-destroyed views: memory of the place can help early on.
            half = euler_sample(fn, z["target"].shape, 10, torch.Generator().manual_seed(0), z["target"], 0.5)
            gen = ((codec.decode(half) + 1) * 127.5).round()
            halves.append(10 * np.log10(255**2 / max(float(((gen - ref) ** 2).mean()), 1e-10)))
            if ex["memory"]:  # no model: how close is the first memory video itself to the true views?
                mem = ((ex["memory"][0][None] + 1) * 127.5).round()
                copies.append(10 * np.log10(255**2 / max(float(((mem - ref) ** 2).mean()), 1e-10)))
    return {
        "mode": mode,
        "history_psnr_db": float(np.mean(psnrs)),
        "psnr_std": float(np.std(psnrs)),
        "half_psnr_db": float(np.mean(halves)),
        "copy_memory_psnr_db": float(np.mean(copies)) if copies else float("nan"),
        "n_test": len(psnrs),
        "final_loss": float(np.mean(losses[-20:])),
        "train_s": time.perf_counter() - t0,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--train-scenes", type=int, default=24)
    p.add_argument("--test-scenes", type=int, default=8)
    p.add_argument("--quick", action="store_true", help="a few steps, to check the plumbing")
    p.add_argument("--out", default="bench_out/experiment_memory.md")
    p.add_argument("--work", default="/tmp/memcorpus_experiment_memory")
    a = p.parse_args(argv)
    if a.quick:
        a.steps, a.train_scenes, a.test_scenes = 10, 6, 3
    work = Path(a.work)
    train_root = (
        write_roams(work / f"train{a.train_scenes}", a.train_scenes, seed=1)
        if not (work / f"train{a.train_scenes}" / "dataset.json").exists()
        else work / f"train{a.train_scenes}"
    )
    test_root = (
        write_roams(work / f"test{a.test_scenes}", a.test_scenes, seed=2)
        if not (work / f"test{a.test_scenes}" / "dataset.json").exists()
        else work / f"test{a.test_scenes}"
    )
    rows = [run_mode(m, train_root, test_root, a.steps, seed=0) for m in ("retrieved", "random", "none")]
    table = (
        "| memory | history PSNR (dB) | std | from σ=0.5 PSNR (dB) | copy 1st memory PSNR (dB) | test targets "
        "| final train loss | train s |\n|---|---|---|---|---|---|---|---|\n"
    )
    table += "\n".join(
        f"| {r['mode']} | {r['history_psnr_db']:.2f} | {r['psnr_std']:.2f} | {r['half_psnr_db']:.2f} | "
        f"{r['copy_memory_psnr_db']:.2f} | "
        f"{r['n_test']} | "
        f"{r['final_loss']:.4f} | {r['train_s']:.0f} |"
        for r in rows
    )
    head = (
        f"experiment-memory: {a.steps} steps x batch 4, {a.train_scenes} train / {a.test_scenes} test scenes, "
        f"tiny DiT, shared 2-core machine.\n\n"
    )
    print(head + table)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(head + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
