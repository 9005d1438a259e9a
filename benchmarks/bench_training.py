"""Trainer benchmarks: loader vs raw tar read, adaptive token merging cost, 1 vs 2 Ray Train workers.

    .venv/bin/python benchmarks/bench_training.py [--quick] [--skip-ray]

Prints a markdown table and writes it to bench_out/training.md. Shared 2-core machine: the
figures are noisy and only comparable within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

from benchmarks.common import save


def bench_loader(root: Path, repeats: int) -> list[tuple[str, str, str]]:
    from training.data import open_dataset, shard_paths

    def raw() -> int:
        n = 0
        for p in shard_paths(root):
            with tarfile.open(p) as tf:
                keys = set()
                for m in tf:
                    tf.extractfile(m).read()
                    keys.add(m.name.split(".", 1)[0])
                n += len(keys)
        return n

    def timed(fn):
        best = float("inf")
        for _ in range(repeats):
            t0 = time.perf_counter()
            n = fn()
            best = min(best, time.perf_counter() - t0)
        return n / best

    raw_sps = timed(raw)
    ours = timed(lambda: sum(1 for _ in open_dataset(root, decode=False)))
    dec = timed(lambda: sum(1 for _ in open_dataset(root, decode=True)))
    return [
        ("loader: raw tar read (reference)", f"{raw_sps:.0f} samples/s", "tarfile, every member read"),
        ("loader: open_dataset(decode=False)", f"{ours:.0f} samples/s", f"{100 * ours / raw_sps:.0f} % of raw"),
        ("loader: open_dataset(decode=True)", f"{dec:.1f} samples/s", "incl. H.264 decode of 4 videos/sample"),
    ]


def bench_examples(corpora: dict[str, Path], n: int) -> list[tuple[str, str, str]]:
    """Training examples per second per corpus: shard read, decode and the example builder, as training does."""
    from training.loader import train_check

    rows = []
    for name, root in corpora.items():
        res = train_check(str(root), n)
        kinds = res["corpus"] if isinstance(res["corpus"], list) else [res["corpus"]]
        rows.append((f"loader: {name} examples ({', '.join(kinds)})", f"{res['examples_per_s']:.2f} examples/s",
                     f"{n} per kind, 64x64 x 9 frames; conditioning {res['conditioning']}"))
    return rows


def bench_merge(quick: bool) -> list[tuple[str, str, str]]:
    """Paper settings: 30 blocks, merging at blocks 10 and 20, user + 3 mid + rest coarse memory."""
    from diffusers import WanTransformer3DModel
    from torch.utils.flop_counter import FlopCounterMode

    from models.memory_dit import MemoryDiT, MemoryDiTConfig
    from models.tiny_wan import TRANSFORMER

    torch.manual_seed(0)
    tr = WanTransformer3DModel(
        **{**TRANSFORMER, "num_layers": 30, "num_attention_heads": 4, "attention_head_dim": 24, "ffn_dim": 256}
    )
    t, hw, n_mem = 5, 32, 8
    lat = lambda: torch.randn(1, 4, t, hw, hw)
    args = {
        "timestep": torch.tensor([500.0]),
        "text": torch.randn(1, 8, 32),
        "user": lat(),
        "memory": [lat() for _ in range(n_mem)],
    }
    # (merge ratio, also merge user-input frames): memory-only is our default reading of §3.3
    ratios = ((0.0, False), (0.5, False), (0.7, False), (0.5, True), (0.7, True))
    models = {
        r: MemoryDiT(tr, MemoryDiTConfig(merge_blocks=(10, 20) if r[0] else (), merge_user=r[1])) for r in ratios
    }
    flops, stats, best = {}, {}, {r: float("inf") for r in ratios}
    for r, m in models.items():
        with FlopCounterMode(display=False) as fc:
            out, stats[r] = m(lat(), merge_ratio=r[0], return_stats=True, **args)
            out.sum().backward()
        flops[r] = fc.get_total_flops()
    # Interleave the timed runs so load from other engineers hits every setting alike.
    for _ in range(1 if quick else 3):
        for r, m in models.items():
            t0 = time.perf_counter()
            m(lat(), merge_ratio=r[0], **args).sum().backward()
            best[r] = min(best[r], time.perf_counter() - t0)
    rows = []
    for r in ratios:
        what = "memory + user frames" if r[1] else "memory frames"
        name = "no merging (reference)" if r[0] == 0 else f"merge {what}, r={r[0]} at blocks 10, 20"
        st = stats[r]
        rows.append(
            (
                f"merge: {name}",
                f"{flops[r] / 1e9:.2f} GFLOP fwd+bwd, {best[r] * 1e3:.0f} ms/step",
                (
                    f"tokens {st['tokens_in']} -> {st['tokens_per_block'][-1]}; "
                    f"{100 * (1 - flops[r] / flops[ratios[0]]):.0f} % fewer FLOPs, "
                    f"{100 * (1 - best[r] / best[ratios[0]]):.0f} % less time"
                ),
            )
        )
    return rows


def bench_workers(quick: bool, data: Path, tiny: str) -> list[tuple[str, str, str]]:
    import ray

    from training.config import load_train_config
    from training.train import fit

    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1"}}
    )
    rows, base = [], None
    steps = 6 if quick else 20
    try:
        for n in (1, 2):
            with tempfile.TemporaryDirectory() as out:
                cfg = load_train_config(
                    None,
                    dataset=str(data),
                    backbone=tiny,
                    out=out,
                    name=f"w{n}",
                    steps=steps,
                    num_workers=n,
                    cpus_per_worker=2 / n - 0.01,
                    frames=5,
                    size=(32, 32),
                    memory_k=2,
                    merge_blocks=[2],
                    checkpoint_every=steps,
                    batch_size=1,
                )
                fit(cfg)
                log = [json.loads(x) for x in (Path(out) / f"w{n}" / "steps.jsonl").read_text().splitlines()]
                dt = log[-1]["step_time_s"]  # mean over the run, per optimiser step
                sps = n / dt  # samples/s: one sample per worker per step
                base = base or sps
                rows.append(
                    (
                        f"train: {n} Ray Train worker(s), tiny DiT",
                        f"{sps:.2f} samples/s",
                        f"{dt * 1e3:.0f} ms/step; x{sps / base:.2f} vs 1 worker",
                    )
                )
    finally:
        ray.shutdown()
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--skip-ray", action="store_true", help="skip the Ray Train worker comparison")
    args = p.parse_args(argv)
    from models.tiny import build_tiny
    from pipelines.demo_corpora import build_memento_demo, build_multicam_demo, build_senorita_demo

    tmp = Path(tempfile.mkdtemp(prefix="bench_training_"))
    tiny = {fam: str(build_tiny(fam, tmp / "tiny")) for fam in ("framepack", "dinov2", "wan")}
    # The loader reads what the real pipelines write: the demo builds at small settings (a few minutes).
    data = build_senorita_demo(tmp / "senorita", tiny["framepack"], tiny["dinov2"], pairs=2 if args.quick else 4)
    corpora = {"senorita_long": data, "multicam": build_multicam_demo(tmp / "multicam"),
               "memento": build_memento_demo(tmp / "memento")}
    rows = bench_loader(data, 1 if args.quick else 3) + bench_examples(corpora, 8 if args.quick else 32)
    rows += bench_merge(args.quick)
    if not args.skip_ray:
        rows += bench_workers(args.quick, data, tiny["wan"])
    table = "| measurement | figure | notes |\n|---|---|---|\n" + "\n".join(f"| {a} | {b} | {c} |" for a, b, c in rows)
    head = (
        f"bench_training ({'quick' if args.quick else 'full'}), {os.cpu_count()} cores shared with other "
        "engineers: noisy, compare within this run only.\n\n"
    )
    print(head + table)
    save("training", head + table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
