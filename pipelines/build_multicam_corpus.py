"""Build the multi-camera memory corpus: normalised poses, VideoFOV retrieval, roam co-visibility.

    python pipelines/build_multicam_corpus.py                        # demo: generated scenes, embedded Ray
    python pipelines/build_multicam_corpus.py --multicam DIR --roams DIR --out OUT
    python pipelines/build_multicam_corpus.py --runner sequential --set captions.captioner=transformers \\
        --set captions.model=/models/Qwen3-VL-8B-Instruct

One sample per MultiCamVideo scene (``.../f24_aperture5/sceneN``, all its cameras: the per-scene
score matrix needs them together) and one per Context-as-Memory roam (``frames/<name>`` +
``jsons/<name>.json``). Poses -> OpenCV metres (memory-v2v §0.D.1, context-as-memory §3.4) ->
VideoFOV bitsets and Alg. 1 scores (scenes) -> Non-adj co-visibility lists (roams) -> captions
every 77 frames when a captioner is configured.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python pipelines/build_multicam_corpus.py` (also under `ray job submit`)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.common import RunConfig, load_config, run_corpus
from stages.base import Sample, Stage

log = logging.getLogger("memcorpus.multicam")


@dataclass(frozen=True)
class PosesConfig:
    reference_camera: str = "cam01"
    fov_deg: float = 52.67  # Context-as-Memory roams whose json gives no fov
    include_media: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.fov_deg < 180:
            raise ValueError(f"poses.fov_deg must be in (0, 180), got {self.fov_deg}")


@dataclass(frozen=True)
class FovConfig:
    n_theta: int = 180  # 180 x 360 = 64,800 directions (memory-v2v §0.D.1)
    n_phi: int = 360
    radius: float | str = "auto"  # Alg. 1's sphere radius in metres; "auto": per scene (models/fov_radius.py)
    lam: float = 0.5
    top_k: int = 3

    def __post_init__(self) -> None:
        from models.fov_radius import check_radius

        if not 0 <= self.lam <= 1:
            raise ValueError(f"fov.lam must be in [0, 1], got {self.lam}")
        check_radius(self.radius)


@dataclass(frozen=True)
class CovisConfig:
    # "rule": Context-as-Memory's own ray-intersection test (§3.3, Fig. 4), the default since the trainer
    # retrieves context as that paper does; "fov": the sphere-sampled overlap, for free 3D camera motion.
    method: str = "rule"
    near: float = 0.5
    far: float = 10.0
    threshold: float = 0.3

    def __post_init__(self) -> None:
        if self.method not in ("fov", "rule"):
            raise ValueError(f"covis.method must be 'fov' or 'rule', got {self.method!r}")


@dataclass(frozen=True)
class CaptionConfig:
    captioner: str | None = None  # models.captioner backend; None skips captions (recorded per sample)
    model: str | None = None
    window: int = 77


@dataclass(frozen=True)
class MulticamConfig:
    multicam: str = ""  # MultiCamVideo folder (scenes found recursively); both empty: generate demo input
    roams: str = ""  # Context-as-Memory folder holding frames/ and jsons/
    views: str = ""  # folder of static multi-view frame sets (<set>/<i>.png) posed by SfM (needs pycolmap)
    views_fov_deg: float | None = None  # their horizontal FOV when known; None: COLMAP estimates it
    poses: PosesConfig = field(default_factory=PosesConfig)
    fov: FovConfig = field(default_factory=FovConfig)
    covis: CovisConfig = field(default_factory=CovisConfig)
    captions: CaptionConfig = field(default_factory=CaptionConfig)
    run: RunConfig = field(default_factory=lambda: RunConfig(out="out/multicam"))

    def __post_init__(self) -> None:
        for name in ("multicam", "roams", "views"):
            if getattr(self, name) and not Path(getattr(self, name)).is_dir():
                raise ValueError(f"{name}: {getattr(self, name)} is not a folder")


def _scene_input(scene: Path) -> Sample:
    from stages.ids import content_id, text_id

    files = [scene / "cameras" / "camera_extrinsics.json", *sorted((scene / "videos").glob("cam*.mp4"))]
    try:
        sid = content_id(files, prefix="mc_")
    except OSError:
        sid = text_id(str(scene), prefix="mc_")  # unreadable: LoadPoses gives the reason
    return Sample(id=sid, source={"layout": "multicam", "scene_dir": str(scene)})


def _roam_input(root: Path, name: str) -> Sample:
    from stages.ids import content_id

    # 7,601 PNGs are too many to hash: names and sizes stand in for the frames' bytes.
    listing = ";".join(f"{p.name}:{p.stat().st_size}" for p in sorted((root / "frames" / name).glob("*.png")))
    return Sample(id=content_id([root / "jsons" / f"{name}.json"], extra=listing, prefix="roam_"),
                  source={"layout": "cam", "frames_dir": str(root / "frames" / name),
                          "pose_json": str(root / "jsons" / f"{name}.json")})


def build_inputs(cfg: MulticamConfig) -> Iterator[Sample]:
    multicam, roams = Path(cfg.multicam) if cfg.multicam else None, Path(cfg.roams) if cfg.roams else None
    if multicam is None and roams is None:
        from pipelines.demo_multicam import write_demo

        demo = Path(cfg.run.out).parent / "multicam_demo_input"
        if not (demo / "done").exists():  # rendered once, so a re-run finds the same bytes and adds nothing
            write_demo(demo)
            (demo / "done").touch()
        multicam, roams = demo / "multicam", demo / "cam"
    if multicam is not None:
        for f in sorted(multicam.rglob("cameras/camera_extrinsics.json")):
            yield _scene_input(f.parent.parent)
    if roams is not None:
        for j in sorted((roams / "jsons").glob("*.json")):
            yield _roam_input(roams, j.stem)
    if cfg.views:
        from stages.ids import content_id

        for d in sorted(p for p in Path(cfg.views).iterdir() if p.is_dir()):
            yield Sample(id=content_id(sorted(d.glob("*.png")), prefix="views_"),
                         source={"layout": "frames", "frames_dir": str(d)})


def build_stages(cfg: MulticamConfig) -> list[Stage]:
    from stages.camera_poses import LoadPoses
    from stages.covisibility import FindCovisibleFrames
    from stages.fov import ComputeVideoFov
    from stages.multicam_captions import CaptionWindows

    p, f, c, cap = cfg.poses, cfg.fov, cfg.covis, cfg.captions
    sfm: list[Stage] = []
    if cfg.views:
        from stages.camera_poses import EstimatePoses

        sfm = [EstimatePoses(fov_deg=cfg.views_fov_deg)]
    return [
        LoadPoses(reference_camera=p.reference_camera, fov_deg=p.fov_deg, include_media=p.include_media),
        *sfm,
        ComputeVideoFov(n_theta=f.n_theta, n_phi=f.n_phi, radius=f.radius, lam=f.lam, top_k=f.top_k),
        FindCovisibleFrames(method=c.method, near=c.near, far=c.far, threshold=c.threshold),
        CaptionWindows(captioner=cap.captioner, model=cap.model, window=cap.window),
    ]


CORPUS = "multicam"


def add_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--multicam", help="MultiCamVideo folder (default: generate demo scenes)")
    p.add_argument("--roams", help="Context-as-Memory folder with frames/ and jsons/")
    p.add_argument("--views", help="folder of static multi-view frame sets to pose by SfM (pycolmap)")


def load(args: argparse.Namespace, build_models: bool = True) -> MulticamConfig:
    return load_config(MulticamConfig, args, multicam=args.multicam, roams=args.roams, views=args.views)


def model_paths(cfg: MulticamConfig) -> dict[str, str]:
    return {"captions.model": cfg.captions.model} if cfg.captions.captioner and cfg.captions.model else {}


def count_inputs(cfg: MulticamConfig) -> dict[str, int]:
    multicam, roams = cfg.multicam, cfg.roams
    if not multicam and not roams:
        demo = Path(cfg.run.out).parent / "multicam_demo_input"
        if not (demo / "done").exists():
            return {f"demo scenes and roams (generated under {demo} when the build runs)": 0}
        multicam, roams = str(demo / "multicam"), str(demo / "cam")
    counts = {}
    if multicam:
        counts[f"scenes under {multicam}"] = sum(1 for _ in Path(multicam).rglob("cameras/camera_extrinsics.json"))
    if roams:
        counts[f"roams in {roams}/jsons"] = sum(1 for _ in (Path(roams) / "jsons").glob("*.json"))
    if cfg.views:
        counts[f"frame sets under {cfg.views}"] = sum(1 for d in Path(cfg.views).iterdir() if d.is_dir())
    return counts


def run(cfg: MulticamConfig, inputs):
    return run_corpus(CORPUS, cfg, inputs, build_stages(cfg))


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    from pipelines.preflight import build_main

    return build_main(sys.modules[__name__], argv, prog)


if __name__ == "__main__":
    from pipelines.config import exit_on_user_error

    sys.exit(exit_on_user_error(main))
