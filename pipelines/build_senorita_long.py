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

from pipelines.common import RunConfig, add_common_args, load_config, run_corpus
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


def resolve_models(cfg: SenoritaConfig) -> SenoritaConfig:
    """Demo mode builds tiny random models; a real run must name its weights."""
    from dataclasses import replace

    from models.tiny import build_tiny

    ext, desc = cfg.extend, cfg.descriptors
    if cfg.pairs:
        for key, value in (("extend.model", ext.model), ("descriptors.model", desc.model)):
            if not value:
                raise ValueError(f"{key} is not set: give a local folder or hub id (--set {key}=...); for an "
                                 "offline smoke run, `memcorpus make-tiny-models DIR` and point it at DIR/<family>")
        return cfg
    if not ext.model:
        ext = replace(ext, model=str(build_tiny("framepack", cfg.tiny_models)), steps=cfg.demo_steps)
    if not desc.model:
        desc = replace(desc, model=str(build_tiny("dinov2", cfg.tiny_models)))
    log.warning("demo mode: tiny RANDOM models from %s (plumbing only, not real FramePack/DINOv2)", cfg.tiny_models)
    return replace(cfg, extend=ext, descriptors=desc)


def build_inputs(cfg: SenoritaConfig):
    from pipelines.demo_senorita import write_demo
    from stages.senorita import load_pairs, pair_inputs

    pairs = cfg.pairs
    if not pairs:
        pairs = str(write_demo(Path(cfg.run.out).parent / "senorita_demo_input", cfg.demo_pairs, cfg.demo_size))
    root = cfg.root or (pairs.rsplit("/", 1)[0] if "://" in pairs else str(Path(pairs).parent))
    return pair_inputs(load_pairs(pairs), root)


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


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_args(p)
    p.add_argument("--pairs", help="Señorita-2M metadata JSON (default: generate a demo set)")
    p.add_argument("--root", help="folder the metadata paths are relative to (default: the JSON's folder)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    cfg = resolve_models(load_config(SenoritaConfig, args, pairs=args.pairs, root=args.root))
    return run_corpus("senorita_long", cfg, build_inputs(cfg), build_stages(cfg)).exit_code


if __name__ == "__main__":
    sys.exit(main())
