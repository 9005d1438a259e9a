"""Item 5 of the data-loss issue: damage is found (checksums), repaired, and rebuilt by the next run."""

from __future__ import annotations

import json
import tarfile

from pipelines.cli import main as cli
from pipelines.common import RunConfig, run_corpus
from pipelines.verify import verify
from tests.spine.toy import Split, Square, ToyConfig, toy_inputs
from training.data import open_dataset


def _cfg(out, **run):
    return ToyConfig(run=RunConfig(out=str(out), runner="sequential", progress=False, **run))


def _build(out, ns=range(1, 11), stages=None):
    return run_corpus("toy", _cfg(out, shard_max_samples=4), toy_inputs(ns), stages or [Square()])


def test_truncated_shard_is_rebuilt_by_a_rerun(tmp_path):
    s = _build(tmp_path)
    shard = tmp_path / s.shards[0]
    shard.write_bytes(shard.read_bytes()[:1500])
    assert any("truncated" in p for p in verify(tmp_path)[0])
    again = _build(tmp_path)
    assert again.counts["rebuilt_repair"] == 4 and again.counts["samples_written"] == 4
    problems, stats = verify(tmp_path)
    assert problems == [] and stats["samples"] == 8
    idx = json.loads((tmp_path / "dataset.json").read_text())
    assert next(x for x in idx["shards"] if x["path"] == s.shards[0])["damaged"].startswith("shard is 1500 bytes")
    assert len(list(open_dataset(str(tmp_path), decode=False))) == 8  # the reader skips the damaged shard


def test_deleted_shard_is_rebuilt_by_a_rerun(tmp_path):
    s = _build(tmp_path, stages=[Split()])
    (tmp_path / s.shards[1]).unlink()
    again = _build(tmp_path, stages=[Split()])
    assert again.counts["rebuilt_repair"] >= 1 and again.counts["deduplicated"] >= 1  # intact parts are kept
    problems, stats = verify(tmp_path)
    assert problems == [] and stats["samples"] == s.counts["samples_written"]


def test_deleted_manifest_part_is_restored_and_runs_go_on(tmp_path):
    s = _build(tmp_path, stages=[Split()])
    before = verify(tmp_path)[1]
    idx = json.loads((tmp_path / "dataset.json").read_text())
    for t in ("samples", "inputs", "rejects"):
        rel = next(m[t] for m in idx["manifests"] if m.get(t) and m["run"] == s.run)
        (tmp_path / rel).unlink()
        assert any("listed file missing" in p for p in verify(tmp_path)[0])
        assert cli(["repair", str(tmp_path)]) == 0
        problems, stats = verify(tmp_path)
        assert problems == [] and stats == before, rel
    again = _build(tmp_path, stages=[Split()])  # once crashed on the missing part; now nothing to do
    assert again.counts["processed"] == 0


def test_zeroed_payload_is_caught_by_checksums_not_by_quick_and_repaired(tmp_path, capsys):
    s = _build(tmp_path)
    shard = tmp_path / s.shards[0]
    with tarfile.open(shard) as tar:
        m = next(m for m in tar.getmembers() if m.name.endswith(".square.npy"))
    data = bytearray(shard.read_bytes())
    data[m.offset_data + 128: m.offset_data + m.size] = bytes(m.size - 128)  # zero the array's payload bytes
    shard.write_bytes(bytes(data))
    bad_key = m.name.split(".", 1)[0]
    assert verify(tmp_path, quick=True)[0] == []  # structure and sizes are intact
    problems, _ = verify(tmp_path)
    assert problems == [f"sample {bad_key} in {s.shards[0]}: member square.npy: checksum mismatch (memcorpus repair)"]
    assert cli(["verify", str(tmp_path), "--quick"]) == 0 and cli(["verify", str(tmp_path)]) == 1
    assert cli(["repair", str(tmp_path), "--dry-run"]) == 0 and verify(tmp_path)[0] == problems
    capsys.readouterr()
    assert cli(["repair", str(tmp_path)]) == 0
    assert "1 input(s) queued for rebuild" in capsys.readouterr().out
    assert any("queued for rebuild" in p for p in verify(tmp_path)[0])
    again = _build(tmp_path)
    assert again.counts["processed"] == 1 and again.counts["samples_written"] == 1
    problems, stats = verify(tmp_path)
    assert problems == [] and stats["samples"] == 8 and stats["checksummed"] == 8
    assert bad_key in {x["__key__"] for x in open_dataset(str(tmp_path), decode=False)}
