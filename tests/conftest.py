"""Shared fixtures. Tests never touch the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

REAL_DATA = Path(__file__).resolve().parent / "data" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The small real clips vendored in tests/data/real (origins and licences in its README.md)."""
    # Vendored with the repository, so a missing folder is a broken checkout: fail loudly, never skip.
    if not (REAL_DATA / "cuts_people_640x360.mp4").is_file():
        pytest.fail(f"vendored real test data missing from {REAL_DATA}; restore it from git")
    return REAL_DATA


@pytest.fixture(scope="session")
def memento_demo_dataset(tmp_path_factory) -> Path:
    """A small Memento dataset folder (dataset.json, shards, manifests) built once per session from the demo
    footage through the real pipeline; see pipelines.demo_memento_dataset.build_small_demo_corpus."""
    from pipelines.demo_memento_dataset import build_small_demo_corpus

    return build_small_demo_corpus(tmp_path_factory.mktemp("memento_demo") / "dataset")


# Real pipeline output for the tests of its consumers (trainer, train-check, verify, report): a consumer test
# starts from what the producer writes, never from a sample hand-built in the format the consumer expects.
@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict[str, str]:
    """Tiny random FramePack, DINOv2 and Wan folders, built in code once per session."""
    from models.tiny import build_tiny

    d = tmp_path_factory.mktemp("tiny_models")
    return {fam: str(build_tiny(fam, d)) for fam in ("framepack", "dinov2", "wan")}


@pytest.fixture(scope="session")
def senorita_demo_dataset(tmp_path_factory, tiny_models) -> Path:
    """The Señorita-Long demo build at small settings (2 good pairs + the broken ones, 200 FramePack frames)."""
    from pipelines.demo_corpora import build_senorita_demo

    out = tmp_path_factory.mktemp("senorita_demo") / "dataset"
    return build_senorita_demo(out, tiny_models["framepack"], tiny_models["dinov2"])


@pytest.fixture(scope="session")
def multicam_demo_dataset(tmp_path_factory) -> Path:
    """The multi-camera demo build at small settings: 2 generated scenes x 10 cameras, a 2-lap roam, broken inputs."""
    from pipelines.demo_corpora import build_multicam_demo

    return build_multicam_demo(tmp_path_factory.mktemp("multicam_demo") / "dataset")
