"""Shared fixtures for the Memento back-half tests: one tiny random Qwen3-VL per session."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("YOLO_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_qwen(tmp_path_factory) -> str:
    from models.tiny import build_tiny

    return str(build_tiny("qwen3vl", tmp_path_factory.mktemp("tiny_models")))


@pytest.fixture(scope="session")
def small_limits():
    """Short strings keep the random model's answers (always at the length bound) fast."""
    from models.captioner import CaptionLimits

    return CaptionLimits(story_chars=60, shot_chars=40, recon_chars=40, name_chars=14, description_chars=24,
                         max_subjects=2, total_pixels=8 * 64 * 64, max_frame_pixels=64 * 96)


@pytest.fixture(scope="session")
def tiny_captioner(tiny_qwen, small_limits):
    from models.captioner import build_captioner

    return build_captioner("transformers", tiny_qwen, limits=small_limits)
