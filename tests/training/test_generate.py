"""memcorpus generate from checkpoints the trainer wrote, one per demo corpus: frames and the retrieval log.

Each checkpoint comes from ``train_worker`` (the loop Ray Train runs) in a one-rank gloo group under FSDP2,
saved as ``train_loop_per_worker`` saves it (``checkpoint_N/state.pt``); a few steps on the tiny Wan.
"""

from __future__ import annotations

import argparse
import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from stages.video import read_frames
from tests.geometry import yaw_pose
from training.generate import add_arguments, run

TRAIN = {"steps": 1, "frames": 5, "size": (32, 32), "shuffle": 0, "checkpoint_every": 1, "memory_k": 3}


def _train(dataset: Path, wan: str, out: Path) -> Path:
    from training.config import load_train_config
    from training.train import CKPT_FILE, train_worker

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    try:
        cfg = load_train_config(None, dataset=str(dataset), backbone=wan, out=str(out), strategy="fsdp", **TRAIN)

        def report(stats, ckpt):
            if ckpt is not None:
                d = out / cfg.name / f"checkpoint_{ckpt['step']:06d}"
                d.mkdir(parents=True)
                torch.save(ckpt, d / CKPT_FILE)

        train_worker(cfg, 0, 1, torch.device("cpu"), None, report)
    finally:
        dist.destroy_process_group()
    return out / cfg.name


def _generate(run_dir: Path, out: Path, *extra: str) -> dict:
    p = argparse.ArgumentParser()
    add_arguments(p)
    assert run(p.parse_args([str(run_dir), "--out", str(out), "--steps", "2", *extra])) == 0
    return dict(json.loads((out / "generation.json").read_text()), _dir=str(out))


@pytest.fixture(scope="module")
def edit_run(tmp_path_factory, senorita_demo_dataset, tiny_models):
    d = tmp_path_factory.mktemp("gen_edit")
    run_dir = _train(senorita_demo_dataset, tiny_models["wan"], d / "runs")
    return _generate(run_dir, d / "gen", "--dataset", str(senorita_demo_dataset), "--dino", tiny_models["dinov2"])


def test_edit_turns_retrieve_earlier_turns_recent_first(edit_run, senorita_demo_dataset):
    from training.data import open_dataset

    rec = edit_run
    src = next(s for s in open_dataset(senorita_demo_dataset) if "source.mp4" in s)["source.mp4"]
    frames = read_frames(Path(rec["_dir"]) / "video.mp4")
    assert frames.shape == (len(src), 32, 32, 3) == (rec["frames"], *rec["size"], 3)
    turns = rec["steps"]
    assert len(turns) == -(-len(src) // 5) and [t["frames"] for t in turns] == rec["segments"]
    assert turns[0]["memory"] == []
    for i, t in enumerate(turns[1:], start=1):
        assert t["memory"][0] == i - 1  # memory-v2v Alg. 2: the most recent turn always first
        assert set(t["memory"]) <= set(range(i)) and len(set(t["memory"])) == len(t["memory"]) <= 3
        assert len(t["similarity"]) == len(t["memory"]) and all(-1 <= s <= 1 for s in t["similarity"])
    assert rec["reverse_memory"] and "TINY" in rec["warning"]


@pytest.fixture(scope="module")
def camera_run(tmp_path_factory, multicam_demo_dataset, tiny_models):
    d = tmp_path_factory.mktemp("gen_cam")
    run_dir = _train(multicam_demo_dataset, tiny_models["wan"], d / "runs")
    return _generate(run_dir, d / "gen", "--dataset", str(multicam_demo_dataset))


def _axis_angle(a: np.ndarray, b: np.ndarray) -> float:
    """Degrees between two cameras' optical axes (OpenCV camera-to-world: +z forward)."""
    return float(np.degrees(np.arccos(np.clip(a[:3, 2] @ b[:3, 2], -1, 1))))


def test_camera_context_comes_from_earlier_overlapping_views(camera_run):
    rec = camera_run
    poses = np.asarray(rec["poses"])
    frames = read_frames(Path(rec["_dir"]) / "video.mp4")
    assert len(frames) == len(poses) == rec["frames"] and frames.shape[1:] == (32, 32, 3)
    assert rec["seed_frame"] and rec["segments"][0][0] == 1  # frame 0 is the given first view
    hfov = 2 * np.degrees(np.arctan(rec["camera_size"][1] / 2 / np.asarray(rec["intrinsics"])[0][0]))
    revisits = 0
    for step in rec["steps"]:
        start, end = step["frames"]
        ctx = step["context"]
        assert ctx[0] == start - 1 and all(j < start for j in ctx) and len(ctx) <= 20  # the past only
        assert all(s >= 0.05 for s in step["fov_scores"][1:])
        for j in ctx[1:]:  # each older context frame looks where some target frame looks
            assert min(_axis_angle(poses[j], poses[i]) for i in range(start, end)) < hfov
            revisits += _axis_angle(poses[j], poses[start]) < 1.0 and start - j > end - start
    assert revisits > 0  # the roam's second lap retrieves the first lap's views of the same place


@pytest.fixture(scope="module")
def story_run(tmp_path_factory, memento_demo_dataset, tiny_models):
    d = tmp_path_factory.mktemp("gen_story")
    run_dir = _train(memento_demo_dataset, tiny_models["wan"], d / "runs")
    return _generate(run_dir, d / "gen", "--dataset", str(memento_demo_dataset), "--length", "3")


# The session's Memento demo build (tracking, tiny Qwen3-VL captions) alone took 122 s here on a quiet machine and
# over 600 s at load average 25: these two tests carry it, so they get more than the default timeout.
@pytest.mark.timeout(1800)
def test_story_shots_use_a_bank_of_earlier_shots(story_run):
    rec = story_run
    n = len(rec["shot_captions"])
    frames = read_frames(Path(rec["_dir"]) / "video.mp4")
    assert n == 3 and len(frames) == 5 * n == rec["frames"]  # --length 3: the first three shots of the story
    assert rec["segments"] == [[5 * t, 5 * t + 5] for t in range(n)] and rec["shots"] == [5 * t for t in range(n)]
    assert rec["steps"][0]["bank_tokens"] == 0 and "bank_from_shots" not in rec["steps"][0]
    for t, step in enumerate(rec["steps"][1:], start=1):
        assert step["caption"] == rec["shot_captions"][t]
        assert step["bank_from_shots"] and set(step["bank_from_shots"]) <= set(range(t))
        kept = sum(step["story_path_shots"].values()) + sum(step["shot_path_shots"].values())
        assert kept == step["bank_tokens"] > 0


@pytest.mark.timeout(1800)
def test_evaluate_scores_what_generate_wrote(story_run, camera_run, tiny_models, tmp_path):
    from models.tiny import build_tiny
    from training.evaluate import add_arguments as eval_args
    from training.evaluate import run as evaluate
    from training.evaluate_models import content_hash

    clip = str(build_tiny("clip", tmp_path / "models"))
    p = argparse.ArgumentParser()
    eval_args(p)
    story_video = Path(story_run["_dir"]) / "video.mp4"
    args = p.parse_args(
        [str(story_video), "--dino", tiny_models["dinov2"], "--clip", clip, "--out", str(tmp_path / "s")]
    )
    assert evaluate(args) == 0
    m = json.loads((tmp_path / "s" / "metrics.json").read_text())
    assert {"inter_shot_subject", "inter_shot_clip", "semantic_consistency", "semantic_consistency_shot"} <= m.keys()
    assert m["generation"]["mode"] == "story" and "ViCLIP not given" in m["semantic_model"]
    assert m["models"]["subject_consistency"]["sha256"] == content_hash(tiny_models["dinov2"])
    assert m["models"]["background_consistency"]["tiny_random"] and "TINY RANDOM" in m["WARNING"]
    cam_video = Path(camera_run["_dir"]) / "video.mp4"
    assert evaluate(p.parse_args([str(cam_video), "--out", str(tmp_path / "c")])) == 0
    m = json.loads((tmp_path / "c" / "metrics.json").read_text())
    assert m["revisit_pairs"] > 0 and 0 < m["revisit_psnr"] <= 100  # Context-as-Memory history comparison



def test_videofov_context_on_a_turn_away_and_back_trajectory():
    """Context-as-Memory's test trajectory (§4.1): turn 180 degrees and come back, 10 degrees a frame."""
    from models.fov import intrinsics
    from training.generate_memory import context_for

    yaws = list(range(0, 181, 10)) + list(range(170, -1, -10))  # 37 frames
    poses = np.stack([yaw_pose(y) for y in yaws])
    k = intrinsics(52.67, 64, 64)
    start = 30  # target frames 30..33 look at yaw 60..30, first seen at frames 3..6
    ctx, info = context_for(poses, np.arange(start, start + 4), start, k, 64, 64)
    assert ctx[0] == start - 1 and all(j < start for j in ctx)
    old = ctx[1:]
    assert old and all(abs(yaws[j] - 45) < 52.67 for j in old)  # overlaps the target's views
    assert any(j < 10 for j in old)  # the first pass over the same place
    assert info["runs"] == 2 and info["covisible"] > len(ctx)  # one frame per run of co-visible frames
    ctx0, _ = context_for(poses, np.arange(0, 4), 0, k, 64, 64)
    assert ctx0 == []


def test_edit_memory_ranks_by_source_similarity_recent_first():
    from training.generate_memory import edit_memory

    descs = [np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.array([0.9, 0.1]), np.array([1.0, 0.05])]
    pick, info = edit_memory(descs, 2)
    assert pick == [2, 0]  # turn 2 is the most recent; then the most similar source (turn 0), not turn 1
    pick, _ = edit_memory(descs, 3)
    assert pick == [2, 0, 1] and len(info["similarity"]) == 2
    assert edit_memory(descs[:1], 3) == ([], {"memory": [], "similarity": []})


def test_missing_checkpoint_is_one_clear_error(tmp_path, capsys):
    from pipelines.commands.generate import run as command

    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args([str(tmp_path / "runs" / "nothing"), "--mode", "edit", "--out", str(tmp_path / "g")])
    assert command(args) == 2
    assert "no state.pt there" in capsys.readouterr().err and not (tmp_path / "g").exists()
