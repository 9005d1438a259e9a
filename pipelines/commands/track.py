"""memcorpus track VIDEO: ByteTrack subjects in one video and pick the primary subject's recon frames."""

from __future__ import annotations

import argparse
import json

HELP = "track subjects (HOG or YOLO + ByteTrack) in one video and print tracks, primary subject and recon frames"


def parse_shots(text: str | None) -> list[list[int]] | None:
    """'0-59,60-119' -> [[0, 59], [60, 119]] (inclusive frame ranges)."""
    if not text:
        return None
    try:
        shots = [[int(a), int(b)] for a, b in (part.split("-") for part in text.split(","))]
    except ValueError as e:
        raise ValueError(f"--shots {text!r}: expected START-END[,START-END...] frame ranges") from e
    if any(a > b for a, b in shots):
        raise ValueError(f"--shots {text!r}: a range ends before it starts")
    return shots


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", help="video file")
    p.add_argument("--detector", choices=["hog", "yolo"], default="hog")
    p.add_argument("--yolo-weights", default="", help="local YOLO weights file (detector yolo)")
    p.add_argument("--trust-weights", action="store_true",
                   help="load a pickled .pt YOLO file (it can run code); default: .onnx weights only")
    p.add_argument("--sample-fps", type=float, default=5.0, help="detection rate (default 5)")
    p.add_argument("--shots", help="shot ranges START-END,... in frames; default: one shot")
    p.add_argument("--min-gap", type=float, default=2.0, help="seconds between the two recon frames")
    p.add_argument("--min-subject-conf", type=float, default=0.3,
                   help="a primary subject's mean detector score (default 0.3); weaker: no primary, no recon frames")
    p.add_argument("--no-person-shape", action="store_true",
                   help="keep boxes of any shape and size, and boxes cut by the frame edge")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from stages.tracking import TrackSubjects
    from stages.video import DecodeError, probe

    try:
        info = probe(args.video)
        stage = TrackSubjects(detector=args.detector, yolo_weights=args.yolo_weights,
                              trust_weights=args.trust_weights, sample_fps=args.sample_fps,
                              min_gap_s=args.min_gap, min_subject_conf=args.min_subject_conf,
                              person_shape=not args.no_person_shape)
        stage.setup()
        summary, recon, _ = stage.track(args.video, info.fps, parse_shots(args.shots))
    except (DecodeError, ValueError) as e:
        print(f"error: {e}")
        return 2
    out = {
        "tracks": [{"id": t["id"], "frames": t["frames"], "mean_area": round(t["mean_area"], 6),
                    "mean_conf": t["mean_conf"], "coverage": t["coverage"]} for t in summary["tracks"]],
        "primary": summary["primary"],
        "recon_frames": [{"frame": o.frame, "box": [round(float(v), 1) for v in o.box]} for o in recon],
    }
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"{len(out['tracks'])} identities; primary: {out['primary']}")
    for t in out["tracks"]:
        print(f"  id {t['id']:>3}  frames {t['frames']:>5}  mean area {t['mean_area']:.4f}  "
              f"mean score {t['mean_conf']:.2f}  coverage {t['coverage']:.0%}")
    for r in out["recon_frames"]:
        print(f"  recon frame {r['frame']}: box {r['box']}")
    return 0
