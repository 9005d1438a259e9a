"""One config mechanism for the builds and the trainer: the same --config/--set parsing, type checks and errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from pipelines.build_multicam_corpus import MulticamConfig
from pipelines.build_senorita_long import SenoritaConfig
from pipelines.config import ConfigError, add_config_args, load_config
from training.config import TrainConfig, load_train_config, resolve_paths


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_config_args(p)
    return p.parse_args(list(argv))


def test_builds_and_training_parse_set_alike(tmp_path):
    (tmp_path / "t.yaml").write_text("dataset: d\nbackbone: b\nsize: [32, 48]\n")
    cfg = load_train_config(str(tmp_path / "t.yaml"), ["merge_blocks=[2, 4]", "lr=1", "memory_level=null"])
    assert cfg.size == (32, 48) and cfg.merge_blocks == (2, 4) and cfg.lr == 1.0 and cfg.memory_level is None
    assert load_train_config(None, ["steps=7"], dataset="d", backbone="b").steps == 7
    s = load_config(SenoritaConfig, _args("--set", "demo_size=[64, 48]", "--set", "extend.gpus=1"))
    assert s.demo_size == (64, 48) and s.extend.gpus == 1.0
    assert load_config(MulticamConfig, _args("--set", "fov.radius=2")).fov.radius == 2.0  # float | str
    assert load_config(MulticamConfig, _args("--set", "fov.radius=auto")).fov.radius == "auto"


@pytest.mark.parametrize(("overrides", "message"), [
    (["stepz=1"], "unknown config key 'stepz'"),
    (["steps=ten"], "steps: expected int, got 'ten'"),
    (["size=[1, 2, 3]"], "size: expected 2 values"),
    (["use_gpu=maybe"], "use_gpu: expected bool"),
    (["strategy=zero"], "strategy must be ddp|fsdp"),
    (["steps"], "expected KEY=VALUE"),
])
def test_training_mistakes_name_the_key(overrides, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("|", r"\|")):
        load_train_config(None, overrides, dataset="d", backbone="b")


def test_required_fields_and_sections():
    with pytest.raises(ConfigError, match="backbone is not set"):
        load_train_config(None, dataset="d")
    with pytest.raises(ConfigError, match="run.shard_max_samples: expected int"):
        load_config(SenoritaConfig, _args("--set", "run.shard_max_samples=1.5"))
    with pytest.raises(ConfigError, match="extend is a section"):
        load_config(SenoritaConfig, _args("--set", "extend=3"))


def test_relative_training_paths_resolve_where_typed(tmp_path):
    (tmp_path / "models" / "wan").mkdir(parents=True)
    cfg = load_train_config(None, dataset="ds", backbone="models/wan", out="runs")
    got = resolve_paths(cfg, cwd=tmp_path)
    assert got.dataset == str(tmp_path / "ds") and got.out == str(tmp_path / "runs")
    assert got.backbone == str(tmp_path / "models" / "wan")
    hub = resolve_paths(load_train_config(None, dataset="/abs/ds", backbone="Wan-AI/Wan2.1-T2V-1.3B-Diffusers"),
                        cwd=tmp_path)
    assert hub.backbone == "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" and hub.dataset == "/abs/ds"  # not a local folder
    assert resolve_paths(got, cwd=Path("/elsewhere")) == got  # absolute paths stay as they are
    assert isinstance(got, TrainConfig)
