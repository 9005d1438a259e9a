"""`make bench`: run every benchmarks/bench_*.py in turn and collect bench_out/*.md into one report."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE.parent / "bench_out"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    ap.add_argument("only", nargs="*", help="benchmark names, e.g. shards runners (default: all)")
    args = ap.parse_args()
    benches = sorted(HERE.glob("bench_*.py"))
    if args.only:
        benches = [b for b in benches if b.stem.removeprefix("bench_") in args.only]
    failed = []
    for b in benches:
        print(f"== {b.stem}", flush=True)
        t = time.perf_counter()
        r = subprocess.run([sys.executable, str(b), *(["--quick"] if args.quick else [])], check=False)
        print(f"== {b.stem}: exit {r.returncode} in {time.perf_counter() - t:.0f} s", flush=True)
        if r.returncode:
            failed.append(b.stem)
    report = "\n".join(p.read_text() for p in sorted(OUT.glob("*.md")) if p.name != "REPORT.md")
    (OUT / "REPORT.md").write_text(report)
    print(f"\nall tables: {OUT / 'REPORT.md'}" + (f"; FAILED: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
