"""The dataset folder contract: exactly once, refresh, resume after a crash, verify catches damage."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing as mp
import tarfile

import pytest

from pipelines.common import RunConfig, run_corpus
from pipelines.dataset import DatasetFolder
from pipelines.verify import verify
from tests.spine.toy import DieAfter, Split, Square, ToyConfig, toy_inputs


def _cfg(out, **run):
    return ToyConfig(run=RunConfig(out=str(out), runner="sequential", progress=False, **run))


def test_run_writes_every_input_once_and_verifies(tmp_path):
    s = run_corpus("toy", _cfg(tmp_path, shard_max_samples=4), toy_inputs(range(1, 21)), [Square()])
    assert s.counts["accepted"] == 16 and s.counts["rejected"] == 4
    assert s.reasons == {"unlucky": 4}
    assert len(s.shards) == 4  # 16 samples / 4 per shard
    problems, stats = verify(tmp_path)
    assert problems == [] and stats["inputs"] == 20 and stats["samples"] == 16
    idx = json.loads((tmp_path / "dataset.json").read_text())
    # One part per commit and table, in the table's folder under its final name; nothing else there.
    for t in ("inputs", "samples", "rejects"):
        listed = sorted(m[t] for m in idx["manifests"] if m.get(t))
        assert listed and sorted(f"manifest/{t}/{p.name}" for p in (tmp_path / "manifest" / t).iterdir()) == listed
    assert [m["commit"] for m in idx["manifests"]] == list(range(len(idx["manifests"])))
    assert sorted(p.name for p in (tmp_path / "manifest").iterdir()) == ["inputs", "rejects", "samples"]
    with tarfile.open(tmp_path / s.shards[0]) as tar:
        names = tar.getnames()
    assert all(n.count(".") >= 1 and "/" not in n for n in names)
    assert any(n.endswith(".square.npy") for n in names)


def test_refresh_adds_nothing_then_only_new_inputs(tmp_path):
    cfg = _cfg(tmp_path, shard_max_samples=4)
    run_corpus("toy", cfg, toy_inputs(range(1, 11)), [Square()])
    again = run_corpus("toy", cfg, toy_inputs(range(1, 11)), [Square()])
    assert again.counts["skipped_done"] == 10 and again.counts["processed"] == 0 and again.shards == []
    more = run_corpus("toy", cfg, toy_inputs(range(1, 16)), [Square()])
    assert more.counts["skipped_done"] == 10 and more.counts["processed"] == 5
    assert more.counts["accepted"] == 4 and more.counts["rejected"] == 1
    problems, stats = verify(tmp_path)
    assert problems == [] and stats["inputs"] == 15 and stats["runs"] == 3


def test_new_stage_version_rebuilds(tmp_path):
    cfg = _cfg(tmp_path)
    run_corpus("toy", cfg, toy_inputs(range(1, 5)), [Square()])
    s = run_corpus("toy", cfg, toy_inputs(range(1, 5)), [Square(version="square/2")])
    assert s.counts["skipped_done"] == 0 and s.counts["processed"] == 4


def test_duplicate_inputs_get_their_own_reject_row(tmp_path):
    ins = toy_inputs([1, 2, 3])
    dup = dataclasses.replace(ins[0], source={"n": 1, "name": "copy"})
    s = run_corpus("toy", _cfg(tmp_path), [*ins, dup], [Square()])
    assert s.counts["processed"] == 4 and s.reasons["duplicate_input"] == 1
    assert verify(tmp_path)[0] == []


def test_split_inputs_are_one_row_each(tmp_path):
    s = run_corpus("toy", _cfg(tmp_path, shard_max_samples=3), toy_inputs([5, 7, 8]), [Split()])
    # 5 -> 3 parts, 7 -> 2 parts (1 rejected), 8 -> 3 parts
    assert s.counts["accepted"] == 3 and s.counts["samples_written"] == 7
    rows = {r["id"]: r for r in DatasetFolder(tmp_path, "toy").rows("inputs")}
    assert sorted(len(r["samples"]) for r in rows.values()) == [1, 3, 3]
    assert verify(tmp_path)[0] == []


def _crashing_run(out, die_at):
    cfg = _cfg(out, shard_max_samples=2, commit_every_s=0.0)
    run_corpus("toy", cfg, toy_inputs(range(1, 31)), [Split(), DieAfter(at=die_at)])


def test_crash_mid_run_resumes_without_duplicates(tmp_path):
    p = mp.get_context("fork").Process(target=_crashing_run, args=(tmp_path, 17))
    p.start()
    p.join(60)
    assert p.exitcode == 9  # died like a SIGKILLed driver
    idx = json.loads((tmp_path / "dataset.json").read_text())
    assert idx["shards"], "commits before the crash must have been listed"
    crashed = idx["runs"][0]["run"]
    assert idx["runs"][0]["complete"] is False  # the run registered itself before writing
    # debris of the crashed run (our naming pattern, a run the index names) goes; a stranger's file stays
    (tmp_path / "shards" / f"toy-{crashed}-000999.tar.tmp").write_bytes(b"half a shard")
    (tmp_path / "shards" / "toy-junk-000000.tar.tmp").write_bytes(b"not ours")
    # the same command again (same stages, so the same versions); this time nothing dies
    s = run_corpus("toy", _cfg(tmp_path, shard_max_samples=2), toy_inputs(range(1, 31)), [Split(), DieAfter()])
    assert not (tmp_path / "shards" / f"toy-{crashed}-000999.tar.tmp").exists()
    assert (tmp_path / "shards" / "toy-junk-000000.tar.tmp").read_bytes() == b"not ours"
    assert s.counts["skipped_done"] > 0
    problems, stats = verify(tmp_path)
    assert problems == []
    assert stats["inputs"] == 30
    rows = DatasetFolder(tmp_path, "toy").rows("inputs")
    assert len({r["id"] for r in rows}) == 30


def test_verify_catches_damage(tmp_path):
    s = run_corpus("toy", _cfg(tmp_path, shard_max_samples=4), toy_inputs(range(1, 9)), [Square()])
    assert verify(tmp_path)[0] == []
    shard = tmp_path / s.shards[0]
    shard.write_bytes(shard.read_bytes()[:700])  # truncate
    problems, _ = verify(tmp_path)
    assert any("truncated" in p and s.shards[0] in p for p in problems)  # the size recorded at commit differs


def test_config_rejects_unknown_runner(tmp_path):
    with pytest.raises(ValueError, match="run.runner"):
        RunConfig(out=str(tmp_path), runner="spark")


def test_run_record_never_holds_secrets(tmp_path):
    from dataclasses import dataclass, field

    @dataclass(frozen=True)
    class WithKey:
        api_key: str = "sk-very-secret"
        endpoint: str = "http://127.0.0.1:8000"
        run: RunConfig = field(default_factory=lambda: RunConfig(out=str(tmp_path), runner="sequential",
                                                                 progress=False))

    s = run_corpus("toy", WithKey(), toy_inputs([1, 2]), [Square()])
    text = (tmp_path / "runs" / f"{s.run}.json").read_text()
    assert "sk-very-secret" not in text and "<redacted>" in text and "127.0.0.1:8000" in text
