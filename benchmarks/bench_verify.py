"""``memcorpus verify`` with member checksums vs ``--quick`` (sizes and tar headers only).

Times both on dataset folders given with ``--dataset`` (e.g. the demo corpora) and on a
synthetic corpus of video-sized random members written by the real writer (digests are
computed while writing, so the writer's time is shown too). Warm page cache: this measures
the CPU cost of hashing and tar parsing, not the disk.
Run: python benchmarks/bench_verify.py [--dataset out/senorita_long ...] [--samples 60 --mb 4]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import report
from pipelines.dataset import DatasetFolder
from pipelines.verify import verify
from pipelines.writer import RunWriter
from stages.base import Sample


def synthetic(root: Path, n: int, mb: float) -> float:
    rng = np.random.default_rng(0)
    folder = DatasetFolder(root, "bench")
    t = time.perf_counter()
    w = RunWriter(folder, "run", {"x": "1"}, "k", {}, max_samples=20)
    for i in range(n):
        s = Sample(id=f"s{i:05d}", source={"i": i})
        s.blobs["clip.mp4"] = rng.bytes(int(mb * (1 << 20)))
        s.arrays["desc"] = rng.standard_normal((8, 768)).astype(np.float32)
        s.meta = {"i": i}
        w.write(s)
    w.close()
    folder.finish_run("run", {"run": "run", "complete": True, "counts": {"processed": n}})
    return time.perf_counter() - t


def best(fn, reps: int) -> float:
    out = 1e9
    for _ in range(reps):
        t = time.perf_counter()
        problems, _ = fn()
        out = min(out, time.perf_counter() - t)
        assert problems == [], problems[:3]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataset", action="append", default=[])
    ap.add_argument("--samples", type=int, default=60)
    ap.add_argument("--mb", type=float, default=4.0)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-verify-"))
    try:
        write_s = synthetic(tmp / "syn", args.samples, args.mb)
        targets = [*args.dataset, str(tmp / "syn")]
        for d in targets:
            size = sum(p.stat().st_size for p in Path(d, "shards").glob("*.tar")) / (1 << 20)
            full = best(lambda d=d: verify(d), args.reps)
            quick = best(lambda d=d: verify(d, quick=True), args.reps)
            name = f"synthetic {args.samples} x {args.mb:g} MiB" if d == str(tmp / "syn") else d
            rows.append([name, f"{size:.1f}", f"{full:.3f}", f"{quick:.3f}", f"{size / full:.0f}"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report("verify", f"verify with checksums vs --quick (best of {args.reps}, warm cache)",
           ["dataset", "shard MiB", "verify s", "verify --quick s", "MiB/s with checksums"], rows,
           notes=f"synthetic corpus written in {write_s:.2f} s with digests computed during the write")


if __name__ == "__main__":
    main()
