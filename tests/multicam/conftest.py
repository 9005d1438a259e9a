"""Shared fixtures: one small generated demo (2 scenes x 10 cameras, a 2-lap roam, broken inputs) per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory):
    from pipelines.demo_multicam import write_demo

    return write_demo(tmp_path_factory.mktemp("multicam_demo"), scenes=2, size=32, frames=21, roam_frames=96,
                      roam_size=(48, 32))
