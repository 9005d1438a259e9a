"""Does the trained memory DiT use its memory? A paired toy experiment (``make experiment-memory``).

    .venv/bin/python -m training.experiment_memory [--steps N] [--seeds 3] [--test 256] [--quick]

World (training/experiment_world.py): endless panorama scenes; the target pans into places its
first frame does not show, two revisit videos cover them, four distractors look elsewhere. The
model is the project's memory DiT (models/memory_dit.py) on a small Wan backbone, trained with
the bundled multicam recipe (training/step.py: Memory-V2V, arXiv 2601.16296, novel-view layout, per-video camera
embedding Eq. 17, memory-token noise, user dropout, caption dropout) on VideoFOV top-k memory (k = 2)
(Alg. 1), with the target's first frame as the user video and no memory on 10 % of batches
(Context-as-Memory, arXiv 2506.03141 §3.3, trains 10 % of steps with no retrieved context). Memory is tokenised at
1x2x2 (Context-as-Memory's full-resolution context; the toy latents are only 8x8).

Then the *same* weights score 256 held-out targets under five memories: ``none``, ``shuffled``
(another scene's retrieved videos), ``random`` (k of the scene's 6 candidates), ``fov`` (VideoFOV
top-k) and ``oracle`` (the target itself, then the top k-1), by the flow-matching loss and the
one-step x̂0 PSNR at fixed σ, with the same x0, noise and σ for every arm: any difference is the
memory's doing. Three training seeds; 95 % CIs of paired differences by a bootstrap over targets
(resampled within each seed).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from training.experiment_world import GeometryPool, PixelCodec, Scene, held_out

ARMS = ("none", "shuffled", "random", "fov", "oracle")
COMPARISONS = (("fov", "none"), ("fov", "random"), ("oracle", "fov"), ("shuffled", "none"))
CAPTION = "a camera looks around"


@dataclass(frozen=True)
class Settings:
    steps: int = 500
    batch: int = 8
    lr: float = 2e-3
    seeds: tuple[int, ...] = (0, 1, 2)
    n_test: int = 256
    memory_k: int = 2
    no_memory_prob: float = 0.1
    train_memory: str = "fov"  # the memory arm training draws from (others: diagnostics, e.g. "oracle")
    pool: int = 384  # training geometries ranked by VideoFOV up front (textures stay endless)
    sigmas: tuple[float, ...] = (0.3, 0.6, 0.9)
    compare_sigma: float = 0.6
    n_boot: int = 2000
    layers: int = 4
    # Width heads*head_dim must reach a 1x2x2 token's 4*48 = 192 latent numbers: the DiT has no skip from its
    # input to its output, so a narrower residual stream cannot carry the noise it must predict back out, and
    # that lost noise alone caps x̂0 PSNR (at 96 wide: 13.85 dB at σ=0.6 even with x0 known exactly), leaving
    # almost nothing for memory to win. 8x24 = 192 keeps every dimension.
    heads: int = 8
    head_dim: int = 24
    workers: int = 3  # seeds trained side by side, one thread each (3 processes on 2 cores beat 2 rounds)

    def __post_init__(self) -> None:
        if self.train_memory not in ARMS:
            raise ValueError(f"train_memory must be one of {ARMS}, got {self.train_memory!r}")
        if self.compare_sigma not in self.sigmas:
            raise ValueError(f"compare_sigma {self.compare_sigma} must be one of sigmas {self.sigmas}")
        if self.steps < 0 or self.batch < 1 or self.n_test < 2 or not self.seeds:
            raise ValueError(f"need steps >= 0, batch >= 1, n_test >= 2 and a seed, got {self}")


def memory_for(arm: str, scene: Scene, other: Scene, k: int, rng: np.random.Generator) -> list[int]:
    """Rows of ``scene.pixels`` (or of ``other``'s for ``shuffled``) to use as memory, most relevant first."""
    from training.retrieval import choose

    n = len(scene.ranked)
    if arm == "none":
        return []
    if arm in ("fov", "shuffled"):
        return [1 + i for i in choose("retrieved", k, n, rng, scene.ranked if arm == "fov" else other.ranked)]
    if arm == "random":
        return [1 + i for i in choose("random", k, n, rng)]
    if arm == "oracle":
        return [0] + [1 + i for i in choose("retrieved", k - 1, n, rng, scene.ranked)]
    raise ValueError(f"arm must be one of {ARMS}, got {arm!r}")


def encode(scenes: list[Scene], picks: list[list[int]], sources: list[Scene], codec, text) -> dict:
    """The recipe's encoded batch (training/step.py ``z``): target, user = target's first frame, memory, cams."""
    tgt = torch.stack([s.video(0) for s in scenes])  # (B, 3, F, H, W)
    k = len(picks[0])
    mem = [torch.stack([src.video(p[j]) for src, p in zip(sources, picks)]) for j in range(k)]
    cams = {
        "target": torch.stack([s.cams[0] for s in scenes]),  # (B, F, 12)
        "user": torch.stack([s.cams[0, :1] for s in scenes]),
        "memory": [torch.stack([src.cams[p[j]] for src, p in zip(sources, picks)]) for j in range(k)],
    }
    return {
        "kind": "multicam",
        "target": codec(tgt),
        "user": codec(tgt[:, :, :1]),
        "memory": [codec(m) for m in mem],
        "cams": cams,
        "text": text([CAPTION] * len(scenes)),
    }


def build_objective(cfg: Settings, seed: int):
    from diffusers import WanTransformer3DModel

    from models.memory_dit import MemoryDiT, MemoryDiTConfig
    from models.tiny_wan import TRANSFORMER
    from training.step import FlowObjective, StepConfig

    torch.manual_seed(seed)
    c = PixelCodec.channels
    dims = {"num_layers": cfg.layers, "num_attention_heads": cfg.heads, "attention_head_dim": cfg.head_dim}
    tr = WanTransformer3DModel(**{**TRANSFORMER, **dims, "in_channels": c, "out_channels": c,
                                  "ffn_dim": 2 * cfg.heads * cfg.head_dim})  # fmt: skip
    dit = MemoryDiT(tr, MemoryDiTConfig(merge_blocks=(), memory_level="fine", camera=True))
    return FlowObjective(dit, StepConfig(latent_time_stride=1))  # the recipe's other rates as shipped


def train(cfg: Settings, seed: int, pool: GeometryPool, log=print):
    """One model trained on endless scenes with VideoFOV top-k memory (none on ``no_memory_prob`` of batches)."""
    from training.text import HashText

    obj, text = build_objective(cfg, seed), HashText(32)
    codec, rng, g = PixelCodec(), np.random.default_rng([seed, 3]), torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(obj.parameters(), lr=cfg.lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 50))
    obj.train()
    t0, recent = time.perf_counter(), []
    for step in range(cfg.steps):
        scenes = [pool.draw(rng) for _ in range(cfg.batch)]
        arm = "none" if rng.random() < cfg.no_memory_prob else cfg.train_memory
        picks = [memory_for(arm, s, s, cfg.memory_k, rng) for s in scenes]
        loss, _ = obj(encode(scenes, picks, scenes, codec, text), g)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(obj.parameters(), 1.0)
        opt.step()
        sched.step()
        recent.append(float(loss.detach()))
        if (step + 1) % max(1, cfg.steps // 10) == 0:
            log(f"  seed {seed} step {step + 1}/{cfg.steps} loss {np.mean(recent[-50:]):.4f} "
                f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    return obj.eval()


def eval_noise(i: int, shape: tuple[int, ...]) -> torch.Tensor:
    """Target ``i``'s noise draw: one per held-out target, shared by every arm, σ and seed."""
    return torch.randn(shape, generator=torch.Generator().manual_seed(1_000_003 + i))


def dit_fn(obj):
    """The DiT call the recipe makes for a multicam batch (novel-view layout, one camera row per latent frame)."""
    from training.step import LAYOUT, _camera_rows

    def fn(z: dict, xt: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        cams = _camera_rows(z["cams"], obj.cfg.latent_time_stride)
        return obj.dit(xt, sigma * 1000, z["text"], user=z["user"], memory=z["memory"], cams=cams,
                       layout=LAYOUT["multicam"])  # fmt: skip

    return fn


@torch.no_grad()
def evaluate(model_fn, tests: list[Scene], cfg: Settings, arms=ARMS, chunk: int = 32) -> dict:
    """``{arm: {"loss": (n, S), "x0_psnr": (n, S)}}`` per held-out target and σ in ``cfg.sigmas``.

    x0, noise and σ are the same in every arm; only the memory differs. Memory picks depend on the
    target alone (``random`` draws from a per-target generator), so every seed sees the same memories.
    """
    from training.losses import noisy
    from training.text import HashText

    codec, text, n = PixelCodec(), HashText(32), len(tests)
    out = {a: {"loss": np.zeros((n, len(cfg.sigmas))), "x0_psnr": np.zeros((n, len(cfg.sigmas)))} for a in arms}
    for lo in range(0, n, chunk):
        idx = range(lo, min(n, lo + chunk))
        scenes = [tests[i] for i in idx]
        for arm in arms:
            others = [tests[(i + 1) % n] for i in idx]  # "shuffled": the next scene's retrieved videos
            picks = [
                memory_for(arm, tests[i], o, cfg.memory_k, np.random.default_rng([5, i])) for i, o in zip(idx, others)
            ]
            z = encode(scenes, picks, others if arm == "shuffled" else scenes, codec, text)
            x0 = z["target"]
            eps = torch.stack([eval_noise(i, tuple(x0.shape[1:])) for i in idx])
            ref = torch.stack([s.pixels[0] for s in scenes]).float()
            for j, s in enumerate(cfg.sigmas):
                sig = torch.full((len(scenes),), float(s))
                xt, v = noisy(x0, sig, eps)
                pred = model_fn(z, xt, sig)
                out[arm]["loss"][lo : lo + len(scenes), j] = ((pred - v) ** 2).flatten(1).mean(1).numpy()
                gen = (codec.decode(xt - s * pred) + 1) * 127.5
                mse = ((gen - ref) ** 2).flatten(1).mean(1).clamp_min(1e-10)
                out[arm]["x0_psnr"][lo : lo + len(scenes), j] = (10 * torch.log10(255.0**2 / mse)).numpy()
    return out


def _seed_job(cfg: Settings, seed: int, pool: GeometryPool, tests: list[Scene], threads: int) -> tuple[dict, float]:
    torch.set_num_threads(threads)
    t = time.perf_counter()
    obj = train(cfg, seed, pool, lambda m: print(m, flush=True))
    train_s = time.perf_counter() - t
    return evaluate(dit_fn(obj), tests, cfg), train_s


def run(cfg: Settings, log=print) -> dict:
    """Train one model per seed, score every arm; ``{"per_seed": [evaluate(...)], "train_s", "total_s"}``.

    Seeds run in ``cfg.workers`` processes of one thread each: this model's small matmuls gain little
    from a second thread, while two processes keep both cores busy.
    """
    t0 = time.perf_counter()
    pool = GeometryPool(cfg.pool, seed=1)
    tests = held_out(cfg.n_test, seed=2)
    log(f"VideoFOV rankings: {cfg.pool} training geometries + {cfg.n_test} held-out scenes "
        f"({time.perf_counter() - t0:.0f} s)")  # fmt: skip
    workers = min(cfg.workers, len(cfg.seeds))
    if workers <= 1:
        done = [_seed_job(cfg, s, pool, tests, torch.get_num_threads()) for s in cfg.seeds]
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as ex:
            done = list(ex.map(_seed_job, *zip(*[(cfg, s, pool, tests, 1) for s in cfg.seeds])))
    return {"per_seed": [d[0] for d in done], "train_s": [d[1] for d in done], "total_s": time.perf_counter() - t0}


def main(argv=None) -> int:
    from training.experiment_report import write_report

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    d = Settings()
    p.add_argument("--steps", type=int, default=d.steps)
    p.add_argument("--batch", type=int, default=d.batch)
    p.add_argument("--seeds", type=int, default=len(d.seeds), help="how many training seeds (0, 1, ...)")
    p.add_argument("--test", type=int, default=d.n_test, help="held-out targets")
    p.add_argument("--quick", action="store_true", help="a few steps and targets, to check the plumbing")
    p.add_argument("--out", default="bench_out/experiment_memory.json")
    a = p.parse_args(argv)
    cfg = replace(d, steps=a.steps, batch=a.batch, seeds=tuple(range(a.seeds)), n_test=a.test)
    if a.quick:
        cfg = replace(cfg, steps=20, batch=4, seeds=(0, 1), n_test=16, pool=16, n_boot=200)
    torch.set_num_threads(1)
    res = run(cfg)
    print(write_report(res, cfg, Path(a.out)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
