"""memcorpus subtitles VIDEO: the subtitle band, events, static overlays and the crop that removes them."""

from __future__ import annotations

import argparse
import json
import sys

HELP = "find burned-in subtitles (and static overlays) in a video and the crop that removes them"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video")
    p.add_argument("--backend", choices=["rapidocr", "paddle"], default="rapidocr")
    p.add_argument("--model-dir", default="", help="PaddleOCR PP-OCRv5 det folder (backend paddle)")
    p.add_argument("--fps", type=float, default=2.0, help="frames sampled per second of video")
    p.add_argument("--aspect", type=float, default=0.0, help="crop aspect w/h (0: keep the picture's)")
    p.add_argument("--keep-overlays", action="store_true", help="do not cut static overlays (logos) off the crop")
    p.add_argument("--overlay-budget", type=float, default=0.35,
                   help="most of the crop's area one overlay may cost to be cut off (else it is kept and flagged)")
    p.add_argument("--json", action="store_true", help="print one JSON object (the stable format for scripts)")


def run(args: argparse.Namespace) -> int:
    from stages.subtitles import make_finder, plan_crop
    from stages.video import DecodeError, probe

    try:
        info = probe(args.video)
        finder = make_finder(args.backend, args.model_dir, sample_fps=args.fps)
        res = finder.analyze(args.video, 0, None, info.fps, info.width, info.height)
    except DecodeError as e:
        print(f"memcorpus subtitles: {args.video}: {e}", file=sys.stderr)
        return 2
    overlays = res["overlays"]
    plan = plan_crop(info.width, info.height, res["letterbox"], res["band"], args.aspect,
                     overlays=[o["box"] for o in overlays], overlay_budget=0.0 if args.keep_overlays else args.overlay_budget)
    for k, o in enumerate(overlays):
        o["kept"] = k in plan["kept_overlays"]
    # Fields are only ever added (scripts read this): band, events, overlays, crop, kept_fraction, then the rest.
    out = {"band": res["band"], "events": res["events"], "overlays": overlays, "crop": plan["crop"],
           "kept_fraction": plan["kept_fraction"], "overlay_kept": len(plan["kept_overlays"]),
           "letterbox": res["letterbox"], "samples": res["samples"]}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{args.video}: band {res['band']}, {len(res['events'])} subtitle events, "
              f"{len(overlays)} overlays ({out['overlay_kept']} kept in the crop), "
              f"crop {plan['crop']} keeps {plan['kept_fraction']:.0%}")
    return 0
