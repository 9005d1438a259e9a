"""Shards written by write tasks, committed by the driver from small rows: a retried write task's first
attempt is never listed and recovery deletes it; split inputs and committed keys work as on the driver."""

from __future__ import annotations

import copy
import json

from pipelines.dataset import DatasetFolder
from pipelines.datasink import ShardSpec, write_samples
from pipelines.live import refresh_key
from pipelines.verify import verify
from pipelines.writer import RunWriter
from tests.spine.toy import Split, Square, toy_inputs


def _made(ns, stages):
    samples = toy_inputs(ns)
    for st in stages:
        samples = st(samples)
    return samples


def _record(run, writer, processed):
    return {"run": run, "complete": True, "counts": {"processed": processed, **writer.counts}}


def _start(tmp_path, stages, run):
    folder = DatasetFolder(tmp_path, "toy")
    folder.recover()
    folder.begin_run(run)
    versions, vkey = refresh_key(stages)
    live = folder.live()
    writer = RunWriter(folder, run, versions, vkey, {}, max_samples=4)
    spec = ShardSpec(str(tmp_path), "toy", run, vkey, max_samples=4, max_bytes=1 << 20)
    return folder, writer, spec, live.committed_for(vkey)


def test_retried_write_task_leaves_an_orphan_that_is_never_listed_and_recovery_deletes(tmp_path):
    stages = [Square(), Split()]
    folder, writer, spec, _ = _start(tmp_path, stages, "20260101T000000-aaaa")
    samples = _made(range(1, 9), stages)
    lost = write_samples(copy.deepcopy(samples), spec, {})  # the attempt whose worker died before returning
    retry = write_samples(samples, spec, {})  # Ray runs the task again: same samples, new shard names
    assert {s["path"] for s in lost["shards"]}.isdisjoint(s["path"] for s in retry["shards"])
    writer.take(retry["rows"], retry["shards"])
    writer.close()
    folder.finish_run("20260101T000000-aaaa", _record("20260101T000000-aaaa", writer, 8))
    idx = json.loads((tmp_path / "dataset.json").read_text())
    listed = {s["path"] for s in idx["shards"]}
    assert listed == {s["path"] for s in retry["shards"]}
    assert all((tmp_path / s["path"]).exists() for s in lost["shards"])  # written, never listed
    removed = DatasetFolder(tmp_path, "toy").recover()
    assert sorted(removed) == sorted(s["path"] for s in lost["shards"])
    problems, stats = verify(tmp_path)
    assert problems == [] and stats["inputs"] == 8
    assert stats["samples"] == sum(r["status"] == "written" for r in retry["rows"])


def test_split_input_rows_from_several_tasks_make_one_input_row_and_committed_keys_are_not_rewritten(tmp_path):
    stages = [Square(), Split()]
    folder, writer, spec, _ = _start(tmp_path, stages, "20260101T000000-bbbb")
    samples = _made([5, 7, 8], stages)  # 3 parts, 2 parts (odd part rejected), 3 parts
    first, second = write_samples(samples[:4], spec, {}), write_samples(samples[4:], spec, {})
    writer.take(first["rows"], first["shards"])
    assert writer.counts["accepted"] + writer.counts["rejected"] < 3  # an input is open until all its parts came
    writer.take(second["rows"], second["shards"])
    writer.close()
    folder.finish_run("20260101T000000-bbbb", _record("20260101T000000-bbbb", writer, 3))
    inputs = DatasetFolder(tmp_path, "toy").rows("inputs")
    # 5: rejected by Square; 7: 2 parts, the odd one rejected; 8: 3 parts
    assert sorted(len(r["samples"]) for r in inputs) == [0, 1, 3]
    assert verify(tmp_path)[0] == []

    # A crash after the shards were committed but before the input rows: the keys are committed, so a rerun's
    # write task reports them as already there instead of writing them again.
    folder, writer, spec, committed = _start(tmp_path, [Square(), Split()], "20260101T000000-cccc")
    again = write_samples(_made([5, 7, 8], stages), spec, committed)
    assert again["shards"] == [] and {r["status"] for r in again["rows"]} <= {"deduplicated", "rejected"}
