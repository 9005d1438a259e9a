"""Items 1 and 2 of the data-loss issue: one build per folder, and recovery deletes only its own debris."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import time

import fsspec
import pytest

from pipelines.common import RunConfig, run_corpus
from pipelines.dataset import DatasetFolder
from pipelines.lock import LOCK_FILE, DatasetLock, DatasetLocked
from pipelines.storage import Storage
from pipelines.verify import verify
from tests.spine.toy import Slow, Square, ToyConfig, toy_inputs


def _cfg(out, **run):
    return ToyConfig(run=RunConfig(out=str(out), runner="sequential", progress=False, **run))


def _slow_build(out, q):
    try:
        s = run_corpus("toy", _cfg(out, shard_max_samples=3, commit_every_s=0.0), toy_inputs(range(1, 21)),
                       [Square(), Slow(seconds=0.1)])
        q.put(("ok", dict(s.counts)))
    except Exception as e:  # noqa: BLE001 - reported to the test
        q.put(("error", f"{type(e).__name__}: {e}"))


def _second_build(out, q):
    try:
        run_corpus("toy", _cfg(out), toy_inputs(range(1, 21)), [Square(), Slow(seconds=0.1)])
        q.put(("ok", None))
    except DatasetLocked as e:
        q.put(("locked", str(e)))


def test_concurrent_build_is_refused_naming_the_holder_and_the_first_completes(tmp_path):
    ctx = mp.get_context("fork")
    q1, q2 = ctx.Queue(), ctx.Queue()
    first = ctx.Process(target=_slow_build, args=(tmp_path, q1))
    first.start()
    deadline = time.time() + 60
    while time.time() < deadline and not (tmp_path / "dataset.json").exists():
        time.sleep(0.02)  # the first build registers itself before it writes any data
    holder = json.loads((tmp_path / LOCK_FILE).read_text())
    assert holder["pid"] == first.pid
    second = ctx.Process(target=_second_build, args=(tmp_path, q2))
    second.start()
    second.join(60)
    kind, msg = q2.get(timeout=5)
    assert kind == "locked" and f"pid {first.pid}" in msg and holder["run"] in msg
    first.join(120)
    kind, counts = q1.get(timeout=5)
    assert kind == "ok" and counts["accepted"] == 16 and counts["rejected"] == 4
    problems, stats = verify(tmp_path)
    assert problems == [] and stats["samples"] == 16 and stats["inputs"] == 20 and stats["runs"] == 1


def test_stale_lock_of_dead_owner_is_taken_over(tmp_path):
    def hold_and_die():
        DatasetLock(Storage(tmp_path), "dead-run").acquire()
        os._exit(9)  # dies holding the lock, like a SIGKILLed build

    p = mp.get_context("fork").Process(target=hold_and_die)
    p.start()
    p.join(30)
    assert json.loads((tmp_path / LOCK_FILE).read_text())["run"] == "dead-run"  # its owner text is still there
    s = run_corpus("toy", _cfg(tmp_path), toy_inputs(range(1, 6)), [Square()])
    assert s.counts["accepted"] == 4 and (tmp_path / LOCK_FILE).read_text() == ""  # released on exit


def test_lease_on_object_store_refuses_a_second_holder_until_it_expires():
    fs = fsspec.filesystem("memory")
    root = f"memory:///lease{os.getpid()}"
    try:
        a = DatasetLock(Storage(root), "run-a", lease_s=0.6).acquire(settle_s=0.01)
        with pytest.raises(DatasetLocked, match="run run-a"):
            DatasetLock(Storage(root), "run-b").acquire(settle_s=0.01)
        a._stop.set()  # the holder dies: no more heartbeats
        a._thread.join()
        time.sleep(0.7)
        b = DatasetLock(Storage(root), "run-b", lease_s=5).acquire(settle_s=0.01)
        b.release()
        assert not fs.exists(f"/lease{os.getpid()}/.memcorpus.lease.json")  # released: nobody holds it
    finally:
        if fs.exists(f"/lease{os.getpid()}"):
            fs.rm(f"/lease{os.getpid()}", recursive=True)


def test_lease_holder_that_lost_its_lease_stops_committing():
    root = f"memory:///lost{os.getpid()}"
    store = Storage(root)
    a = DatasetLock(store, "run-a", lease_s=0.3).acquire(settle_s=0.01)
    store.write_atomic(".memcorpus.lease.json", json.dumps({"owner": {"run": "run-b"}, "token": "x",
                                                             "expires": time.time() + 60}).encode())
    time.sleep(0.3)
    with pytest.raises(DatasetLocked, match="lease taken by run run-b"):
        a.check()
    a.release()
    assert fsspec.filesystem("memory").exists(f"/lost{os.getpid()}/.memcorpus.lease.json")  # not ours to delete
    fsspec.filesystem("memory").rm(f"/lost{os.getpid()}", recursive=True)


def test_atomic_writes_use_a_temporary_name_of_their_own(tmp_path, monkeypatch):
    names = []
    real = Storage.open_write
    monkeypatch.setattr(Storage, "open_write", lambda self, rel: names.append(rel) or real(self, rel))
    st = Storage(tmp_path)
    st.write_atomic("dataset.json", b"1")
    st.write_atomic("dataset.json", b"2")
    assert len(set(names)) == 2 and all(n.startswith(".tmp-dataset.json.") for n in names)


def test_existing_folder_without_index_is_refused_and_left_untouched(tmp_path):
    state = tmp_path / "runs" / "train" / "state.pt"
    state.parent.mkdir(parents=True)
    state.write_bytes(b"weights")
    with pytest.raises(ValueError, match="has content but no dataset.json"):
        run_corpus("toy", _cfg(tmp_path), toy_inputs(range(1, 4)), [Square()])
    assert state.read_bytes() == b"weights"
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_FILE, "runs"]  # nothing created, nothing deleted


def test_deleted_index_does_not_delete_the_corpus_and_force_new_keeps_files(tmp_path):
    s = run_corpus("toy", _cfg(tmp_path, shard_max_samples=4), toy_inputs(range(1, 11)), [Square()])
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file() and p.name != LOCK_FILE)
    (tmp_path / "dataset.json").unlink()
    with pytest.raises(ValueError, match="--force-new"):
        run_corpus("toy", _cfg(tmp_path), toy_inputs(range(1, 11)), [Square()])
    again = run_corpus("toy", _cfg(tmp_path, force_new=True), toy_inputs(range(1, 11)), [Square()])
    assert again.run != s.run and again.counts["accepted"] == 8
    for rel in before:
        if rel.name != "dataset.json":
            assert (tmp_path / rel).is_file(), f"{rel} was deleted"
    # The old index's manifest parts stay in the table folders, where glob readers would count them: verify
    # names exactly those (and nothing else), since the new index does not list them.
    old_parts = sorted(str(rel) for rel in before if rel.parts[0] == "manifest")
    problems = verify(tmp_path)[0]
    assert old_parts and sorted(p.split(" ")[0] for p in problems) == old_parts
    assert all("glob readers" in p for p in problems)


def test_recovery_never_follows_or_removes_symlinks_and_reports_first(tmp_path, caplog):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    victim = outside / "precious.tar"
    victim.write_bytes(b"not yours")
    out = tmp_path / "ds"
    s = run_corpus("toy", _cfg(out), toy_inputs(range(1, 4)), [Square()])
    link = out / "shards" / f"toy-{s.run}-000999.tar"  # named like our debris, but a symlink
    os.symlink(victim, link)
    debris = out / "shards" / f"toy-{s.run}-000998.tar.tmp"
    debris.write_bytes(b"half")
    folder = DatasetFolder(out, "toy")
    with caplog.at_level("WARNING", logger="memcorpus"):
        removed = folder.recover()
    assert removed == [f"shards/toy-{s.run}-000998.tar.tmp"] and not debris.exists()
    assert link.is_symlink() and victim.read_bytes() == b"not yours"
    assert "recovery removes shards/" in caplog.text and "symlink" in caplog.text
