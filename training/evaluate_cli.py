"""``memcorpus evaluate``'s file handling: read the video and its generation.json, load the models, record them.

Kept apart from training/evaluate.py (the metric orchestration, callable on arrays) so that the
provenance rules live in one place: every model used gets a record (path, SHA-256, tiny or not) in
``metrics.json``, and a tiny random model turns into a loud warning there and on stderr.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

import numpy as np

from pipelines.config import ConfigError
from training import metrics as M
from training.evaluate import _backbone_file, evaluate_video, load_lpips, write_report

TINY_WARNING = (
    "WARNING: TINY RANDOM MODEL(S) USED ({}): these numbers exercise the code path and are NOT "
    "comparable with any paper's tables"
)


def read_generation(video: str, given: str | None) -> dict:
    """generation.json from ``--generation``, else the one ``memcorpus generate`` wrote beside the video."""
    path = Path(given) if given else Path(video).with_name("generation.json")
    if given and not path.is_file():
        raise ConfigError(f"--generation {given!r}: no such file")
    if not path.is_file():
        return {}
    rec = json.loads(path.read_text())
    if given is None and rec.get("video") != Path(video).name:
        return {}  # a generation.json of another video
    return dict(rec, _path=str(path.resolve()))


def prompt_of(gen: dict) -> str | None:
    """The text the whole video should match: Memento D.1 concatenates the scene's prompts."""
    if gen.get("mode") == "story":
        return " ".join([gen.get("story", ""), *gen.get("shot_captions", [])]).strip() or None
    if gen.get("mode") == "edit":
        return " ".join(dict.fromkeys(gen.get("instructions", []))) or None
    return gen.get("caption") or None


def evaluate_files(args) -> dict:
    from stages.video import read_frames
    from training.encoders import AestheticHead
    from training.evaluate_models import ImageEncoder, ViClip, record

    frames = read_frames(args.video)
    gen = read_generation(args.video, args.generation)
    dev = args.device
    dino = ImageEncoder(args.dino, "dino", "--dino", dev) if args.dino else None
    clip = ImageEncoder(args.clip, "clip", "--clip", dev) if args.clip else None
    aclip = ImageEncoder(args.aesthetic_clip, "clip", "--aesthetic-clip", dev) if args.aesthetic_clip else clip
    if args.aesthetic_head and aclip is None:
        raise ConfigError("--aesthetic-head reads CLIP ViT-L/14 features: pass --aesthetic-clip (or --clip)")
    head = AestheticHead(args.aesthetic_head, aclip.dim) if args.aesthetic_head else None
    viclip = ViClip(args.viclip, dev) if args.viclip else None

    shots = None
    if args.shots:
        starts = [int(x) for x in args.shots.split(",")] + [len(frames)]
        shots = list(itertools.pairwise(starts))
    elif gen.get("mode") == "story":
        shots = [tuple(s) for s in gen["segments"]]
    revisits = None
    if gen.get("mode") == "camera" and gen.get("poses"):
        revisits = M.revisit_pairs(np.asarray(gen["poses"]), gen["segments"], args.revisit_deg)
    history = read_frames(args.history) if args.history else None
    if history is not None and history.shape[1:] != frames.shape[1:]:
        raise ConfigError(f"--history frames {history.shape[1:]} differ from the video's {frames.shape[1:]}")
    lp = None
    if args.lpips_backbone and (history is not None or revisits):
        lp = load_lpips(args.lpips_backbone, args.lpips_net).to(dev)
    poses = np.load(args.poses, allow_pickle=False) if args.poses else None
    gt = np.load(args.gt_poses, allow_pickle=False) if args.gt_poses else None
    characters = args.characters.split(",") if args.characters else gen.get("characters")
    metrics, curves = evaluate_video(
        frames,
        dino,
        clip,
        head,
        args.prompt or prompt_of(gen),
        shots,
        history,
        poses,
        gt,
        args.sample_every,
        args.aesthetic_norm,
        lp,
        aesthetic_clip=aclip if args.aesthetic_clip else None,
        video_text=viclip,
        shot_captions=gen.get("shot_captions"),
        characters=characters,
        revisits=revisits,
    )
    models = {}
    if dino is not None:
        models["subject_consistency"] = dino.record
    if clip is not None:
        models["background_consistency"] = clip.record
    if head is not None:
        models["aesthetic"] = {
            "clip": aclip.record,
            "head": record(args.aesthetic_head, "LAION linear head"),
            "scaling": "score / 10 (VBench)" if args.aesthetic_norm == "vbench" else "(score - 1) / 9 (Memento)",
        }
    text_model = viclip or clip
    if text_model is not None and ("semantic_consistency" in metrics or "semantic_consistency_shot" in metrics):
        models["semantic_consistency"] = text_model.record
        metrics["semantic_model"] = (
            "ViCLIP" if viclip else ("CLIP frame mean (ViCLIP not given: not the VBench/Memento semantic model)")
        )
    if lp is not None:
        weights = _backbone_file(args.lpips_backbone, args.lpips_net, "--lpips-backbone")
        models["lpips"] = {
            "net": args.lpips_net,
            **record(weights.resolve(), f"torchvision {args.lpips_net}"),
            "heads": "lpips wheel v0.1 linear heads",
        }
    metrics["models"] = models
    tiny = sorted({k for k, r in models.items() if _any_tiny(r)})
    if tiny:
        metrics["WARNING"] = TINY_WARNING.format(", ".join(tiny))
        print(metrics["WARNING"], file=sys.stderr)
    if gen:
        metrics["generation"] = {"path": gen["_path"], "mode": gen.get("mode"), "checkpoint": gen.get("checkpoint")}
        if gen.get("warning"):
            metrics.setdefault("warnings", []).append(gen["warning"])
    for path in write_report(args.out, metrics, curves):
        print(path)
    return metrics


def _any_tiny(r: dict) -> bool:
    return bool(r.get("tiny_random")) or any(_any_tiny(v) for v in r.values() if isinstance(v, dict))
