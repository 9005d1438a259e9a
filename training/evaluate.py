"""Score generated videos with the papers' metrics; write ``metrics.json`` and PNG plots.

    memcorpus evaluate GEN.mp4 [--generation generation.json] --dino DIR --clip DIR
        [--aesthetic-clip DIR --aesthetic-head FILE] [--viclip FILE] [--history REF.mp4]
        [--lpips-backbone FILE|TORCH_HOME] [--prompt TEXT] [--shots 0,40,80] [--device cuda] --out DIR

One model per metric as VBench defines it (training/evaluate_models.py). A video written by
``memcorpus generate`` brings its ``generation.json`` (found beside it): prompts, shot bounds and
captions (Memento inter-shot and per-character consistency), segments and camera poses (Context-as-
Memory history comparison of revisited views). ``metrics.json`` records every model's path and SHA-256
and warns loudly when a model is a tiny random one. A metric whose inputs are absent is left out.
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings
from pathlib import Path

import numpy as np

from pipelines.config import ConfigError
from training import metrics as M

log = logging.getLogger(__name__)

# torchvision's file names for the ImageNet backbones lpips wraps (what torch.hub caches under TORCH_HOME).
LPIPS_BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}


def _backbone_file(path: str, net: str, key: str) -> Path:
    """A weights file, or a folder holding it directly / as a TORCH_HOME (hub/checkpoints/) / checkpoints dir."""
    name = LPIPS_BACKBONE_FILES[net]
    p = Path(path)
    candidates = [p] if p.is_file() else [p / name, p / "hub" / "checkpoints" / name, p / "checkpoints" / name]
    for c in candidates:
        if c.is_file():
            return c
    raise ConfigError(
        f"{key}={path!r}: no {net} backbone weights; expected the file {p if p.suffix else p / name} "
        f"or {p / 'hub' / 'checkpoints' / name} (torchvision's {name}; copy it here, nothing is downloaded)"
    )


def load_lpips(backbone: str | None, net: str = "alex", key: str = "--lpips-backbone", random_backbone: bool = False):
    """lpips.LPIPS with the wheel's learned linear heads and a torchvision backbone read from a local file.

    ``random_backbone=True`` keeps the random trunk (tests only: the figures mean nothing).
    """
    import lpips
    import torch

    if net not in LPIPS_BACKBONE_FILES:
        raise ConfigError(f"--lpips-net must be one of {sorted(LPIPS_BACKBONE_FILES)}, got {net!r}")
    path = None if random_backbone else _backbone_file(backbone or "", net, key)
    with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained=False`
        warnings.simplefilter("ignore", UserWarning)
        # pnet_rand=True: build the trunk without torchvision's download; pretrained=True: heads from the wheel.
        model = lpips.LPIPS(net=net, pnet_rand=True, pretrained=True, verbose=False)
    if path is not None:
        state = torch.load(path, map_location="cpu", weights_only=True)
        # lpips splits torchvision's `features` Sequential into slices that keep the child indices.
        want = {k: "features." + k.split(".", 1)[1] for k in model.net.state_dict()}
        missing = sorted(v for v in want.values() if v not in state)
        if missing:
            raise ConfigError(f"{key}={str(path)!r} is not a torchvision {net} state dict (missing {missing[:3]})")
        model.net.load_state_dict({k: state[v] for k, v in want.items()})
    return model.eval()


def evaluate_video(
    frames: np.ndarray,
    dino=None,
    clip=None,
    aesthetic_head=None,
    prompt: str | None = None,
    shots: list[tuple[int, int]] | None = None,
    history: np.ndarray | None = None,
    gen_poses: np.ndarray | None = None,
    gt_poses: np.ndarray | None = None,
    sample_every: int = 1,
    aesthetic_norm: str = "vbench",
    lpips_net=None,
    aesthetic_clip=None,
    video_text=None,
    shot_captions: list[str] | None = None,
    characters: list[str] | None = None,
    revisits: list[tuple[int, int]] | None = None,
) -> tuple[dict, dict]:
    """(metrics, curves): metrics as floats, per-frame curves for the plots.

    ``aesthetic_clip``: the CLIP ViT-L/14 the LAION head reads (default: ``clip``); ``video_text``: a
    text-video model for semantic / per-character consistency (ViCLIP; default: ``clip`` frame means);
    ``history``: a reference video compared frame by frame; ``revisits``: (i, j) frame pairs of this video
    compared with each other (Context-as-Memory's history context comparison).
    """
    out, curves = {}, {}
    sub = frames[::sample_every]
    clips = [frames[a:b] for a, b in shots] if shots and len(shots) > 1 else None
    if dino is not None:
        f = dino.images(sub)
        out["subject_consistency"] = M.temporal_consistency(f)
        u = f / np.linalg.norm(f, axis=1, keepdims=True)
        curves["dino_cos_to_first"] = (u @ u[0]).tolist()
        if clips:
            out["inter_shot_subject"] = M.inter_shot_consistency([dino.images(c) for c in clips])
    if clip is not None:
        c = clip.images(sub)
        out["background_consistency"] = M.temporal_consistency(c)
        if clips:
            out["inter_shot_clip"] = M.inter_shot_consistency([clip.images(x) for x in clips])
    ac = aesthetic_clip or clip
    if aesthetic_head is not None and ac is not None:
        raw = aesthetic_head(ac.images(sub))
        out["aesthetic"] = M.aesthetic(raw, aesthetic_norm)
        curves["aesthetic_raw"] = raw.tolist()
    vt = video_text or clip
    if vt is not None and prompt:
        v = vt.videos([frames]) if video_text is not None else clip.images(sub)
        out["semantic_consistency"] = M.semantic_consistency(v, vt.text([prompt])[0])
    if vt is not None and clips:
        shot_feats = _videos(vt, clips)
        if shot_captions and len(shot_captions) == len(clips):
            sims = [
                M.semantic_consistency(shot_feats[i : i + 1], vt.text([cap])[0]) for i, cap in enumerate(shot_captions)
            ]
            out["semantic_consistency_shot"] = float(np.mean(sims))
            score = M.character_consistency(shot_feats, M.character_groups(shot_captions, characters))
            if score is not None:
                out["character_consistency"] = score
    if history is not None:
        n = min(len(history), len(frames))
        _history(out, curves, frames[:n], history[:n], lpips_net, "history")
    if revisits:
        i, j = (np.array(x) for x in zip(*revisits))
        _history(out, curves, frames[i], frames[j], lpips_net, "revisit")
        out["revisit_pairs"] = float(len(revisits))
    if gen_poses is not None and gt_poses is not None:
        out.update(M.camera_errors(gen_poses, gt_poses))
    return out, curves


def _videos(model, clips: list[np.ndarray]) -> np.ndarray:
    """One feature per clip: the model's own video embedding (ViCLIP), else the normalised mean of frame features."""
    if hasattr(model, "videos"):
        return model.videos(clips)
    return np.stack([M._unit(model.images(c)).mean(0) for c in clips])


def _history(out: dict, curves: dict, a: np.ndarray, b: np.ndarray, lpips_net, name: str) -> None:
    p = M.psnr_frames(a, b)
    out[f"{name}_psnr"] = float(p.mean())
    curves[f"{name}_psnr"] = p.tolist()
    if lpips_net is not None:
        d = M.lpips_frames(lpips_net, a, b)
        out[f"lpips_{name}"] = float(d.mean())
        curves[f"{name}_lpips"] = d.tolist()
    else:
        log.warning(f"lpips_{name} skipped: no LPIPS backbone configured (--lpips-backbone)")


def write_report(out_dir: str | Path, metrics: dict, curves: dict) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1, sort_keys=True))
    written = [out / "metrics.json"]
    for name, ys in curves.items():
        fig, ax = plt.subplots(figsize=(5, 3))
        ax.plot(ys, marker=".")
        ax.set_xlabel("frame")
        ax.set_title(name)
        fig.tight_layout()
        fig.savefig(out / f"{name}.png", dpi=80)
        plt.close(fig)
        written.append(out / f"{name}.png")
    return written


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("video", help="generated video (mp4), e.g. what `memcorpus generate` wrote")
    p.add_argument("--out", required=True, help="folder for metrics.json and plots")
    p.add_argument("--generation", help="generation.json of the video (default: the one beside it, if any)")
    p.add_argument(
        "--dino", help="DINO folder: subject consistency (VBench: facebook/dino-vitb16; Memento: facebook/dinov2-base)"
    )
    p.add_argument("--clip", help="CLIP ViT-B/32 folder: background consistency (and the semantic fallback)")
    p.add_argument("--aesthetic-clip", help="CLIP ViT-L/14 folder the LAION head reads (default: --clip)")
    p.add_argument("--aesthetic-head", help="LAION linear head state dict (.pth, 768->1 for ViT-L/14)")
    p.add_argument(
        "--aesthetic-norm",
        default="vbench",
        choices=["vbench", "memento"],
        help="vbench: score/10 (VBench, Memory-V2V tables); memento: (score-1)/9 (Memento Table 1)",
    )
    p.add_argument(
        "--viclip",
        help="ViCLIP checkpoint (VBench's ViClip-InternVid-10M-FLT.pth; needs the vbench "
        "package): semantic, shot and per-character consistency; without it CLIP stands in, said so",
    )
    p.add_argument("--prompt", help="text the video should match (default: from generation.json)")
    p.add_argument("--characters", help="comma-separated character names for per-character consistency")
    p.add_argument("--history", help="reference video for PSNR/LPIPS against history")
    p.add_argument("--shots", help="comma-separated shot start frames, e.g. 0,40,80 (default: generation.json)")
    p.add_argument("--poses", help="(T,4,4) .npy camera-to-world of the generated video")
    p.add_argument("--gt-poses", help="(T,4,4) .npy ground-truth camera-to-world")
    p.add_argument("--revisit-deg", type=float, default=5.0, help="largest camera angle between revisited views")
    p.add_argument("--sample-every", type=int, default=1)
    p.add_argument("--device", default="cpu", help="torch device for every model (cpu, cuda, cuda:1)")
    p.add_argument(
        "--lpips-backbone",
        help=f"LPIPS: torchvision backbone weights file, or a TORCH_HOME / folder holding "
        f"{LPIPS_BACKBONE_FILES['alex']} (alex) or {LPIPS_BACKBONE_FILES['vgg']} (vgg); never downloaded",
    )
    p.add_argument("--lpips-net", default="alex", choices=sorted(LPIPS_BACKBONE_FILES))


def run(args: argparse.Namespace) -> int:
    from training.evaluate_cli import evaluate_files

    metrics = evaluate_files(args)
    print(json.dumps({k: v for k, v in metrics.items() if k != "models"}, indent=1, sort_keys=True))
    return 0
