"""Tiny random models built in code from real configs, for tests and the offline demo.

Each family has its own module with ``build(out_dir: Path) -> None`` that writes a folder
loadable by the same code path as the production weights (``from_pretrained(local_dir)``),
tokenizers trained in code included. ``memcorpus make-tiny-models DIR`` writes them all.
Outputs are random: they exercise shapes, dtypes and plumbing, never quality.
"""

from __future__ import annotations

import importlib
from pathlib import Path

# family -> "module:function"; each writes DIR/<family>/
TINY_BUILDERS: dict[str, str] = {
    "framepack": "models.tiny_framepack:build",
    "dinov2": "models.tiny_encoders:build_dinov2",
    "clip": "models.tiny_encoders:build_clip",
    "qwen3vl": "models.tiny_qwen3vl:build",
    "wan": "models.tiny_wan:build",
}

MARKER = "TINY_RANDOM_MODEL"  # a file written beside every tiny model so outputs can say so


def build_tiny(family: str, root: str | Path, force: bool = False) -> Path:
    """Write one family's tiny model under ``root/family`` (skipped if already complete)."""
    if family not in TINY_BUILDERS:
        raise ValueError(f"unknown tiny model family {family!r}; known: {sorted(TINY_BUILDERS)}")
    out = Path(root) / family
    if (out / MARKER).exists() and not force:
        return out
    modname, fn = TINY_BUILDERS[family].split(":")
    out.mkdir(parents=True, exist_ok=True)
    getattr(importlib.import_module(modname), fn)(out)
    (out / MARKER).write_text("random weights built by memcorpus make-tiny-models; not a trained model\n")
    return out


def is_tiny(path: str | Path) -> bool:
    return (Path(path) / MARKER).exists()
