"""`make soak`: hundreds of generated inputs through a pipeline on the Ray runner, memory watched.

Reports wall time, peak RSS of the driver and of the Ray worker processes (sampled every
0.5 s), object-store spilling, and whether memory stayed bounded: the RSS of the last
quarter of the run must not exceed the second quarter's (after start-up) by more than ``--growth`` (streaming,
not materialising the dataset). Offline backends only (tiny random models).
Run: python benchmarks/soak.py [--corpus senorita_long] [--inputs 500]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import report


class RssSampler(threading.Thread):
    """Samples the driver's RSS and the summed RSS of Ray worker processes."""

    def __init__(self, every: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.every, self.samples, self.stop = every, [], threading.Event()

    def run(self) -> None:
        me = psutil.Process()
        while not self.stop.is_set():
            workers = 0
            # The embedded Ray's raylet and its workers are descendants of this driver.
            for p in me.children(recursive=True):
                try:
                    if "ray::" in p.name() or "default_worker.py" in " ".join(p.cmdline()):
                        workers += p.memory_info().rss
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
            self.samples.append((time.perf_counter(), me.memory_info().rss, workers))
            time.sleep(self.every)


def spilled_mib() -> float:
    try:
        import ray
        from ray._private.internal_api import memory_summary

        text = memory_summary(address=ray.get_runtime_context().gcs_address, stats_only=True)
    except Exception:  # noqa: BLE001 - the summary is informative only
        return float("nan")
    for line in text.splitlines():
        if line.strip().startswith("Spilled"):
            return float(line.split()[1])
    return 0.0


def soak_senorita(n: int, work: Path):
    from models.tiny import build_tiny
    from pipelines.build_senorita_long import SenoritaConfig, build_inputs, build_stages
    from pipelines.common import load_config, run_corpus
    from pipelines.demo_senorita import write_demo

    pairs = write_demo(work / "in", n_pairs=n, size=(64, 48), broken=True)
    cfg = load_config(SenoritaConfig, None, pairs=str(pairs), run__out=str(work / "out"), run__runner="ray",
                      run__ray_num_cpus=2, extend__model=str(build_tiny("framepack", work / "tiny")),
                      extend__steps=1, extend__num_new_frames=200,
                      descriptors__model=str(build_tiny("dinov2", work / "tiny")))
    return cfg, lambda: run_corpus("senorita_long", cfg, build_inputs(cfg), build_stages(cfg))


def soak_memento(n: int, work: Path):
    """n short films (4 shots of 2.5 s at 160x96) with tracking; captions off (the tiny Qwen3-VL
    takes ~20 s per sequence on these cores, which would make the soak a caption benchmark)."""
    from pipelines.build_memento_corpus import MementoConfig, build_inputs, build_stages
    from pipelines.common import load_config, run_corpus
    from pipelines.demo_memento import Film, Shot, render_film

    (work / "in").mkdir(parents=True)
    for i in range(n):
        render_film(work / "in" / f"film{i:04d}.mp4", Film(tuple(Shot(30) for _ in range(4)), 160, 96, 12.0, seed=i))
    (work / "in" / "broken.mp4").write_bytes(b"not a video")
    cfg = load_config(MementoConfig, None, footage=str(work / "in"), run__out=str(work / "out"), run__runner="ray",
                      run__ray_num_cpus=2, sequences__min_seconds=5.0, sequences__max_seconds=10.0,
                      sequences__min_shot_seconds=2.0, quality__min_short_side=64, captions__enabled=False)
    return cfg, lambda: run_corpus("memento", cfg, build_inputs(cfg), build_stages(cfg))


def soak_multicam(n: int, work: Path):
    """n synchronised 10-camera scenes of 24 frames at 32x32 (poses, VideoFOV, scores)."""
    from pipelines.build_multicam_corpus import MulticamConfig, build_inputs, build_stages
    from pipelines.common import load_config, run_corpus
    from pipelines.demo_multicam import write_scene

    split = work / "multicam" / "train" / "f24_aperture5"
    for i in range(n):
        write_scene(split / f"scene{i + 1}", size=32, frames=24, seed=i)
    cfg = load_config(MulticamConfig, None, multicam=str(work / "multicam"), run__out=str(work / "out"),
                      run__runner="ray", run__ray_num_cpus=2)
    return cfg, lambda: run_corpus("multicam", cfg, build_inputs(cfg), build_stages(cfg))


CORPORA = {"senorita_long": soak_senorita, "memento": soak_memento, "multicam": soak_multicam}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", choices=sorted(CORPORA), default="senorita_long")
    ap.add_argument("--inputs", type=int, default=500)
    ap.add_argument("--growth", type=float, default=1.5, help="allowed RSS growth, last vs first quarter")
    args = ap.parse_args()
    from benchmarks.common import OUT
    from pipelines.verify import verify

    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=OUT) as d:  # on the repo's disk, inside the ignored bench_out/
        cfg, go = CORPORA[args.corpus](args.inputs, Path(d))
        sampler = RssSampler()
        sampler.start()
        t = time.perf_counter()
        import ray

        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
        summary = go()
        spilled = spilled_mib()
        ray.shutdown()
        wall = time.perf_counter() - t
        sampler.stop.set()
        problems, _ = verify(cfg.run.out)
    s = sampler.samples
    # The first quarter is start-up (workers and models loading); compare the second with the last.
    q = max(len(s) // 4, 1)
    first = max(r + w for _, r, w in s[q : 2 * q] or s[:q]) / 2**20
    last = max(r + w for _, r, w in s[-q:]) / 2**20
    bounded = last <= args.growth * first
    rows = [[args.corpus, str(summary.counts["processed"]), str(summary.counts["accepted"]), f"{wall:.0f}",
             f"{max(r for _, r, _ in s) / 2**20:.0f}", f"{max(w for _, _, w in s) / 2**20:.0f}", f"{spilled:.0f}",
             f"{first:.0f} -> {last:.0f} ({'bounded' if bounded else 'GROWING'})", "ok" if not problems else "FAIL"]]
    report(f"soak_{args.corpus}", f"Soak: {args.inputs} generated inputs, Ray runner, 2 CPUs, tiny models",
           ["corpus", "processed", "accepted", "wall s", "driver peak RSS MiB", "workers peak RSS MiB",
            "spilled MiB", "RSS 2nd -> last quarter MiB", "verify"], rows)
    if problems or not bounded:
        sys.exit(1)


if __name__ == "__main__":
    main()
