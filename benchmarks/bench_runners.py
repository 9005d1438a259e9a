"""Ray runner vs sequential runner on the Señorita demo's light stage (pair validation).

The light stage decodes and checks both clips of every pair. Ray's start-up (~10 s here) is
reported apart from the streaming time, since a real run pays it once per job.
Run: python benchmarks/bench_runners.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import report
from pipelines.demo_senorita import write_demo
from pipelines.ray_runner import RayRunner
from pipelines.runner import SequentialRunner
from stages.senorita import ValidatePair, load_pairs, pair_inputs


def timed(runner, pairs) -> tuple[float, int]:
    inputs = list(pair_inputs(load_pairs(pairs), pairs.parent))
    t = time.perf_counter()
    n = sum(1 for s in runner.run([ValidatePair()], inputs) if not s.rejected)
    return time.perf_counter() - t, n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    n_pairs, size = (24, (320, 240)) if args.quick else (64, (640, 360))
    import ray

    with tempfile.TemporaryDirectory() as d:
        pairs = write_demo(d, n_pairs=n_pairs, size=size, broken=False)
        seq, n1 = timed(SequentialRunner(), pairs)
        t = time.perf_counter()
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
        startup = time.perf_counter() - t
        ray_s, n2 = timed(RayRunner(shutdown=False), pairs)
        ray.shutdown()
    assert n1 == n2 == n_pairs, (n1, n2)
    rows = [
        ["sequential", f"{seq:.2f}", "-", f"{n_pairs / seq:.1f}", "1.00x"],
        ["ray (2 CPUs)", f"{ray_s:.2f}", f"{startup:.1f}", f"{n_pairs / ray_s:.1f}", f"{ray_s / seq:.2f}x"],
    ]
    report("runners", f"Runners on the light stage: {n_pairs} pairs of 33 frames at {size[0]}x{size[1]}",
           ["runner", "stream s", "ray start s", "pairs/s", "time vs sequential"], rows,
           "Target: the Ray runner's streaming time at most 1.5x the sequential runner's.")


if __name__ == "__main__":
    main()
