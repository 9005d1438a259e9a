"""Items 3 and 4 of the data-loss issue: a refresh key change reaches the data; retryable rejects are retried."""

from __future__ import annotations

import json
import multiprocessing as mp

import numpy as np

from pipelines.common import RunConfig, run_corpus, versions_of
from pipelines.dataset import DatasetFolder
from pipelines.verify import verify
from stages.base import Sample, is_retryable
from tests.spine.toy import DieAfter, FailOn, Split, Square, ToyConfig, toy_inputs
from training.data import open_dataset


def _cfg(out, **run):
    return ToyConfig(run=RunConfig(out=str(out), runner="sequential", progress=False, **run))


class Cube(Square):
    """Square's next version: same keys, new payload (n cubed)."""

    def process(self, batch: list[Sample]) -> list[Sample]:
        batch = super().process(batch)
        for s in batch:
            if not s.rejected:
                s.arrays["square"] = np.array([s.source["n"] ** 3], dtype=np.int64)
        return batch


def _payloads(out) -> dict[str, int]:
    return {s["__key__"]: int(s["square.npy"][0]) for s in open_dataset(str(out))}


def test_version_bump_replaces_old_samples_and_reader_sees_only_new(tmp_path):
    first = run_corpus("toy", _cfg(tmp_path, shard_max_samples=4), toy_inputs(range(1, 11)), [Square()])
    bump = run_corpus("toy", _cfg(tmp_path, shard_max_samples=4), toy_inputs(range(1, 11)),
                      [Cube(version="square/2")])
    assert bump.counts["processed"] == 10 and bump.counts["samples_written"] == 8 and bump.counts["retired"] == 8
    assert bump.counts["rebuilt_refresh"] == 10
    problems, stats = verify(tmp_path)
    assert problems == [] and stats["samples"] == 8 and stats["retired"] == 8 and stats["inputs"] == 10
    got = _payloads(tmp_path)
    assert len(got) == 8 and sorted(got.values()) == sorted(n ** 3 for n in range(1, 11) if n % 5)
    idx = json.loads((tmp_path / "dataset.json").read_text())
    old = [s for s in idx["shards"] if s["run"] == first.run]
    assert old and all(len(s["retired"]) == s["samples"] for s in old)  # kept on disk, retired in the index
    assert all((tmp_path / s["path"]).is_file() for s in old)
    live = DatasetFolder(tmp_path, "toy").live()
    assert {r["run"] for r in live.samples.values()} == {bump.run}  # the manifest says which run produced each
    assert {r["replaces"] for r in live.inputs.values()} == {"refresh"}
    again = run_corpus("toy", _cfg(tmp_path), toy_inputs(range(1, 11)), [Cube(version="square/2")])
    assert again.counts["skipped_done"] == 10 and again.counts["processed"] == 0


def test_output_setting_change_rebuilds_and_retires_newly_rejected(tmp_path):
    _, k5 = versions_of([Square(reject_every=5)])
    _, k4 = versions_of([Square(reject_every=4)])
    assert k5 != k4  # a threshold is part of the refresh key, not only the version
    run_corpus("toy", _cfg(tmp_path), toy_inputs(range(1, 11)), [Square(reject_every=5)])
    s = run_corpus("toy", _cfg(tmp_path), toy_inputs(range(1, 11)), [Square(reject_every=4)])
    assert s.counts["processed"] == 10 and s.counts["accepted"] == 8 and s.reasons["unlucky"] == 2
    problems, stats = verify(tmp_path)
    assert problems == [] and stats["samples"] == 8 and stats["rejected"] == 2
    assert sorted(_payloads(tmp_path).values()) == sorted(n * n for n in range(1, 11) if n % 4)


def test_version_bump_of_split_inputs_keeps_one_live_sample_per_key(tmp_path):
    run_corpus("toy", _cfg(tmp_path, shard_max_samples=2), toy_inputs([5, 7, 8]), [Split()])
    run_corpus("toy", _cfg(tmp_path, shard_max_samples=2), toy_inputs([5, 7, 8]), [Split(version="split/2")])
    problems, stats = verify(tmp_path)
    assert problems == [] and stats["samples"] == 7 and stats["retired"] == 7
    assert len(list(open_dataset(str(tmp_path), decode=False))) == 7


def test_verify_flags_stale_samples_left_live(tmp_path):
    run_corpus("toy", _cfg(tmp_path), toy_inputs(range(1, 5)), [Square()])
    run_corpus("toy", _cfg(tmp_path), toy_inputs(range(1, 5)), [Square(version="square/2")])
    p = tmp_path / "dataset.json"
    idx = json.loads(p.read_text())
    for s in idx["shards"]:
        s.pop("retired", None)  # what the old writer did: the new rows point elsewhere, the old samples stay live
    p.write_text(json.dumps(idx))
    problems, _ = verify(tmp_path)
    assert any("live in 2 shards" in x for x in problems) and any("stale" in x for x in problems)


def test_retryable_rejects_are_retried_on_the_next_run(tmp_path):
    fail = tmp_path / "fail.txt"
    fail.write_text("2\n3\n")
    stages = [Square(), FailOn(fail_file=str(fail))]
    out = tmp_path / "ds"
    s = run_corpus("toy", _cfg(out, max_retryable_fraction=0.5), toy_inputs(range(1, 11)), stages)
    assert s.reasons["stage_error"] == 2 and s.counts["retryable_failed"] == 2 and s.exit_code == 0
    assert is_retryable("stage_error") and not is_retryable("unlucky")
    no_retry = run_corpus("toy", _cfg(out, retry_failed=False), toy_inputs(range(1, 11)), stages)
    assert no_retry.counts["processed"] == 0
    fail.write_text("")  # the backend is back
    again = run_corpus("toy", _cfg(out), toy_inputs(range(1, 11)), stages)
    assert again.counts["processed"] == 2 and again.counts["accepted"] == 2 and again.counts["rebuilt_retry"] == 2
    problems, stats = verify(out)
    assert problems == [] and stats["accepted"] == 8 and stats["rejected"] == 2  # 5 and 10 stay rejected: permanent
    final = run_corpus("toy", _cfg(out), toy_inputs(range(1, 11)), stages)
    assert final.counts["processed"] == 0  # 'unlucky' is the input's fault: never retried


def test_too_many_retryable_failures_exit_non_zero_and_oom_is_its_own_reason(tmp_path):
    fail = tmp_path / "fail.txt"
    fail.write_text("1\n2\n3\n")
    s = run_corpus("toy", _cfg(tmp_path / "ds", max_retryable_fraction=0.2), toy_inputs(range(1, 11)),
                   [FailOn(fail_file=str(fail), error="MemoryError")])
    assert s.reasons["out_of_memory"] == 3 and s.exit_code == 3
    ok = run_corpus("toy", _cfg(tmp_path / "ds2", max_retryable_fraction=0.5), toy_inputs(range(1, 11)),
                    [FailOn(fail_file=str(fail))])
    assert ok.counts["retryable_failed"] == 3 and ok.exit_code == 0


def _bump_and_die(out):
    cfg = _cfg(out, shard_max_samples=2, commit_every_s=0.0)
    run_corpus("toy", cfg, toy_inputs(range(1, 21)), [Split(version="split/2"), DieAfter(at=13)])


def test_version_bump_killed_mid_run_then_resumed_leaves_nothing_stale(tmp_path):
    cfg = _cfg(tmp_path, shard_max_samples=2, commit_every_s=0.0)
    first = run_corpus("toy", cfg, toy_inputs(range(1, 21)), [Split(), DieAfter()])
    p = mp.get_context("fork").Process(target=_bump_and_die, args=(tmp_path,))
    p.start()
    p.join(60)
    assert p.exitcode == 9
    s = run_corpus("toy", cfg, toy_inputs(range(1, 21)), [Split(version="split/2"), DieAfter()])
    assert s.counts["skipped_done"] > 0 and s.counts["processed"] < 20  # the killed run's commits count
    problems, stats = verify(tmp_path)
    assert problems == [] and stats["samples"] == first.counts["samples_written"]
    assert stats["retired"] == first.counts["samples_written"]  # every v1 sample replaced exactly once
