"""Sequence packing: the paper's rules (30-60 s, every shot > 5 s) and the reject reasons."""

from __future__ import annotations

import pytest

from pipelines.demo_memento import memento_film
from stages.base import Sample
from stages.sequences import SplitSequences, frame_clock, pack_sequences


def shots_of(seconds: list[float], fps: float = 24.0) -> list[list[int]]:
    out, a = [], 0
    for s in seconds:
        n = round(s * fps)
        out.append([a, a + n - 1])
        a += n
    return out


def footage(seconds: list[float], fps: float = 24.0, times: list[float] | None = None) -> Sample:
    shots = shots_of(seconds, fps)
    s = Sample(id="f", source={"path": "unused"})
    s.meta = {"fps": fps, "frames": shots[-1][1] + 1, "size": [320, 180], "shots": shots}
    if times is not None:
        s.scratch["times"] = times
    return s


def test_paper_numbers_on_the_demo_footage_truth():
    film = memento_film(fps=24.0)  # full-length durations; only the shot list is needed
    shots = shots_of([sh.frames / 24.0 for sh in film.shots])
    out = SplitSequences()([footage([sh.frames / 24.0 for sh in film.shots])])
    assert len(out) == 2 and all(not s.rejected for s in out)
    for s in out:
        a, b = s.meta["source_frames"]
        assert 30.0 <= (b - a) / 24.0 <= 60.0
        assert all((y - x + 1) / 24.0 > 5.0 for x, y in s.meta["shots"])
        assert s.meta["shots"][0][0] == 0 and s.meta["shots"][-1][1] == b - a - 1
        assert [[x + a, y + a] for x, y in s.meta["shots"]] == [sh for sh in shots if a <= sh[0] < b]
    assert [s.part for s in out] == [(0, 2), (1, 2)] and out[0].id == "f_seq000" and out[1].input_id == "f"


def test_long_run_is_split_and_short_shots_break_runs():
    # 12 shots of 8 s = 96 s in one run -> 56 s + 40 s; the 3 s shot breaks the second run.
    seqs, stats = pack_sequences(shots_of([8] * 12 + [3] + [8] * 3), frame_clock(None, 0, 24.0), 30, 60, 5, 2, 16)
    assert [len(s) for s in seqs] == [7, 5]
    assert stats == {"shots": 16, "short_shots": 1, "runs": 2, "runs_too_short": 1}


def test_shot_of_exactly_five_seconds_is_not_enough():
    seqs, _ = pack_sequences(shots_of([5.0] * 8), frame_clock(None, 0, 24.0), 30, 60, 5, 2, 16)
    assert seqs == []


@pytest.mark.parametrize(
    "seconds, reason",
    [([10, 10], "footage_too_short"), ([2.5] * 14, "all_shots_too_short"), ([8, 8, 2, 8, 8, 2, 8], "no_long_enough_shot_run")],
)
def test_reject_reasons(seconds, reason):
    out = SplitSequences()([footage(seconds)])
    assert len(out) == 1 and out[0].rejected and out[0].reason == reason


def test_variable_frame_rate_uses_timestamps():
    # 40 frames per shot, nominally 24 fps (1.67 s) but every frame really lasts 0.15 s (6 s per shot).
    shots = [[i * 40, i * 40 + 39] for i in range(6)]
    s = Sample(id="v", source={"path": "unused"})
    s.meta = {"fps": 24.0, "frames": 240, "size": [320, 180], "shots": shots}
    s.scratch["times"] = [i * 0.15 for i in range(240)]
    out = SplitSequences()([s])
    assert len(out) == 1 and not out[0].rejected
    assert out[0].meta["duration"] == pytest.approx(36.0, abs=0.2)


def test_config_errors_name_the_field():
    with pytest.raises(ValueError, match="min_seconds"):
        SplitSequences(min_seconds=70, max_seconds=60)
