"""Training configuration: a frozen dataclass is the source of truth; YAML and --set only override."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipelines.config import ConfigError, add_config_args, load


@dataclass(frozen=True)
class TrainConfig:
    dataset: str  # dataset folder (its dataset.json) produced by a corpus builder
    backbone: str  # Wan2.x diffusers folder / cached hub id, or the tiny folder (make-tiny-models DIR -> DIR/wan)
    out: str = "runs/train"  # Ray Train storage_path
    name: str = "memory_dit"  # run name; re-running the same name resumes from its latest checkpoint
    text_encoder: str = "hash"  # "hash" (offline) or a Wan folder with tokenizer/ and text_encoder/ (UMT5)
    steps: int = 100
    batch_size: int = 1
    lr: float = 1e-4
    weight_decay: float = 0.0
    seed: int = 0
    num_workers: int = 1
    cpus_per_worker: float = 1.0
    use_gpu: bool = False
    strategy: str = "ddp"  # ddp | fsdp (FSDP2 fully_shard per block, for large backbones)
    precision: str = "auto"  # auto (bf16 on GPU, fp32 on CPU) | bf16 (FSDP2 bf16 params / DDP autocast) | fp32
    checkpoint_every: int = 50
    keep_checkpoints: int = 2
    resume_from: str | None = None  # explicit checkpoint dir; default: the run's own latest
    shuffle: int = 64
    fixed_batch: bool = False  # train on one batch over and over (overfit/smoke tests)
    # data
    frames: int = 9
    size: tuple[int, int] = (64, 64)
    memory_k: int = 6  # most memory videos; each batch draws U{memory_k_min..memory_k} (memory-v2v §4.1.1: 1–6)
    memory_k_min: int = 1
    memory_mode: str = "paper"  # paper (each corpus as its paper trains) | retrieved | random | none
    context_size: int = 20  # Context-as-Memory §4.1: 20 context frames per roam example
    # model
    merge_blocks: tuple[int, ...] = (10, 20)
    merge_stride: int = 2
    merge_user: bool = False
    memory_level: str | None = None
    camera: bool | None = None  # None: on for corpora that store cameras (multicam scenes and roams)
    bank: bool | None = None  # None: on for Memento (the dual-path memory bank, memento §3.2)
    gradient_checkpointing: bool = False
    # step
    caption_dropout: float = 0.1
    memory_noise: float = 0.1
    user_dropout: float = 0.1
    merge_range: tuple[float, float] = (0.3, 0.7)
    recon_weight: float = 0.5
    merge_prob: float = 0.5  # memory-v2v §4.1.1: merging on half the steps
    single_level_prob: float = 0.5  # memory-v2v §4.1.1: one tokenizer for all memory on half the steps
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.strategy not in ("ddp", "fsdp"):
            raise ValueError(f"strategy must be ddp|fsdp, got {self.strategy!r}")
        if self.precision not in ("auto", "bf16", "fp32"):
            raise ValueError(f"precision must be auto|bf16|fp32, got {self.precision!r}")
        for name in ("steps", "batch_size", "num_workers", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.caption_dropout < 1:
            raise ValueError(f"caption_dropout must be in [0, 1), got {self.caption_dropout}")
        lo, hi = self.merge_range
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"merge_range must satisfy 0 <= lo <= hi <= 1, got {self.merge_range}")


def load_train_config(path: str | None = None, overrides: list[str] | None = None, **kw: Any) -> TrainConfig:
    """Config from a YAML/JSON file, then ``key=value`` overrides, then keyword arguments.

    The corpus builders' loader (pipelines/config.py): the same ``--set`` parsing and type checks,
    and a ``ConfigError`` naming the key for every user mistake.
    """
    return load(TrainConfig, path, overrides, **kw)


_LOCAL_PATHS = ("dataset", "out", "resume_from")  # always local folders (or URIs)
_LOCAL_OR_HUB = ("backbone", "text_encoder")  # a local folder when one exists there, else a hub id / "hash"


def resolve_paths(cfg: TrainConfig, cwd: str | Path | None = None) -> TrainConfig:
    """Relative paths made absolute against ``cwd`` (default: where the command was typed).

    Ray Train runs each worker in its own directory, where ``out/senorita_long`` names nothing (and
    transformers then reports a missing config.json for a folder that exists): resolve before the
    workers see the config.
    """
    base = Path(cwd or os.getcwd())
    changes: dict[str, str] = {}
    for name in _LOCAL_PATHS + _LOCAL_OR_HUB:
        value = getattr(cfg, name)
        if not value or "://" in value or Path(value).is_absolute():
            continue
        local = base / Path(value).expanduser()
        if name in _LOCAL_PATHS or local.exists():
            changes[name] = str(local.resolve())
    return replace(cfg, **changes) if changes else cfg


def add_arguments(p: argparse.ArgumentParser) -> None:
    """``memcorpus train`` / ``python -m training.train`` flags: the corpus builders' --config and --set."""
    add_config_args(p)
    p.add_argument("--ray-address", default=None, help="Ray cluster address (default: start a local one)")
    p.add_argument("--dry-run", action="store_true", help="check the config and paths, print it resolved; train nothing")


def print_config(cfg: TrainConfig) -> None:
    """``--dry-run``: the config as the workers would get it (paths absolute)."""
    import json
    from dataclasses import asdict

    print(f"dry run: training config checked (Ray is not started)\n{json.dumps(asdict(cfg), indent=2)}")


def check_inputs(cfg: TrainConfig, remote: bool) -> None:
    """The dataset and the backbone exist, before Ray starts: a user's mistake is one line (ConfigError)."""
    from pipelines.preflight import check_model

    if "://" not in cfg.dataset and not (Path(cfg.dataset) / "dataset.json").is_file():
        raise ConfigError(f"dataset={cfg.dataset}: no dataset.json there; build a corpus into it first "
                          "(memcorpus build ...)")
    for key in ("backbone",) + (("text_encoder",) if cfg.text_encoder != "hash" else ()):
        try:
            check_model(key, getattr(cfg, key))
        except ConfigError:
            if not remote:  # on a cluster the workers' disks may hold what this one does not
                raise


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The checked config of a training command, paths absolute; imports no torch, so mistakes are reported fast."""
    from types import SimpleNamespace

    from pipelines.preflight import joins_cluster

    cfg = resolve_paths(load_train_config(args.config, args.overrides))
    check_inputs(cfg, remote=joins_cluster(SimpleNamespace(ray_address=args.ray_address)))
    return cfg
