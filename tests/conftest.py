"""Shared fixtures. Tests never touch the network."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "testdata" / "real"


@pytest.fixture(scope="session")
def real_data() -> Path:
    """The real clips in ../shared/testdata/real; skipped in a user's clone that has no ../shared."""
    if not SHARED.is_dir():
        pytest.skip(f"real test data not present at {SHARED} (only in the development checkout)")
    return SHARED
