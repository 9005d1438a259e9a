"""Shared tiny Wan folder for the training tests (built once per session, random weights)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_wan_dir(tmp_path_factory):
    from models.tiny_wan import build

    d = tmp_path_factory.mktemp("tiny") / "wan"
    build(d)
    return str(d)
