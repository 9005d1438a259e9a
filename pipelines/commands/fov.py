"""memcorpus fov SCENE_DIR: VideoFOV (Memory-V2V Alg. 1) scores of one scene's videos."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

HELP = "VideoFOV retrieval scores between the videos of one MultiCamVideo scene (or 77-frame parts of a roam)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scene_dir", help="multicam: .../f24_aperture5/sceneN; cam: a roam's frames/<name> folder")
    p.add_argument("--layout", choices=["multicam", "cam"], default="multicam")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--lam", type=float, default=0.5)
    p.add_argument("--radius", type=_radius, default="auto",
                   help="Alg. 1's sphere radius in metres, or 'auto' (default): where the cameras' optical axes "
                        "cross, else the camera spread, at least 1 m")
    p.add_argument("--segment", type=int, default=77, help="cam layout: frames per roam part scored as a video")
    p.add_argument("--json", action="store_true", help="print {videos, scores, topk} as JSON")


def _radius(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected metres > 0 or 'auto', got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected metres > 0 or 'auto', got {text!r}")
    return value


def _load(args: argparse.Namespace):
    """(names, trajectories, K, width, height) or raises ValueError with the reject reason."""
    import numpy as np

    from stages.base import Sample
    from stages.camera_poses import LoadPoses

    scene = Path(args.scene_dir)
    if args.layout == "cam":
        source = {"layout": "cam", "frames_dir": str(scene), "pose_json": str(scene.parent.parent / "jsons" /
                                                                               f"{scene.name}.json")}
    else:
        source = {"layout": "multicam", "scene_dir": str(scene)}
    (s,) = LoadPoses(include_media=False)([Sample(id="cli", source=source)])
    if s.rejected:
        raise ValueError(f"{s.reason}: {s.errors[-1]['detail']}")
    k, w, h = s.arrays["intrinsics"].astype(np.float64), s.meta["width"], s.meta["height"]
    if args.layout == "multicam":
        names = s.meta["cameras"]
        return names, list(s.arrays["poses"].astype(np.float64)), k, w, h
    poses = s.arrays["poses"].astype(np.float64)
    starts = range(0, len(poses), args.segment)
    return [f"frames_{a}_{min(a + args.segment, len(poses))}" for a in starts], \
        [poses[a : a + args.segment] for a in starts], k, w, h


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from models.fov import score_matrix
    from models.fov_radius import resolve_radius
    from stages.fov import topk_lists

    try:
        names, trajs, k, w, h = _load(args)
    except (ValueError, OSError) as e:
        print(f"fov: {args.scene_dir}: {e}")
        return 2
    radii, how = resolve_radius(args.radius, trajs)
    scores = score_matrix(trajs, [k] * len(trajs), w, h, args.lam, radii=radii)
    topk = topk_lists(names, scores, args.top_k)
    if args.json:
        print(json.dumps({"videos": names, "scores": [[round(float(x), 6) for x in r] for r in scores],
                          "topk": topk, "radii": [round(float(r), 6) for r in radii], "radius_from": how}))
        return 0
    print(f"sphere radius {np.median(radii):.3f} m median, {radii.min():.3f}-{radii.max():.3f} m ({how})")
    print(f"target -> top-{args.top_k} (score)")
    for i, n in enumerate(names):
        print(f"{n}: " + ", ".join(f"{m} ({scores[i, names.index(m)]:.3f})" for m in topk[n]))
    return 0
