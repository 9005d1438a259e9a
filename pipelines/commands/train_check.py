"""memcorpus train-check DATASET: build N training examples exactly as training does and count what each carries.

DATASET is where the build wrote it: a local folder or any fsspec URI the trainer reads (training/data.py)."""

from __future__ import annotations

import argparse
import json

HELP = "build N training examples from a dataset as the trainer does; exit 1 if any conditioning input is missing"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dataset", help="dataset folder (its dataset.json): a path or an fsspec URI (s3://…, memory://…)")
    p.add_argument("--n", type=int, default=16, help="examples per example kind (default 16)")
    p.add_argument("--frames", type=int, default=9, help="pixel frames per clip, 1 + 4k (as the training config)")
    p.add_argument("--size", type=int, nargs=2, default=(64, 64), metavar=("H", "W"), help="example size")
    p.add_argument("--memory-mode", default="paper", help="paper | retrieved | random | none")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def run(args: argparse.Namespace) -> int:
    from training.examples import ExampleConfig
    from training.loader import train_check

    if args.n < 1:
        raise SystemExit("memcorpus train-check: --n must be >= 1")
    cfg = ExampleConfig(frames=args.frames, size=tuple(args.size), memory_mode=args.memory_mode)
    res = train_check(args.dataset, args.n, cfg, seed=args.seed)
    ok = res.pop("ok")
    if args.json:
        print(json.dumps(res))
    else:
        print(f"corpus {res['corpus']}: {res['examples_per_kind']} examples ({res['examples_per_s']} /s), "
              f"{res['samples_skipped']} of {res['samples_read']} samples unusable")
        for key, c in res["conditioning"].items():
            print(f"  {'ok  ' if c >= args.n else 'FAIL'} {key}: {c}/{args.n}")
    return 0 if ok else 1
