"""The Memento front half end to end (shots + sequences + quality + subtitles + clip writing).

    .venv/bin/python benchmarks/bench_memento_front.py [--quick]

Runs the pipeline's stage list with the sequential runner on generated paper-shaped footage
(1280x720, 97 s, two 30-60 s sequences; --quick: 640x360 at half the durations with the
sequence rules halved too) and reports the real-time factor (seconds of footage per second
of wall time) next to the reference: one plain full-resolution PyAV decode of the same file.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.build_memento_corpus import MementoConfig, SequenceConfig, front_half
from pipelines.demo_memento import memento_film, render_film
from pipelines.runner import SequentialRunner
from stages.base import Sample
from stages.video import iter_frames


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    w, h, scale = (640, 360, 0.5) if args.quick else (1280, 720, 1.0)
    path = Path(tempfile.mkdtemp(prefix="bench_memento_")) / "footage.mp4"
    truth = render_film(path, memento_film(w, h, 24.0, scale=scale))
    seconds = truth["frames"] / truth["fps"]
    cfg = MementoConfig(sequences=SequenceConfig(min_seconds=30 * scale, max_seconds=60 * scale,
                                                 min_shot_seconds=5 * scale))

    t0 = time.perf_counter()
    for _ in iter_frames(path, threads=2):
        pass
    decode_s = time.perf_counter() - t0

    stages = front_half(cfg)
    t0 = time.perf_counter()
    out = list(SequentialRunner().run(stages, [Sample(id="bench", source={"path": str(path)})]))
    wall = time.perf_counter() - t0
    accepted = [s for s in out if not s.rejected]
    per_stage: dict[str, float] = {}
    for s in out:
        for k, v in s.timings.items():
            # Children inherit the footage-level stages' time: count it once; their own stages add up.
            shared = k in ("DetectShots", "SplitSequences")
            per_stage[k] = per_stage.get(k, 0.0) + (v / s.part[1] if shared else v)
    load = os.getloadavg()
    lines = [
        "# Memento front half, end to end",
        "",
        (f"Footage: generated {w}x{h}, {seconds:.1f} s at 24 fps ({truth['frames']} frames). Machine: "
        f"{os.cpu_count()} cores shared with other engineers, load average {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} (1/5/15 min) during the run: figures are pessimistic."),
        "",
        "| what | wall s | real-time factor |",
        "|---|---:|---:|",
        f"| reference: one full-resolution PyAV decode | {decode_s:.1f} | {seconds / decode_s:.1f}x |",
        f"| front half: shots + sequences + quality + subtitles + clips | {wall:.1f} | {seconds / wall:.1f}x |",
        "",
        "| stage | seconds |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v:.1f} |" for k, v in per_stage.items()]
    lines += ["", f"Sequences accepted: {len(accepted)} of {len(out)}; "
              + "; ".join(f"{s.meta['source_frames']} {s.meta['duration']} s, {len(s.meta['shots'])} shots, "
                          f"crop {s.meta['crop']} keeps {s.meta['kept_fraction']:.2f}, "
                          f"{len(s.blobs['clip.mp4']) / 1e6:.1f} MB" for s in accepted)
              + "; rejected: " + ", ".join(s.reason for s in out if s.rejected)]
    Path("bench_out").mkdir(exist_ok=True)
    Path("bench_out/memento_front.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
