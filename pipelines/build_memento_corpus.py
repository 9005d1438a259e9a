"""Build the Memento cinematic corpus (front half): footage -> 30-60 s multi-shot sequences, cropped clips.

    python pipelines/build_memento_corpus.py                          # demo: generated footage, embedded Ray
    python pipelines/build_memento_corpus.py --footage DIR --out OUT  # every video file under DIR
    python pipelines/build_memento_corpus.py --runner sequential --set shots.backend=transnetv2

Each footage file: shot boundaries -> sequences of consecutive shots, each longer than 5 s,
30-60 s in all (memento.txt §3.1) -> quality (bars, black, static, blur, resolution,
aesthetics) -> burned-in subtitles found and cropped away -> one H.264 clip per sequence with
its shots, quality and subtitle events in the JSON. Captions and tracking come next.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python pipelines/build_memento_corpus.py` (also under `ray job submit`)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.common import RunConfig, add_common_args, load_config, run_corpus
from stages.base import Resources, Sample, Stage

log = logging.getLogger("memcorpus.memento")
VIDEO_EXTENSIONS = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts")


@dataclass(frozen=True)
class ShotsConfig:
    backend: str = "content"  # "content" | "transnetv2"
    threshold: float | None = None  # backend default when None
    device: str = "cpu"  # transnetv2 on GPU workers: "cuda" with gpus > 0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.backend not in ("content", "transnetv2"):
            raise ValueError(f"shots.backend must be 'content' or 'transnetv2', got {self.backend!r}")


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
    min_kept_fraction: float = 0.4

    def __post_init__(self) -> None:
        if self.backend not in ("rapidocr", "paddle"):
            raise ValueError(f"subtitles.backend must be 'rapidocr' or 'paddle', got {self.backend!r}")
        if self.backend == "paddle" and not self.model_dir:
            raise ValueError("subtitles.model_dir must name a local PP-OCRv5 det folder for backend 'paddle'")


@dataclass(frozen=True)
class MementoConfig:
    footage: str = ""  # folder of footage (searched recursively); empty: generate demo footage
    demo_size: tuple[int, int] = (640, 360)
    clip_crf: int = 18
    shots: ShotsConfig = field(default_factory=ShotsConfig)
    sequences: SequenceConfig = field(default_factory=SequenceConfig)
    quality: QualityConfig = field(default_factory=QualityConfig)
    subtitles: SubtitleConfig = field(default_factory=SubtitleConfig)
    run: RunConfig = field(default_factory=lambda: RunConfig(out="out/memento"))

    def __post_init__(self) -> None:
        if self.footage and not Path(self.footage).is_dir():
            raise ValueError(f"footage: {self.footage} is not a folder")


def build_inputs(cfg: MementoConfig) -> Iterator[Sample]:
    from pipelines.demo_memento import write_demo
    from stages.ids import content_id

    root = Path(cfg.footage) if cfg.footage else write_demo(Path(cfg.run.out).parent / "memento_demo_input",
                                                           cfg.demo_size)
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS):
        yield Sample(id=content_id([path]), source={"path": str(path)})


def build_stages(cfg: MementoConfig) -> list[Stage]:
    from stages.clips import WriteClip
    from stages.quality import ScoreQuality
    from stages.sequences import SplitSequences
    from stages.shots import DetectShots
    from stages.subtitles import CropSubtitles

    q, sub, seq = cfg.quality, cfg.subtitles, cfg.sequences
    stages: list[Stage] = [
        DetectShots(backend=cfg.shots.backend, threshold=cfg.shots.threshold, device=cfg.shots.device,
                    resources=Resources(cpus=1, gpus=cfg.shots.gpus)),
        SplitSequences(min_seconds=seq.min_seconds, max_seconds=seq.max_seconds, min_shot_seconds=seq.min_shot_seconds,
                       min_shots=seq.min_shots, max_shots=seq.max_shots),
    ]
    if q.enabled:
        stages.append(ScoreQuality(min_short_side=q.min_short_side, max_black_fraction=q.max_black_fraction,
                                   max_static_fraction=q.max_static_fraction, min_sharpness=q.min_sharpness,
                                   clip_model=q.clip_model, aesthetic_head=q.aesthetic_head))
    if sub.enabled:
        stages.append(CropSubtitles(backend=sub.backend, model_dir=sub.model_dir, sample_fps=sub.sample_fps,
                                    aspect=sub.aspect, crop_overlays=sub.crop_overlays,
                                    min_kept_fraction=sub.min_kept_fraction))
    stages.append(WriteClip(crf=cfg.clip_crf))
    return stages


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(p)
    p.add_argument("--footage", help="folder of footage files (default: generate demo footage)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    cfg = load_config(MementoConfig, args, footage=args.footage)
    return run_corpus("memento", cfg, build_inputs(cfg), build_stages(cfg)).exit_code


if __name__ == "__main__":
    sys.exit(main())
