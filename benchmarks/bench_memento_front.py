"""The Memento front half end to end (shots + sequences + quality + subtitles + clip writing).

    .venv/bin/python benchmarks/bench_memento_front.py [--quick]

Runs the pipeline's stage list with the sequential runner on generated paper-shaped footage
(1280x720, 91 s, two 30-60 s sequences; --quick: 640x360 at half the durations with the
sequence rules halved too) and reports the real-time factor (seconds of footage per second
of wall time) next to the reference: one plain full-resolution PyAV decode of the same file,
and libx264 alone on frames of the clips' size (the floor of clip writing).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import av

from benchmarks.common import save
from pipelines.build_memento_corpus import MementoConfig, SequenceConfig, front_half
from pipelines.demo_memento import memento_film, render_film
from pipelines.runner import SequentialRunner
from stages.base import Sample
from stages.clips import Mp4Writer
from stages.video import iter_frames


def encoder_floor(path: Path, meta: dict | None, frames: int = 240) -> tuple[float, tuple[int, int]]:
    """libx264 frames/s with the clip writer's settings on already cropped and scaled frames."""
    cfg = MementoConfig()
    w, h = meta["clip_size"] if meta else (854, 480)
    pics = [av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            for _, _, img in itertools.islice(iter_frames(path, size=(w, h), threads=2), frames)]
    writer = Mp4Writer(24.0, w, h, crf=cfg.clip_crf, preset=cfg.clip_preset)
    t0 = time.perf_counter()
    for f in pics:
        writer.write_frame(f)
    writer.close()
    return len(pics) / (time.perf_counter() - t0), (w, h)


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
    seq_seconds = sum(x.meta["duration"] for x in accepted)
    enc_fps, enc_size = encoder_floor(path, accepted[0].meta if accepted else None)
    shot_cost = per_stage.get("DetectShots", 0.0) / seconds  # wall seconds per second of footage
    seq_cost = sum(v for k, v in per_stage.items() if k not in ("DetectShots", "SplitSequences")) / max(seq_seconds, 1e-9)
    load = os.getloadavg()
    lines = [
        "# Memento front half, end to end",
        "",
        (f"Footage: generated {w}x{h}, {seconds:.1f} s at 24 fps ({truth['frames']} frames), paper-shaped: "
         f"{seq_seconds / seconds:.0%} of it ends up in accepted sequences (the worst case for clip writing). "
         f"Sequential runner, one film. Machine: {os.cpu_count()} cores, load average {load[0]:.1f} / "
         f"{load[1]:.1f} / {load[2]:.1f} (1/5/15 min) at the end of the run."),
        "",
        "| what | wall s | real-time factor |",
        "|---|---:|---:|",
        f"| reference: one full-resolution PyAV decode (RGB) | {decode_s:.1f} | {seconds / decode_s:.1f}x |",
        f"| front half: shots + sequences + quality + subtitles + clips | {wall:.1f} | {seconds / wall:.1f}x |",
        "",
        "| stage | wall s | per second of its input | input |",
        "|---|---:|---:|---|",
    ]
    for k, v in per_stage.items():
        footage = k in ("DetectShots", "SplitSequences")
        per = v / (seconds if footage else max(seq_seconds, 1e-9))
        lines.append(f"| {k} | {v:.1f} | {per:.3f} s | {'footage' if footage else 'sequences'} |")
    lines += ["", (f"libx264 alone (preset {cfg.clip_preset}, crf {cfg.clip_crf}) on {enc_size[0]}x{enc_size[1]} "
                   f"frames: {enc_fps:.0f} frames/s, i.e. clip encoding alone caps the front half at "
                   f"{enc_fps / 24 * seconds / max(seq_seconds, 1e-9):.1f}x real time on this footage.")]
    lines += ["", ("Real-time factor when a given share of the footage becomes accepted sequences (from the "
              "per-second costs above; shots run over all footage, the other stages over sequences only):"), "",
              "| share in sequences | real-time factor |", "|---:|---:|"]
    lines += [f"| {y:.0%} | {1 / (shot_cost + y * seq_cost):.1f}x |"
              for y in (seq_seconds / seconds, 0.5, 0.25, 0.1)]
    lines += ["", f"Sequences accepted: {len(accepted)} of {len(out)}; "
              + "; ".join(f"{s.meta['source_frames']} {s.meta['duration']} s, {len(s.meta['shots'])} shots, "
                          f"crop {s.meta['crop']} keeps {s.meta['kept_fraction']:.2f}, clip {s.meta['clip_size']}, "
                          f"{len(s.blobs['clip.mp4']) / 1e6:.1f} MB" for s in accepted)
              + "; rejected: " + (", ".join(s.reason for s in out if s.rejected) or "none")]
    save("memento_front", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
