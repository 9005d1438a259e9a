"""Ingest and bookkeeping at scale: a generated Señorita-style pair list of N records through the Ray runner.

    python benchmarks/bench_scale.py --records 20000 --json
    PYTHONPATH=/tmp/old python benchmarks/bench_scale.py --records 20000 --json --label old   # code at HEAD

Most records name clips that do not exist (rejected ``missing_file`` at ingest); every 100th
names one of 50 tiny files that are not videos (rejected by ``ValidatePair``, some as
duplicates of the same bytes). No model runs: this measures what the driver does per record
(metadata, gate, rows, commits), not FramePack. Prints one JSON object:
``records``, ``ingest_records_per_s`` (records / wall time of the build, Ray already up),
``driver_peak_rss_mib`` (the driver's peak resident set, ``getrusage``; also sampled apart for the build
phase and for the end of the run, which writes the dataset card), and
``driver_payload_bytes_per_sample`` (bytes of sample payload that reached the driver, per
processed input).
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.environ.get("PYTHONPATH", "").split(":")[0] or str(Path(__file__).resolve().parents[1]))


def write_pairs(d: Path, n: int) -> Path:
    """The pair list, streamed to disk (the benchmark's own memory stays out of the figure)."""
    (d / "clips").mkdir(parents=True)
    for k in range(50):
        (d / "clips" / f"s{k}.mp4").write_bytes(os.urandom(64 + k))
        (d / "clips" / f"t{k}.mp4").write_bytes(os.urandom(64 + k))
    path = d / "pairs.json"
    with open(path, "w") as f:
        f.write("[\n")
        for i in range(n):
            k = (i // 100) % 50
            src, tgt = (f"clips/s{k}.mp4", f"clips/t{k}.mp4") if i % 100 == 0 else (f"v/{i}_s.mp4", f"v/{i}_t.mp4")
            rec = {"source_video_path": src, "target_video_path": tgt, "instruction": f"make the car red {i}",
                   "enhanced_instruction": f"Make the car in the scene a deep glossy red, take {i}."}
            f.write(("," if i else "") + json.dumps(rec) + "\n")
        f.write("]\n")
    return path


class _Counting:
    """``pickle`` as the old runner used it, counting the bytes it unpickled on the driver."""

    def __init__(self) -> None:
        self.bytes = 0

    def dumps(self, *a, **k):
        return pickle.dumps(*a, **k)

    def loads(self, data, *a, **k):
        self.bytes += len(data)
        return pickle.loads(data, *a, **k)


def run(n: int, label: str) -> dict:
    import ray

    from pipelines import ray_runner
    from pipelines.common import RunConfig, run_corpus
    from stages.senorita import ValidatePair

    tmp = Path(tempfile.mkdtemp(prefix="bench_scale_"))
    pairs = write_pairs(tmp / "in", n)
    if label != "old":
        from pipelines.metadata import PairList

        inputs = PairList(str(pairs), str(pairs.parent))
        counter = None
    else:  # the code at HEAD (PYTHONPATH=/tmp/old): ingest on the driver, samples back through iter_rows
        from stages.senorita import load_pairs, pair_inputs

        inputs = pair_inputs(load_pairs(pairs), pairs.parent)
        counter = ray_runner.pickle = _Counting()

    from dataclasses import dataclass, field

    @dataclass(frozen=True)
    class Cfg:
        run: RunConfig = field(default_factory=lambda: RunConfig(out=str(tmp / "out"), runner="ray", progress=False,
                                                                 commit_every_s=5.0))

    # The build phase (ingest, stages, commits) and the end of the run (folding, the dataset card, which
    # reads the whole live manifest) are sampled apart: the second grows with the dataset whatever the runner.
    import threading

    import psutil

    from pipelines import common

    proc, peak, phase, done = psutil.Process(), {"build": 0.0, "end": 0.0}, ["build"], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[phase[0]] = max(peak[phase[0]], proc.memory_info().rss / 2**20)
            time.sleep(0.05)

    card = common.write_card

    def card_phase(folder):
        phase[0] = "end"
        return card(folder)

    common.write_card = card_phase
    threading.Thread(target=sample, daemon=True).start()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    t0 = time.perf_counter()
    s = run_corpus("senorita_long", Cfg(), inputs, [ValidatePair()])
    wall = time.perf_counter() - t0
    done.set()
    rec = json.loads(next((tmp / "out" / "runs").glob("*.json")).read_text())
    payload = rec.get("driver_payload_bytes", counter.bytes if counter else 0)
    processed = s.counts.get("accepted", 0) + s.counts.get("rejected", 0)
    assert processed == n, f"{processed} of {n} records finished"
    ray.shutdown()
    return {"records": n, "ingest_records_per_s": round(n / wall, 1),
            "driver_peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "driver_payload_bytes_per_sample": round(payload / max(processed, 1), 1), "label": label,
            "driver_peak_rss_build_mib": round(peak["build"], 1), "driver_peak_rss_end_mib": round(peak["end"], 1),
            "wall_s": round(wall, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=20000)
    p.add_argument("--label", default="new", help="'old': the pre-scale-out path (run with PYTHONPATH=<old checkout>)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.ERROR)
    out = run(args.records, args.label)
    print(json.dumps(out) if args.json else "\n".join(f"{k}: {v}" for k, v in out.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
