"""The manifest layout (pipelines/manifest.py): one folder per table, which pandas, Ray Data and DuckDB read as
exactly that table, the same during a run, after a crash and after commit; memcorpus/1 folders are read as
they are, then migrated by `memcorpus repair` or the next build."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
from collections import Counter
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow.dataset as pads
import pytest

from pipelines import manifest
from pipelines.cli import main as cli
from pipelines.common import RunConfig, run_corpus
from pipelines.dataset import TABLES, DatasetFolder
from pipelines.storage import Storage
from pipelines.verify import verify
from tests.spine.toy import DieAfter, Split, Square, ToyConfig, toy_inputs
from training.data import open_dataset

OLD = Path(__file__).resolve().parents[1] / "data" / "memcorpus1_toy"  # written by the real memcorpus/1 code
IDENT = {"inputs": "id", "samples": "key", "rejects": "key"}


def _build(out, inputs, stages, **run):
    cfg = ToyConfig(run=RunConfig(out=str(out), runner="sequential", progress=False, **run))
    return run_corpus("toy", cfg, inputs, stages)


def _rows(rows) -> Counter:
    return Counter((r[IDENT[t]], r["run"], r["commit"]) for t, rs in rows.items() for r in rs)


def _index_rows(root, table) -> Counter:
    return _rows({table: DatasetFolder(root, "toy").rows(table)})


def _pandas_rows(root, table) -> Counter:
    return _rows({table: pd.read_parquet(Path(root) / "manifest" / table).to_dict("records")})


def _glob_files(root, table) -> set[str]:
    """The files pyarrow's discovery (pandas, and Ray's own listing, skip the same '.'/'_' names) reads."""
    d = Path(root) / "manifest" / table
    return {Path(f).name for f in pads.dataset(str(d), format="parquet").files} if d.is_dir() else set()


def _listed_on_disk(root, table) -> set[str]:
    idx = json.loads((Path(root) / "dataset.json").read_text()) if (Path(root) / "dataset.json").exists() else {}
    return {m[table].rsplit("/", 1)[1] for m in idx.get("manifests", []) if m.get(table)}


def test_each_table_folder_is_one_table_for_pandas_and_duckdb(tmp_path):
    _build(tmp_path, toy_inputs([5, 7, 8, 10]), [Split()], shard_max_samples=3)
    s = _build(tmp_path, toy_inputs([5, 7, 8, 10, 11, 13]), [Split()], shard_max_samples=3)
    assert s.counts["skipped_done"] == 4 and s.counts["processed"] == 2
    for t in TABLES:
        want = _index_rows(tmp_path, t)
        assert want and _pandas_rows(tmp_path, t) == want, t
        got = duckdb.sql(f"SELECT {IDENT[t]}, run, \"commit\" FROM read_parquet('{tmp_path}/manifest/{t}/*.parquet')")
        assert Counter(got.fetchall()) == want, t
    # The old layout's bug: one glob over the inputs folder read inputs and samples together.
    assert len(pd.read_parquet(tmp_path / "manifest" / "inputs")) == 6


@pytest.mark.ray
def test_ray_data_reads_each_table_folder(tmp_path):
    import ray

    _build(tmp_path, toy_inputs(range(1, 11)), [Split()], shard_max_samples=3)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        for t in TABLES:
            got = ray.data.read_parquet(str(tmp_path / "manifest" / t)).take_all()
            assert got and _rows({t: got}) == _index_rows(tmp_path, t), t
    finally:
        ray.shutdown()


def test_glob_readers_never_see_a_part_the_index_does_not_list(tmp_path, monkeypatch):
    """At every file operation of the commit protocol, what a glob reader reads is listed by dataset.json."""
    checks = Counter()

    def check(when):
        for t in TABLES:
            visible = _glob_files(tmp_path, t)
            assert visible <= _listed_on_disk(tmp_path, t), (when, t, visible - _listed_on_disk(tmp_path, t))
        checks[when] += 1

    def watch(name):
        orig = getattr(Storage, name)

        def wrapped(self, *a, **kw):
            check(f"before {name}")
            out = orig(self, *a, **kw)
            check(f"after {name}")
            return out

        monkeypatch.setattr(Storage, name, wrapped)

    for name in ("write_atomic", "publish", "remove"):
        watch(name)
    _build(tmp_path, toy_inputs(range(1, 13)), [Split()], shard_max_samples=2, commit_every_s=0.0)
    _build(tmp_path, toy_inputs(range(1, 13)), [Split(), Square(version="square/2")], shard_max_samples=2)
    assert checks["after publish"] > 10  # the protocol really ran through the watched operations
    for t in TABLES:
        assert _glob_files(tmp_path, t) == _listed_on_disk(tmp_path, t)
        assert _pandas_rows(tmp_path, t) == _index_rows(tmp_path, t)


def _dies_between_index_and_rename(out):
    real, calls = manifest.publish, Counter()

    def publish(store, rels):
        calls["n"] += 1
        if calls["n"] == 4:  # the 4th rename: after dataset.json listed that commit's parts
            os._exit(9)
        return real(store, rels)

    manifest.publish = publish
    _build(out, toy_inputs(range(1, 21)), [Split()], shard_max_samples=2, commit_every_s=0.0)


def test_crash_between_index_write_and_rename_is_rolled_forward(tmp_path):
    p = mp.get_context("fork").Process(target=_dies_between_index_and_rename, args=(tmp_path,))
    p.start()
    p.join(60)
    assert p.exitcode == 9
    idx = json.loads((tmp_path / "dataset.json").read_text())
    pending = [m[t] for m in idx["manifests"] for t in TABLES if m.get(t) and not (tmp_path / m[t]).exists()]
    assert pending and all((tmp_path / manifest.pending_rel(rel)).is_file() for rel in pending)
    # Index readers read the committed rows (pending ones included); glob readers miss them but see nothing extra.
    for t in TABLES:
        assert _pandas_rows(tmp_path, t) <= _index_rows(tmp_path, t)
    assert sum(_index_rows(tmp_path, "inputs").values()) > sum(_pandas_rows(tmp_path, "inputs").values())
    assert any("pending name" in p for p in verify(tmp_path)[0])
    s = _build(tmp_path, toy_inputs(range(1, 21)), [Split()], shard_max_samples=2)
    assert s.counts["skipped_done"] > 0
    assert verify(tmp_path)[0] == []
    for t in TABLES:
        assert _pandas_rows(tmp_path, t) == _index_rows(tmp_path, t)


def _crash(out):
    _build(out, toy_inputs(range(1, 31)), [Split(), DieAfter(at=17)], shard_max_samples=2, commit_every_s=0.0)


def test_after_a_crash_glob_readers_see_exactly_the_committed_rows(tmp_path):
    p = mp.get_context("fork").Process(target=_crash, args=(tmp_path,))
    p.start()
    p.join(60)
    assert p.exitcode == 9
    for t in ("inputs", "samples"):
        assert _pandas_rows(tmp_path, t) == _index_rows(tmp_path, t) and _index_rows(tmp_path, t)
    _build(tmp_path, toy_inputs(range(1, 31)), [Split(), DieAfter()], shard_max_samples=2)
    problems, stats = verify(tmp_path)
    assert problems == [] and stats["inputs"] == 30
    assert sum(_pandas_rows(tmp_path, "inputs").values()) == 30  # nothing doubled by the resumed run


def _live_view():
    """The documented queries, run as a user would: in the dataset folder."""
    with duckdb.connect() as con:
        inputs = {r[0]: (r[1], r[2]) for r in con.execute(
            f"SELECT id, status, versions_key FROM ({manifest.LIVE_INPUTS_SQL})").fetchall()}
        samples = set(con.execute(f"SELECT key, shard FROM ({manifest.LIVE_SAMPLES_SQL})").fetchall())
    return inputs, samples


def test_documented_live_view_for_glob_readers_matches_the_index(tmp_path, monkeypatch):
    _build(tmp_path, toy_inputs(range(1, 11)), [Split()], shard_max_samples=3)
    _build(tmp_path, toy_inputs(range(1, 7)), [Split(version="split/2")], shard_max_samples=3)  # retires samples
    live = DatasetFolder(tmp_path, "toy").live()
    monkeypatch.chdir(tmp_path)
    inputs, samples = _live_view()
    assert inputs == {i: (r["status"], r["versions_key"]) for i, r in live.inputs.items()}
    assert samples == {(k, r["shard"]) for k, r in live.samples.items()}
    everything = len(pd.read_parquet(tmp_path / "manifest" / "samples"))
    assert everything > len(samples) > 0  # the plain glob also holds retired rows: the view is needed
    card = (tmp_path / "README.md").read_text()  # the dataset card tells a reader these same queries
    assert manifest.LIVE_INPUTS_SQL in card and manifest.LIVE_SAMPLES_SQL in card


def _old_copy(tmp_path) -> Path:
    root = tmp_path / "old"
    shutil.copytree(OLD, root)
    return root


def _state(root):
    live = DatasetFolder(root, "toy").live()
    return ({i: (r["status"], r["versions_key"], r["run"]) for i, r in live.inputs.items()},
            {k: r["shard"] for k, r in live.samples.items()}, {s["__key__"] for s in open_dataset(root, decode=False)})


def test_old_format_folder_is_read_then_migrated_by_repair(tmp_path, capsys):
    root = _old_copy(tmp_path)
    assert json.loads((root / "dataset.json").read_text())["format"] == "memcorpus/1"
    before = _state(root)
    assert before[0] and set(before[1]) == before[2]
    problems = verify(root)[0]
    assert len(problems) == 1 and "never finished" in problems[0]  # the crashed run, nothing else
    assert cli(["repair", str(root)]) == 0
    assert "moved the manifest" in capsys.readouterr().out
    assert json.loads((root / "dataset.json").read_text())["format"] == manifest.FORMAT
    assert _state(root) == before
    assert sorted(p.name for p in (root / "manifest").iterdir()) == ["inputs", "rejects", "samples"]
    assert not (root / "rejects").exists()
    for t in TABLES:
        assert _pandas_rows(root, t) == _index_rows(root, t)
    s = _build(root, toy_inputs(range(9, 21)), [Square(), DieAfter()], shard_max_samples=2)  # resumes the crash
    assert s.counts["skipped_done"] > 0
    problems, stats = verify(root)
    assert problems == [] and stats["inputs"] == 20


def test_a_build_migrates_an_old_folder_itself(tmp_path):
    root = _old_copy(tmp_path)
    before = _state(root)
    s = _build(root, toy_inputs(range(1, 9)), [Square()], shard_max_samples=4)
    assert s.counts["processed"] == 4  # inputs 1-4 are live at square/2: this run's square/1 rebuilds them
    assert json.loads((root / "dataset.json").read_text())["format"] == manifest.FORMAT
    assert verify(root)[0] == []
    after = DatasetFolder(root, "toy").live().inputs
    assert set(after) == set(before[0])
    kept = {i: r["run"] for i, r in after.items() if r["run"] != s.run}
    assert len(kept) == len(after) - 4 and kept == {i: before[0][i][2] for i in kept}
    for t in TABLES:
        assert _pandas_rows(root, t) == _index_rows(root, t)


def test_unknown_format_is_a_clear_error(tmp_path):
    _build(tmp_path, toy_inputs(range(1, 4)), [Square()])
    idx = json.loads((tmp_path / "dataset.json").read_text())
    (tmp_path / "dataset.json").write_text(json.dumps({**idx, "format": "memcorpus/9"}))
    with pytest.raises(ValueError, match="memcorpus/9.*newer memcorpus"):
        DatasetFolder(tmp_path, "toy").index()
    assert "memcorpus/9" in verify(tmp_path)[0][0]
