"""Build the Señorita-Long corpus: Señorita-2M pairs whose targets are extended to 233 frames.

    python pipelines/build_senorita_long.py                       # demo: generated pairs, tiny models
    python pipelines/build_senorita_long.py --pairs PAIRS.json --root DIR --out OUT \\
        --set extend.model=/models/framepack --set descriptors.model=/models/dinov2-base

Each pair: validate both 33-frame clips -> extend the target forward by 200 frames with
FramePack F1, the whole target clip as history (memory-v2v §0.E.2.1) -> DINOv2 segment
descriptors of the source and the extended target (Alg. 2) -> one WebDataset sample.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # `python pipelines/build_senorita_long.py` (also under `ray job submit`)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipelines.common import RunConfig, load_config, run_corpus
from stages.base import Resources, Stage

log = logging.getLogger("memcorpus.senorita")


@dataclass(frozen=True)
class ExtendConfig:
    model: str = ""  # FramePack folder (transformer, vae, text encoders, image encoder) or hub id
    transformer: str | None = None  # hub id/folder when `model` is the HunyuanVideo base repo
    image_encoder: str | None = None  # e.g. lllyasviel/flux_redux_bfl
    num_new_frames: int = 200
    steps: int = 25
    guidance: float = 10.0
    latent_window_size: int = 9
    resolution: int | None = None  # working area ~ resolution**2; None keeps the input size
    dtype: str | None = None
    decode_once: bool = False
    device: str = "cpu"
    cpus: float = 1.0
    gpus: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_new_frames < 1:
            raise ValueError(f"extend.num_new_frames must be >= 1, got {self.num_new_frames}")


@dataclass(frozen=True)
class DescriptorConfig:
    model: str = ""  # DINOv2 folder or hub id, e.g. facebook/dinov2-base
    segment_frames: int = 33  # one Señorita clip: every memory segment is a drop-in T-frame clip
    frame_batch: int = 32
    device: str = "cpu"
    cpus: float = 1.0
    gpus: float = 0.0


@dataclass(frozen=True)
class SenoritaConfig:
    pairs: str = ""  # Señorita-2M metadata JSON; empty: generate the demo set
    root: str = ""  # folder the metadata's paths are relative to (default: the metadata's folder)
    clip_frames: int = 33
    max_clip_bytes: int = 256 << 20
    demo_pairs: int = 6
    demo_size: tuple[int, int] = (128, 96)
    demo_steps: int = 4  # sampling steps with the tiny random model: it makes noise at any step count
    tiny_models: str = "out/tiny_models"  # where the demo builds its tiny random models
    extend: ExtendConfig = field(default_factory=ExtendConfig)
    descriptors: DescriptorConfig = field(default_factory=DescriptorConfig)
    run: RunConfig = field(default_factory=lambda: RunConfig(out="out/senorita_long"))

    def __post_init__(self) -> None:
        if self.clip_frames < 2:
            raise ValueError(f"clip_frames must be >= 2, got {self.clip_frames}")
        if self.pairs and "://" not in self.pairs and not Path(self.pairs).is_file():
            raise ValueError(f"pairs: {self.pairs} is not a file")


def resolve_models(cfg: SenoritaConfig, build: bool = True) -> SenoritaConfig:
    """Demo mode builds tiny random models (``build=False``: not yet, for --dry-run); a real run must name its
    weights."""
    from dataclasses import replace

    from models.tiny import build_tiny

    ext, desc = cfg.extend, cfg.descriptors
    if cfg.pairs:
        for key, value in (("extend.model", ext.model), ("descriptors.model", desc.model)):
            if not value:
                raise ValueError(f"{key} is not set: give a local folder or hub id (--set {key}=...); for an "
                                 "offline smoke run, `memcorpus make-tiny-models DIR` and point it at DIR/<family>")
        return cfg
    if not build:  # --dry-run: where the demo's tiny models will be, built when the build runs
        ext = replace(ext, model=ext.model or str(Path(cfg.tiny_models) / "framepack"))
        return replace(cfg, extend=ext, descriptors=replace(desc, model=desc.model or str(Path(cfg.tiny_models) / "dinov2")))
    if not ext.model:
        ext = replace(ext, model=str(build_tiny("framepack", cfg.tiny_models)), steps=cfg.demo_steps)
    if not desc.model:
        desc = replace(desc, model=str(build_tiny("dinov2", cfg.tiny_models)))
    log.warning("demo mode: tiny RANDOM models from %s (plumbing only, not real FramePack/DINOv2)", cfg.tiny_models)
    return replace(cfg, extend=ext, descriptors=desc)


def build_inputs(cfg: SenoritaConfig):
    from pipelines.demo_senorita import write_demo
    from pipelines.metadata import PairList

    pairs = cfg.pairs
    if not pairs:
        pairs = str(write_demo(Path(cfg.run.out).parent / "senorita_demo_input", cfg.demo_pairs, cfg.demo_size))
    root = cfg.root or (pairs.rsplit("/", 1)[0] if "://" in pairs else str(Path(pairs).parent))
    return PairList(pairs, root)  # records streamed; clips read and hashed by the ingest tasks


def build_stages(cfg: SenoritaConfig) -> list[Stage]:
    from stages.descriptors import SegmentDescriptors
    from stages.extend import ExtendTarget
    from stages.senorita import ValidatePair

    e, d = cfg.extend, cfg.descriptors
    return [
        ValidatePair(clip_frames=cfg.clip_frames, max_bytes=cfg.max_clip_bytes),
        ExtendTarget(model=e.model, transformer=e.transformer, image_encoder=e.image_encoder,
                     num_new_frames=e.num_new_frames, steps=e.steps, guidance=e.guidance,
                     latent_window_size=e.latent_window_size, resolution=e.resolution, dtype=e.dtype,
                     decode_once=e.decode_once, device=e.device, seed=e.seed, config_key="extend.model",
                     resources=Resources(cpus=e.cpus, gpus=e.gpus)),
        SegmentDescriptors(model=d.model, segment_frames=d.segment_frames, frame_batch=d.frame_batch,
                           device=d.device, config_key="descriptors.model",
                           resources=Resources(cpus=d.cpus, gpus=d.gpus)),
    ]


CORPUS = "senorita_long"


def add_input_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pairs", help="Señorita-2M metadata JSON (default: generate a demo set)")
    p.add_argument("--root", help="folder the metadata paths are relative to (default: the JSON's folder)")


def load(args: argparse.Namespace, build_models: bool = True) -> SenoritaConfig:
    return resolve_models(load_config(SenoritaConfig, args, pairs=args.pairs, root=args.root), build=build_models)


def model_paths(cfg: SenoritaConfig) -> dict[str, str]:
    if not cfg.pairs:
        return {}  # demo mode: tiny random models, built in cfg.tiny_models when the build runs
    e, d = cfg.extend, cfg.descriptors
    keys = {"extend.model": e.model, "extend.transformer": e.transformer, "extend.image_encoder": e.image_encoder,
            "descriptors.model": d.model}
    return {k: v for k, v in keys.items() if v}


def demo_note(cfg: SenoritaConfig) -> str | None:
    if cfg.pairs:
        return None
    return f"demo mode: tiny RANDOM FramePack and DINOv2 built in {cfg.tiny_models} when the build runs"


def count_inputs(cfg: SenoritaConfig) -> dict[str, int]:
    if not cfg.pairs:
        return {f"demo pairs, generated under {Path(cfg.run.out).parent / 'senorita_demo_input'} at run time":
                cfg.demo_pairs}
    from pipelines.metadata import PairList

    # The driver's listing of the pair file (JSON list, JSON Lines, Parquet): chunks of (first record, count, ...).
    return {f"records in {cfg.pairs}": sum(desc[1] for desc in PairList(cfg.pairs, cfg.root).descriptors())}


def run(cfg: SenoritaConfig, inputs):
    return run_corpus(CORPUS, cfg, inputs, build_stages(cfg))


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    from pipelines.preflight import build_main

    return build_main(sys.modules[__name__], argv, prog)


if __name__ == "__main__":
    from pipelines.config import exit_on_user_error

    sys.exit(exit_on_user_error(main))
