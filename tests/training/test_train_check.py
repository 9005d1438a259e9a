"""`memcorpus train-check` on each real demo build: every conditioning input reaches N examples."""

from __future__ import annotations

import json

import pytest

from pipelines.cli import main

N = 4
KEYS = {
    "senorita_demo_dataset": ("senorita_long", ["instruction", "source_video", "target_video", "memory_videos"]),
    "memento_demo_dataset": ("memento", ["story", "shot_captions", "memory_shots", "recon_frames"]),
    "multicam_demo_dataset": (["multicam", "roam"], ["camera", "user_video", "memory_videos", "context_frames"]),
}


def _check(capsys, root, *extra) -> tuple[int, dict]:
    capsys.readouterr()
    code = main(["train-check", str(root), "--n", str(N), "--json", "--size", "48", "64", *extra])
    return code, json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("fixture", sorted(KEYS))
def test_train_check_reports_every_key_at_n(fixture, request, capsys):
    corpus, keys = KEYS[fixture]
    code, res = _check(capsys, request.getfixturevalue(fixture))
    assert res["corpus"] == corpus
    assert res["conditioning"] == dict.fromkeys(keys, N) and code == 0
    assert res["examples"] == N and res["examples_per_kind"] == dict.fromkeys(corpus if isinstance(corpus, list)
                                                                             else [corpus], N)
    assert res["samples_skipped"] == 0 and res["examples_per_s"] > 0


def test_train_check_exits_1_when_a_conditioning_input_is_missing(senorita_demo_dataset, capsys):
    code, res = _check(capsys, senorita_demo_dataset, "--memory-mode", "none")
    assert code == 1 and res["conditioning"]["memory_videos"] == 0 and res["conditioning"]["instruction"] == N
