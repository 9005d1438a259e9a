"""memcorpus shots VIDEO: shot boundaries of one video."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "detect shot boundaries in a video (cuts are decoded-frame indices of each new shot's first frame)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video")
    p.add_argument("--backend", choices=["content", "transnetv2"], default="content")
    p.add_argument("--threshold", type=float, default=None,
                   help="TransNetV2 probability, or the content detector's peak ratio (default: backend's)")
    p.add_argument("--fades", action="store_true",
                   help="content backend: also cut at the first frame of each fade to or from black (off: hard cuts "
                        "only, as Memento's sequences want)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the stable format for scripts)")


def run(args: argparse.Namespace) -> int:
    from models.shot_detectors import make_shot_detector
    from stages.video import DecodeError

    try:
        res = make_shot_detector(args.backend, args.threshold, fades=args.fades).detect(args.video)
    except ValueError as e:
        print(f"memcorpus shots: {e}", file=sys.stderr)
        return 2
    except DecodeError as e:
        print(f"memcorpus shots: {args.video}: {e}", file=sys.stderr)
        return 2
    out = {"fps": round(res.fps, 4), "frames": res.frames, "cuts": res.cuts, "shots": res.shots, "backend": res.backend}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{args.video}: {res.frames} frames at {out['fps']} fps, {len(res.shots)} shots ({res.backend})")
        for a, b in res.shots:
            print(f"  {a:>7} - {b:<7} {(b - a + 1) / max(res.fps, 1e-9):7.2f} s")
    return 0
