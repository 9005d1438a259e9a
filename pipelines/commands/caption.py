"""memcorpus caption VIDEO: Memento's three caption stages (story, shots, recon frames) for one sequence."""

from __future__ import annotations

import argparse
import json

HELP = "caption one sequence with Memento's three stages (story + inventory, shots, recon frames) and print JSON"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", help="video file holding one multi-shot sequence")
    p.add_argument("--backend", choices=["transformers", "openai", "vllm"], default="transformers")
    p.add_argument("--model", default="", help="local folder (transformers), served name (openai), id (vllm)")
    p.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="OpenAI-compatible server (openai)")
    p.add_argument("--device", default="cpu", help="torch device (transformers)")
    p.add_argument("--shots", help="shot ranges START-END,... in frames; default: one shot")
    p.add_argument("--detector", choices=["hog", "yolo"], default="hog", help="for the recon frames")
    p.add_argument("--yolo-weights", default="")
    p.add_argument("--trust-weights", action="store_true", help="load a pickled .pt YOLO file (it can run code)")
    p.add_argument("--max-retries", type=int, default=2)
    p.add_argument("--story-chars", type=int, default=1600, help="longest story caption (characters)")
    p.add_argument("--caption-chars", type=int, default=1000, help="longest shot / recon caption (characters)")
    p.add_argument("--json", action="store_true", help="print JSON")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from pipelines.commands.track import parse_shots
    from pipelines.runner import SequentialRunner
    from stages.base import Sample
    from stages.captions import back_half_stages
    from stages.video import DecodeError, probe

    try:
        info = probe(args.video)
        shots = parse_shots(args.shots)
        kw = {"base_url": args.base_url} if args.backend == "openai" else {}
        if args.backend == "transformers":
            kw = {"device": args.device}
        stages = back_half_stages({"detector": args.detector, "yolo_weights": args.yolo_weights,
                                   "trust_weights": args.trust_weights},
                                  {"backend": args.backend, "model": args.model, "backend_kwargs": kw,
                                   "max_retries": args.max_retries,
                                   "limits": {"story_chars": args.story_chars, "shot_chars": args.caption_chars,
                                              "recon_chars": args.caption_chars}})
        sample = Sample(id="cli", source={"path": args.video},
                        meta={"fps": info.fps, "shots": shots}, blobs={"clip.mp4": Path(args.video).read_bytes()})
        out = next(SequentialRunner().run(stages, [sample]))
    except (DecodeError, ValueError, ImportError, OSError) as e:
        print(f"error: {e}")
        return 2
    if out.rejected:
        print(json.dumps({"rejected": out.reason, "detail": out.errors[-1]["detail"]}))
        return 1
    c, tr = out.meta["captions"], out.meta["tracking"]
    shots = shots or [[0, max(int(info.frames) - 1, 0)]]
    result = {
        "story": {"story": c["story"], "subjects": c["subjects"]},
        "shots": [{"start": a, "end": b, "caption": t} for (a, b), t in zip(shots, c["shots"])],
        "recon": [{"frame": r["frame"], "box": r["box"], "caption": t} for r, t in zip(tr["recon_frames"], c["recon"])],
        "backend": c["backend"], "model": c["model"], "tiny_random": c["tiny_random"], "retries": c["retries"],
    }
    print(json.dumps(result, ensure_ascii=False, indent=None if args.json else 2))
    return 0
