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
    p.add_argument("--json", action="store_true", help="print one JSON object (the stable format for scripts)")


def run(args: argparse.Namespace) -> int:
    from models.ocr import make_text_detector
    from stages.subtitles import SubtitleFinder, crop_without_band
    from stages.video import DecodeError, probe

    try:
        info = probe(args.video)
        finder = SubtitleFinder(make_text_detector(args.backend, args.model_dir), sample_fps=args.fps)
        res = finder.analyze(args.video, 0, None, info.fps, info.width, info.height)
    except DecodeError as e:
        print(f"memcorpus subtitles: {args.video}: {e}", file=sys.stderr)
        return 2
    overlays = [] if args.keep_overlays else [o["box"] for o in res["overlays"]]
    crop, kept = crop_without_band(info.width, info.height, res["letterbox"], res["band"], args.aspect,
                                   overlays=overlays)
    out = {"band": res["band"], "events": res["events"], "overlays": res["overlays"], "crop": crop,
           "kept_fraction": kept}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{args.video}: band {res['band']}, {len(res['events'])} subtitle events, "
              f"{len(res['overlays'])} overlays, crop {crop} keeps {kept:.0%}")
    return 0
