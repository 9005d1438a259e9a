"""Training configuration: a frozen dataclass is the source of truth; YAML and --set only override."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml


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


def _coerce(f, value: Any) -> Any:
    if isinstance(value, str) and f.type not in ("str", "str | None"):
        value = yaml.safe_load(value)
    if "tuple" in str(f.type) and isinstance(value, list):
        value = tuple(value)
    return value


def load_train_config(path: str | None = None, overrides: list[str] | None = None, **kw: Any) -> TrainConfig:
    """Config from a YAML/JSON file, then ``key=value`` overrides, then keyword arguments."""
    data: dict[str, Any] = {}
    if path:
        text = Path(path).read_text()
        data = json.loads(text) if path.endswith(".json") else yaml.safe_load(text) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a training config must be a mapping")
    for item in overrides or []:
        if "=" not in item:
            raise ValueError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        data[k.strip()] = v
    data.update(kw)
    known = {f.name: f for f in fields(TrainConfig)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise ValueError(f"unknown training config keys {unknown}; known: {sorted(known)}")
    return TrainConfig(**{k: _coerce(known[k], v) for k, v in data.items()})
