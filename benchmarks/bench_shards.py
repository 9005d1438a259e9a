"""Shard writing vs the raw sequential write speed of the same bytes on the same disk.

Three writers get the same samples (video-sized blobs + a JSON + an array each):
  raw        - the payload bytes concatenated into one file, then fsync: the disk's ceiling
  webdataset - webdataset.ShardWriter (no fsync, no atomic commit)
  memcorpus  - our RunWriter: tar to a temporary name, fsync, rename, manifest part, index
Run: python benchmarks/bench_shards.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import report
from pipelines.dataset import DatasetFolder
from pipelines.writer import RunWriter, encode_members
from stages.base import Sample


def make_samples(n: int, blob_mb: float) -> list[Sample]:
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        s = Sample(id=f"s{i:06d}", source={"i": i})
        s.blobs["clip.mp4"] = rng.bytes(int(blob_mb * (1 << 20)))
        s.arrays["desc"] = rng.standard_normal((8, 768)).astype(np.float32)
        s.meta = {"i": i, "caption": "x" * 200}
        out.append(s)
    return out


def bench_raw(samples: list[Sample], d: Path) -> float:
    payloads = [b for s in samples for b in encode_members(s).values()]
    t = time.perf_counter()
    with open(d / "raw.bin", "wb") as f:
        f.writelines(payloads)
        f.flush()
        os.fsync(f.fileno())
    return time.perf_counter() - t


def bench_webdataset(samples: list[Sample], d: Path, per_shard: int) -> float:
    import webdataset as wds

    members = [(s.id, encode_members(s)) for s in samples]
    t = time.perf_counter()
    with wds.ShardWriter(str(d / "wds-%06d.tar"), maxcount=per_shard, verbose=0) as w:
        for key, m in members:
            w.write({"__key__": key, **m})
    return time.perf_counter() - t


def bench_ours(samples: list[Sample], d: Path, per_shard: int) -> float:
    folder = DatasetFolder(d / "ours", "bench")
    t = time.perf_counter()
    w = RunWriter(folder, "run", {"x": "1"}, "k", {}, max_samples=per_shard)
    for s in samples:
        w.write(s)
    w.close()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--dir", default=None, help="where to write (default: a temp dir on the repo's disk)")
    args = ap.parse_args()
    n, mb, per_shard, reps = (60, 2.0, 20, 2) if args.quick else (200, 4.0, 50, 3)
    samples = make_samples(n, mb)
    total = sum(len(b) for s in samples for b in encode_members(s).values()) / (1 << 20)
    base = Path(args.dir or Path(__file__).resolve().parents[1] / "bench_out")
    base.mkdir(exist_ok=True)
    import pyarrow.parquet  # noqa: F401  - import cost is not writing cost
    import webdataset  # noqa: F401

    best = {"raw": 1e9, "webdataset": 1e9, "memcorpus": 1e9}
    runs = {"raw": lambda d: bench_raw(samples, d), "webdataset": lambda d: bench_webdataset(samples, d, per_shard),
            "memcorpus": lambda d: bench_ours(samples, d, per_shard)}
    for _ in range(reps):  # interleaved repetitions so page-cache state and load hit all three alike
        for name, fn in runs.items():
            d = Path(tempfile.mkdtemp(dir=base))
            try:
                best[name] = min(best[name], fn(d))
            finally:
                shutil.rmtree(d, ignore_errors=True)
    rows = [[name, f"{total:.0f}", f"{sec:.3f}", f"{total / sec:.0f}", f"{best['raw'] / sec:.0%}"]
            for name, sec in best.items()]
    report("shards", f"Shard writing, {n} samples of {mb:.0f} MiB, {per_shard} per shard (best of {reps})",
           ["writer", "MiB", "seconds", "MiB/s", "vs raw"], rows)


if __name__ == "__main__":
    main()
