"""Score generated videos with the papers' metrics; write ``metrics.json`` and PNG plots.

    memcorpus evaluate GEN.mp4 [--history REF.mp4] [--prompt TEXT] [--shots 0,40,80]
        [--poses GEN.npy --gt-poses GT.npy] --dino DIR --clip DIR [--aesthetic-head FILE]
        [--lpips-backbone FILE|TORCH_HOME] --out DIR

Real encoders load from local folders (DINOv2 ViT-B/14, CLIP ViT-B/32 or ViT-L/14 for the
aesthetic head); tests pass the tiny random ones. A metric whose inputs are absent is left out.
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import warnings
from pathlib import Path

import numpy as np

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
    raise ValueError(
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
        raise ValueError(f"--lpips-net must be one of {sorted(LPIPS_BACKBONE_FILES)}, got {net!r}")
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
            raise ValueError(f"{key}={str(path)!r} is not a torchvision {net} state dict (missing {missing[:3]})")
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
    aesthetic_norm: str = "memento",
    lpips_net=None,
) -> tuple[dict, dict]:
    """(metrics, curves): metrics as floats, per-frame curves for the plots."""
    out, curves = {}, {}
    sub = frames[::sample_every]
    if dino is not None:
        f = dino.images(sub)
        out["subject_consistency"] = M.temporal_consistency(f)
        u = f / np.linalg.norm(f, axis=1, keepdims=True)
        curves["dino_cos_to_first"] = (u @ u[0]).tolist()
        if shots and len(shots) > 1:
            out["inter_shot_subject"] = M.inter_shot_consistency([dino.images(frames[a:b]) for a, b in shots])
    if clip is not None:
        c = clip.images(sub)
        out["background_consistency"] = M.temporal_consistency(c)
        if aesthetic_head is not None:
            raw = aesthetic_head(c)
            out["aesthetic"] = M.aesthetic(raw, aesthetic_norm)
            curves["aesthetic_raw"] = raw.tolist()
        if prompt:
            out["semantic_consistency"] = M.semantic_consistency(c, clip.text([prompt])[0])
        if shots and len(shots) > 1:
            out["inter_shot_clip"] = M.inter_shot_consistency([clip.images(frames[a:b]) for a, b in shots])
    if history is not None:
        n = min(len(history), len(frames))
        p = M.psnr_frames(frames[:n], history[:n])
        out["history_psnr"] = float(p.mean())
        curves["history_psnr"] = p.tolist()
        if lpips_net is not None:
            d = M.lpips_frames(lpips_net, frames[:n], history[:n])
            out["lpips_history"] = float(d.mean())
            curves["history_lpips"] = d.tolist()
        else:
            log.warning("lpips_history skipped: no LPIPS backbone configured (--lpips-backbone)")
    if gen_poses is not None and gt_poses is not None:
        out.update(M.camera_errors(gen_poses, gt_poses))
    return out, curves


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
    p.add_argument("video", help="generated video (mp4)")
    p.add_argument("--out", required=True, help="folder for metrics.json and plots")
    p.add_argument("--dino", help="local DINOv2 folder (subject consistency)")
    p.add_argument("--clip", help="local CLIP folder (background, semantic, aesthetic)")
    p.add_argument("--aesthetic-head", help="LAION linear head state dict (.pth); needs --clip ViT-L/14")
    p.add_argument("--aesthetic-norm", default="memento", choices=["memento", "vbench"])
    p.add_argument("--prompt", help="text the video should match")
    p.add_argument("--history", help="reference video for PSNR against history")
    p.add_argument("--shots", help="comma-separated shot start frames, e.g. 0,40,80")
    p.add_argument("--poses", help="(T,4,4) .npy camera-to-world of the generated video")
    p.add_argument("--gt-poses", help="(T,4,4) .npy ground-truth camera-to-world")
    p.add_argument("--sample-every", type=int, default=1)
    p.add_argument(
        "--lpips-backbone",
        help=f"LPIPS against --history: torchvision backbone weights file, or a TORCH_HOME / folder holding "
        f"{LPIPS_BACKBONE_FILES['alex']} (alex) or {LPIPS_BACKBONE_FILES['vgg']} (vgg); never downloaded",
    )
    p.add_argument("--lpips-net", default="alex", choices=sorted(LPIPS_BACKBONE_FILES))


def run(args: argparse.Namespace) -> int:
    from stages.video import read_frames
    from training.encoders import AestheticHead, ClipEncoder, DinoEncoder

    frames = read_frames(args.video)
    dino = DinoEncoder(args.dino) if args.dino else None
    clip = ClipEncoder(args.clip, "--clip") if args.clip else None
    head = AestheticHead(args.aesthetic_head, clip.dim) if (clip and args.aesthetic_head) else None
    shots = None
    if args.shots:
        starts = [int(x) for x in args.shots.split(",")] + [len(frames)]
        shots = list(itertools.pairwise(starts))
    history = read_frames(args.history) if args.history else None
    if history is not None and history.shape[1:] != frames.shape[1:]:
        raise ValueError(f"--history frames {history.shape[1:]} differ from the video's {frames.shape[1:]}")
    lp = load_lpips(args.lpips_backbone, args.lpips_net) if (history is not None and args.lpips_backbone) else None
    poses = np.load(args.poses, allow_pickle=False) if args.poses else None
    gt = np.load(args.gt_poses, allow_pickle=False) if args.gt_poses else None
    metrics, curves = evaluate_video(
        frames, dino, clip, head, args.prompt, shots, history, poses, gt, args.sample_every, args.aesthetic_norm, lp
    )
    for path in write_report(args.out, metrics, curves):
        print(path)
    print(json.dumps(metrics, indent=1, sort_keys=True))
    return 0
