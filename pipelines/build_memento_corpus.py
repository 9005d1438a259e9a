"""Build the Memento cinematic corpus: footage -> captioned 30-60 s multi-shot sequences.

    python pipelines/build_memento_corpus.py                          # demo: generated footage, embedded Ray
    python pipelines/build_memento_corpus.py --footage DIR --out OUT  # every video file under DIR
    python pipelines/build_memento_corpus.py --runner sequential --set shots.backend=transnetv2

Each footage file: shot boundaries -> sequences of consecutive shots, each longer than 5 s,
30-60 s in all (memento.txt §3.1) -> quality (bars, black, static, blur, resolution,
aesthetics) -> burned-in subtitles found and cropped away -> one H.264 clip per sequence with
its shots, quality and subtitle events in the JSON -> the primary subject tracked with
ByteTrack and its two largest views kept as reconstruction frames -> story + subject
inventory, one pronoun-free caption per shot and per reconstruction frame (Qwen3-VL).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python pipelines/build_memento_corpus.py` (also under `ray job submit`)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.common import RunConfig, load_config, run_corpus
from stages.base import Resources, Sample, Stage

log = logging.getLogger("memcorpus.memento")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts")


@dataclass(frozen=True)
class ShotsConfig:
    backend: str = "content"  # "content" | "transnetv2"
    threshold: float | None = None  # backend default when None
    device: str = "cpu"  # transnetv2 on GPU workers: "cuda" with gpus > 0
    gpus: float = 0.0
    fades: bool = False  # content only: also cut at fades to/from black (Memento wants hard cuts only: off)

    def __post_init__(self) -> None:
        if self.backend not in ("content", "transnetv2"):
            raise ValueError(f"shots.backend must be 'content' or 'transnetv2', got {self.backend!r}")
        if self.fades and self.backend != "content":
            raise ValueError("shots.fades is an option of the 'content' backend")


@dataclass(frozen=True)
class SequenceConfig:
    min_seconds: float = 30.0
    max_seconds: float = 60.0
    min_shot_seconds: float = 5.0
    min_shots: int = 2
    max_shots: int = 16

    def __post_init__(self) -> None:
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ValueError(f"sequences.min_seconds/max_seconds: need 0 < min <= max, got {self.min_seconds}, "
                             f"{self.max_seconds}")


@dataclass(frozen=True)
class QualityConfig:
    enabled: bool = True
    min_short_side: int = 360
    max_black_fraction: float = 0.2
    max_static_fraction: float = 0.5
    min_sharpness: float = 30.0
    clip_model: str = ""  # local CLIP ViT-L/14 folder; with aesthetic_head enables the aesthetic score
    aesthetic_head: str = ""

    def __post_init__(self) -> None:
        if bool(self.clip_model) != bool(self.aesthetic_head):
            raise ValueError("quality.clip_model and quality.aesthetic_head go together: set both or neither")


@dataclass(frozen=True)
class SubtitleConfig:
    enabled: bool = True
    backend: str = "rapidocr"  # "rapidocr" | "paddle"
    model_dir: str = ""  # PP-OCRv5 det folder for backend "paddle"
    sample_fps: float = 2.0
    aspect: float = 0.0  # crop w/h; 0 keeps the picture's aspect
    crop_overlays: bool = True  # also cut static overlays (logos) off the crop
    overlay_budget: float = 0.35  # most of the crop's area cutting one overlay may cost
    reject_overlay_kept: bool = True  # reject ("overlay_kept") sequences whose crop still shows an overlay
    min_kept_fraction: float = 0.4

    def __post_init__(self) -> None:
        if self.backend not in ("rapidocr", "paddle"):
            raise ValueError(f"subtitles.backend must be 'rapidocr' or 'paddle', got {self.backend!r}")
        if self.backend == "paddle" and not self.model_dir:
            raise ValueError("subtitles.model_dir must name a local PP-OCRv5 det folder for backend 'paddle'")


@dataclass(frozen=True)
class TrackingConfig:
    enabled: bool = True
    detector: str = "hog"  # "hog" (OpenCV 4, offline, people) | "yolo" (ultralytics weights, local file)
    yolo_weights: str = ""  # .onnx; a pickled .pt needs trust_weights
    trust_weights: bool = False  # ultralytics unpickles .pt weights: true only for files you trust
    classes: tuple[int, ...] = (0,)
    sample_fps: float = 5.0
    require_subject: bool = False  # reject sequences where nobody is tracked (default: report recon absent)
    min_subject_conf: float = 0.3  # a primary subject's mean detector score (weak boxes are scenery)
    min_coverage: float = 0.5  # ...and the share of sampled frames of its span it is seen on (a steady track)
    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.detector not in ("hog", "yolo"):
            raise ValueError(f"tracking.detector must be 'hog' or 'yolo', got {self.detector!r}")
        if self.detector == "yolo" and not self.yolo_weights:
            raise ValueError("tracking.yolo_weights must name a local YOLO weights file for detector 'yolo'")


@dataclass(frozen=True)
class CaptionConfig:
    enabled: bool = True
    backend: str = "transformers"  # "transformers" (local folder) | "openai" (running server) | "vllm_ray"
    model: str = ""  # folder (transformers), served name (openai), hub id or folder (vllm_ray)
    base_url: str = ""  # openai backend, e.g. http://127.0.0.1:8000/v1
    device: str = "cpu"
    max_retries: int = 2
    limits: dict = field(default_factory=dict)  # CaptionLimits overrides, e.g. {"story_chars": 800}
    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.backend not in ("transformers", "openai", "vllm_ray"):
            raise ValueError(f"captions.backend must be transformers, openai or vllm_ray, got {self.backend!r}")


# The tiny random Qwen3-VL writes noise at any length: short answers and small pixel budgets keep
# the offline demo quick (defaults follow Memento Table 3 maxima and Qwen3-VL's budgets).
DEMO_CAPTION_LIMITS = {"story_chars": 160, "shot_chars": 100, "recon_chars": 80, "total_pixels": 65536,
                       "max_frame_pixels": 8192}


@dataclass(frozen=True)
class MementoConfig:
    footage: str = ""  # folder of footage (searched recursively); empty: generate demo footage
    demo_size: tuple[int, int] = (640, 360)
    clip_crf: int = 18
    clip_short_side: int = 480  # Memento trains on 480x832 clips; 0 keeps the crop's size
    clip_preset: str = "veryfast"
    shots: ShotsConfig = field(default_factory=ShotsConfig)
    sequences: SequenceConfig = field(default_factory=SequenceConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    subtitles: SubtitleConfig = field(default_factory=SubtitleConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    captions: CaptionConfig = field(default_factory=CaptionConfig)
    tiny_models: str = "out/tiny_models"  # where the demo builds its tiny random captioner
    run: RunConfig = field(default_factory=lambda: RunConfig(out="out/memento"))

    def __post_init__(self) -> None:
        if self.footage and not Path(self.footage).is_dir():
            raise ValueError(f"footage: {self.footage} is not a folder")


def resolve_models(cfg: MementoConfig, build: bool = True) -> MementoConfig:
    """Demo mode captions with a tiny random Qwen3-VL; a real run must name its captioner."""
    from dataclasses import replace

    c = cfg.captions
    if not c.enabled or c.model:
        return cfg
    if cfg.footage:
        raise ValueError("captions.model is not set: give a local Qwen3-VL folder (transformers), the served model "
                         "name (openai) or a hub id (vllm_ray), or --set captions.enabled=false")
    if not build:  # --dry-run: where the demo's tiny captioner will be, built when the build runs
        return replace(cfg, captions=replace(c, model=str(Path(cfg.tiny_models) / "qwen3vl")))
    from models.tiny import build_tiny

    log.warning("demo mode: captions from a tiny RANDOM Qwen3-VL in %s (plumbing only)", cfg.tiny_models)
    limits = {**DEMO_CAPTION_LIMITS, **c.limits}
    return replace(cfg, captions=replace(c, model=str(build_tiny("qwen3vl", cfg.tiny_models)), limits=limits))


def build_inputs(cfg: MementoConfig) -> Iterable[Sample]:  # a FootageListing (pipelines/metadata.py)
    from pipelines.demo_memento_dataset import write_demo
    from pipelines.metadata import FootageListing

    root = Path(cfg.footage) if cfg.footage else write_demo(Path(cfg.run.out).parent / "memento_demo_input",
                                                           cfg.demo_size)
    return FootageListing(root, tuple(VIDEO_EXTENSIONS))  # names listed here; films hashed by the ingest tasks


def build_stages(cfg: MementoConfig) -> list[Stage]:
    return front_half(cfg) + back_half(cfg)


def front_half(cfg: MementoConfig) -> list[Stage]:
    """Shots, sequences, quality, subtitles and clip writing (issue 3)."""
    from stages.clips import WriteClip
    from stages.quality import ScoreQuality
    from stages.sequences import SplitSequences
    from stages.shots import DetectShots
    from stages.subtitles import CropSubtitles

    q, sub, seq = cfg.quality, cfg.subtitles, cfg.sequences
    stages: list[Stage] = [
        DetectShots(backend=cfg.shots.backend, threshold=cfg.shots.threshold, device=cfg.shots.device,
                    fades=cfg.shots.fades, resources=Resources(cpus=1, gpus=cfg.shots.gpus)),
        SplitSequences(min_seconds=seq.min_seconds, max_seconds=seq.max_seconds, min_shot_seconds=seq.min_shot_seconds,
                       min_shots=seq.min_shots, max_shots=seq.max_shots),
    ]
    if q.enabled:
        # With subtitles on, quality samples their frames (same rate and size) and hands them on: one decode.
        share = {"sample_fps": sub.sample_fps, "decode_width": CropSubtitles.analysis_width, "keep_frames": True}
        stages.append(ScoreQuality(**(share if sub.enabled else {}),
                                   min_short_side=q.min_short_side, max_black_fraction=q.max_black_fraction,
                                   max_static_fraction=q.max_static_fraction, min_sharpness=q.min_sharpness,
                                   clip_model=q.clip_model, aesthetic_head=q.aesthetic_head))
    if sub.enabled:
        stages.append(CropSubtitles(backend=sub.backend, model_dir=sub.model_dir, sample_fps=sub.sample_fps,
                                    aspect=sub.aspect, crop_overlays=sub.crop_overlays,
                                    overlay_budget=sub.overlay_budget, reject_overlay_kept=sub.reject_overlay_kept,
                                    min_kept_fraction=sub.min_kept_fraction))
    stages.append(WriteClip(crf=cfg.clip_crf, preset=cfg.clip_preset, short_side=cfg.clip_short_side))
    return stages


def back_half(cfg: MementoConfig) -> list[Stage]:
    """Subject tracking with reconstruction frames, then the three caption stages (issue 4)."""
    from stages.base import Resources
    from stages.captions import back_half_stages

    t, c = cfg.tracking, cfg.captions
    tracking = {"detector": t.detector, "yolo_weights": t.yolo_weights, "trust_weights": t.trust_weights,
                "classes": t.classes, "sample_fps": t.sample_fps, "require_subject": t.require_subject,
                "min_subject_conf": t.min_subject_conf, "min_coverage": t.min_coverage,
                "resources": Resources(cpus=t.cpus, gpus=t.gpus)}
    captions: dict = {"backend": c.backend, "model": c.model, "max_retries": c.max_retries, "limits": dict(c.limits),
                      "resources": Resources(cpus=c.cpus, gpus=c.gpus)}
    if c.backend == "openai":
        captions["backend_kwargs"] = {"base_url": c.base_url}
    elif c.backend == "transformers":
        captions["backend_kwargs"] = {"device": c.device}
    stages = back_half_stages(tracking, captions)
    return [st for st, on in zip(stages, (t.enabled, c.enabled)) if on]


class CaptionStats:
    """Collects caption lengths while the run streams, for the Memento Table 3 block of the summary."""

    meta_keys = ("captions",)  # all it reads: under Ray only these travel to the driver (pipelines/execute.py)

    def __init__(self) -> None:
        self.captions: list[dict] = []

    def __call__(self, s: Sample) -> None:
        if not s.rejected and s.meta.get("captions"):
            c = s.meta["captions"]
            self.captions.append({"story": c["story"], "shots": list(c["shots"]), "recon": list(c["recon"])})

    def tables(self) -> dict[str, str]:
        from types import SimpleNamespace

        from stages.caption_validation import caption_table, format_caption_table

        if not self.captions:
            return {}
        stubs = [SimpleNamespace(rejected=False, meta={"captions": c}) for c in self.captions]
        return {"Caption lengths in characters (Memento Table 3 form)": format_caption_table(caption_table(stubs))}


CORPUS = "memento"


def add_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--footage", help="folder of footage files (default: generate demo footage)")


def load(args: argparse.Namespace, build_models: bool = True) -> MementoConfig:
    return resolve_models(load_config(MementoConfig, args, footage=args.footage), build=build_models)


def model_paths(cfg: MementoConfig) -> dict[str, str]:
    q, sub, t, c = cfg.quality, cfg.subtitles, cfg.tracking, cfg.captions
    keys = {"quality.clip_model": q.clip_model if q.enabled else "",
            "quality.aesthetic_head": q.aesthetic_head if q.enabled else "",
            "subtitles.model_dir": sub.model_dir if sub.enabled and sub.backend == "paddle" else "",
            "tracking.yolo_weights": t.yolo_weights if t.enabled and t.detector == "yolo" else "",
            # the openai backend's model is the name a running server serves, not a path
            "captions.model": c.model if c.enabled and c.backend != "openai" and cfg.footage else ""}
    return {k: v for k, v in keys.items() if v}


def demo_note(cfg: MementoConfig) -> str | None:
    if cfg.footage or not cfg.captions.enabled:
        return None
    return f"demo mode: a tiny RANDOM Qwen3-VL captioner built in {cfg.tiny_models} when the build runs"


def count_inputs(cfg: MementoConfig) -> dict[str, int]:
    root = Path(cfg.footage or Path(cfg.run.out).parent / "memento_demo_input")
    n = sum(1 for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS)
    if not cfg.footage and not n:
        return {f"demo footage files (generated under {root} when the build runs)": 0}
    return {f"video files under {root}": n}


def run(cfg: MementoConfig, inputs):
    stats = CaptionStats()
    return run_corpus(CORPUS, cfg, inputs, build_stages(cfg), observe=stats, tables=stats.tables)


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    from pipelines.preflight import build_main

    return build_main(sys.modules[__name__], argv, prog)


if __name__ == "__main__":
    from pipelines.config import exit_on_user_error

    sys.exit(exit_on_user_error(main))
