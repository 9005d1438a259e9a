"""Señorita-Long model side: FramePack F1 extension and DINOv2 descriptors, per sample.

    .venv/bin/python benchmarks/bench_framepack.py [--quick] [--device cuda] [--steps N]

Reference (the floor): raw decode of the 33-frame target + H.264 encode of a 233-frame clip,
the pixel work ExtendTarget does around the model. Everything runs on the tiny random model
at the demo's size (128x96), so these are plumbing costs, not real FramePack speeds.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import psutil

from benchmarks.common import report


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 10 ms)."""

    def __enter__(self):
        self._proc, self._stop, self.peak = psutil.Process(), threading.Event(), 0
        self.start = self._proc.memory_info().rss
        self._t = threading.Thread(target=self._poll, daemon=True)
        self._t.start()
        return self

    def _poll(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(0.01)

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def demo_clip(t: int, h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.empty((t, h, w, 3), np.uint8)
    for i in range(t):
        blob = np.exp(-((xx - 10 - (w - 20) * i / t) ** 2 + (yy - h / 2) ** 2) / 60.0)[..., None]
        out[i] = np.clip(np.stack([40 + 150 * xx / w, 60 + 120 * yy / h, 110 + 0 * xx], -1) + 90 * blob, 0, 255)
    return out


def timed(obj, name: str, acc: dict) -> None:
    """Wrap ``obj.name`` to add its wall time to ``acc[name]``."""
    fn = getattr(obj, name)

    def wrapper(*a, **k):
        t0 = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            acc[name] = acc.get(name, 0.0) + time.perf_counter() - t0

    setattr(obj, name, wrapper)


def mib(n: float) -> str:
    return f"{n / 2**20:.0f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="4 steps, 1 repeat")
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=None, help="denoising steps (default 25; 4 with --quick)")
    p.add_argument("--size", default="128x96", help="WxH of the clip (the demo's size)")
    p.add_argument("--models", default="out/tiny_models", help="where the tiny models are (built if missing)")
    args = p.parse_args(argv)
    import torch

    from models.dino import DinoFeatures, segment_bounds, segment_descriptors
    from models.framepack import FramePackExtender
    from models.tiny import build_tiny
    from stages.video import encode_mp4, read_frames

    w, h = (int(v) for v in args.size.split("x"))
    steps = args.steps or (4 if args.quick else 25)
    reps = 1 if args.quick else 2
    fp_dir, dino_dir = build_tiny("framepack", args.models), build_tiny("dinov2", args.models)
    clip = demo_clip(33, h, w)
    target_mp4 = encode_mp4(clip, fps=16)
    rows = []

    # Floor: what ExtendTarget does besides the model.
    t0 = time.perf_counter()
    for _ in range(reps):
        frames = read_frames(target_mp4)
        encode_mp4(np.concatenate([frames] * 8)[:233], fps=16)
    floor = (time.perf_counter() - t0) / reps
    rows.append(["floor: decode 33 f + encode 233 f (H.264)", f"{floor:.2f}", "1.0x", "-", "-", "-"])

    gpu_dev = args.device.startswith("cuda")
    splits = []
    for decode_once in (False, True):
        t0 = time.perf_counter()
        ext = FramePackExtender(fp_dir, device=args.device, steps=steps, decode_once=decode_once)
        load_s = time.perf_counter() - t0
        parts: dict[str, float] = {}
        for name in ("_encode_video", "_denoise", "_decode"):
            timed(ext, name, parts)
        if gpu_dev:
            torch.cuda.reset_peak_memory_stats()
        with PeakRSS() as mem:
            t0 = time.perf_counter()
            for i in range(reps):
                video = ext.extend(frames, "replace the ball with a red cube", num_new_frames=200, seed=i)
                encode_mp4(video, fps=16)
            per = (time.perf_counter() - t0) / reps
        assert video.shape[0] == 233 and np.array_equal(video[:33], frames)
        gpu = mib(torch.cuda.max_memory_allocated()) if gpu_dev else "-"
        mode = "one VAE pass at the end" if decode_once else "decode + cross-fade per section (F1 demo)"
        splits.append(f"{mode}: " + ", ".join(f"{k.strip('_')} {v / reps:.2f}s" for k, v in parts.items()))
        rows.append(
            [
                f"ours: F1 extend 33->233 f, {steps} steps, window 9, {mode}",
                f"{per:.2f}",
                f"{per / floor:.1f}x",
                mib(mem.peak),
                mib(mem.peak - mem.start),
                gpu,
            ]
        )
        del ext
    split = "; ".join(splits)

    dino = DinoFeatures(dino_dir, device=args.device)
    long = np.concatenate([clip] * 8)[:233]
    with PeakRSS() as dmem:
        t0 = time.perf_counter()
        for _ in range(reps):
            feats = dino.frame_features(np.concatenate([clip, long]))
            segment_descriptors(feats[33:], segment_bounds(33, 233, 33))
        dsec = (time.perf_counter() - t0) / reps
    rows.append(
        [
            f"DINOv2 descriptors, 266 frames ({266 / dsec:.0f} frames/s)",
            f"{dsec:.2f}",
            f"{dsec / floor:.1f}x",
            mib(dmem.peak),
            mib(dmem.peak - dmem.start),
            "-",
        ]
    )
    notes = (
        f"Clip {w}x{h}, tiny RANDOM models (`memcorpus make-tiny-models`), device {args.device}, "
        f"torch threads {torch.get_num_threads()}, {reps} repeat(s). Extender load {load_s:.1f}s (once per worker). "
        f"Split per sample: {split}. The machine is shared with other engineers' jobs: "
        "treat absolute seconds as upper bounds; ratios to the floor are the comparable figure. "
        "Real FramePack (13B transformer) needs a GPU: see notes/framepack.md."
    )
    report(
        "framepack",
        "FramePack extension + DINOv2 descriptors per Señorita sample",
        ["what", "s / sample", "vs floor", "peak RSS MiB", "RSS growth MiB", "peak CUDA MiB"],
        rows,
        notes,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
