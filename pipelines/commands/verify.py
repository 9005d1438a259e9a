"""memcorpus verify OUT: prove the dataset folder is consistent (exit 1 with the problems if not)."""

from __future__ import annotations

import argparse
import json

HELP = "check a dataset folder: every input exactly once, every listed shard complete, no duplicate samples"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="dataset folder")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--quick", action="store_true",
                   help="sizes and tar headers only, no member checksums (fast; misses damaged payload bytes)")


def run(args: argparse.Namespace) -> int:
    from pipelines.verify import verify

    problems, stats = verify(args.out, quick=args.quick)
    if args.json:
        print(json.dumps({"ok": not problems, "problems": problems, "stats": stats}, indent=1))
    else:
        for p in problems:
            print(f"FAIL: {p}")
        verdict = "OK" if not problems else f"{len(problems)} problem(s)"
        print(f"{verdict}: " + ", ".join(f"{k}={v}" for k, v in stats.items()))
    return 1 if problems else 0
