"""Item 6, path traversal through dataset.json: a hostile dataset folder is refused by every command.

Each case starts from a real toy dataset, then rewrites its ``dataset.json`` (or plants a symlink)
the way an attacker sharing a folder would. Every reader of the folder (the pipeline's recovery
through ``DatasetFolder``, ``memcorpus verify``, ``memcorpus report``, the training reader) must
refuse with a ValueError that names the bad field, and nothing outside the folder may change:
canary files sit exactly where the traversal would delete or write.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from pipelines.cli import main as cli
from pipelines.common import RunConfig, run_corpus
from pipelines.dataset import DatasetFolder
from pipelines.names import safe_name, safe_rel
from pipelines.report import build_report
from pipelines.verify import verify
from tests.spine.toy import Square, ToyConfig, toy_inputs
from training.data import open_dataset, read_index, shard_paths


def _snapshot(top: Path, skip: Path) -> dict[str, bytes]:
    """Every file under ``top`` except the dataset folder itself: what must stay untouched."""
    out = {}
    for dirpath, _, files in os.walk(top):
        if Path(dirpath).is_relative_to(skip):
            continue
        for f in files:
            p = Path(dirpath) / f
            out[str(p.relative_to(top))] = p.read_bytes()
    return out


@pytest.fixture
def world(tmp_path):
    """tmp/a/ds is the dataset; tmp/a/outside_dir and tmp/outside hold canaries a traversal would hit."""
    ds = tmp_path / "a" / "ds"
    run_corpus("toy", ToyConfig(run=RunConfig(out=str(ds), runner="sequential", progress=False)),
               toy_inputs(range(1, 7)), [Square()])
    for d in (tmp_path / "a" / "outside_dir", tmp_path / "outside"):
        d.mkdir()
        (d / "canary.txt").write_text("do not touch")
        (d / "x.tar").write_bytes(b"not ours")
    return tmp_path, ds


def _edit(ds: Path, change) -> None:
    idx = json.loads((ds / "dataset.json").read_text())
    change(idx)
    (ds / "dataset.json").write_text(json.dumps(idx))


def _run_name(idx):  # recovery would rmtree manifest/../../outside_dir
    idx["manifests"][0]["run"] = "../../outside_dir"
    idx["runs"] = [{"run": "../../outside_dir", "complete": False, "record": "runs/../../outside_dir.json"}]


def _unfinished_run(idx):  # a crashed run whose name is the traversal, as recovery would finish it
    idx["manifests"].append({"run": "../../outside_dir", "seq": 0})


def _shard_up(idx):
    idx["shards"][0]["path"] = "../../x.tar"


def _shard_absolute(idx, target=None):
    idx["shards"][0]["path"] = target


def _manifest_absolute(idx):
    idx["manifests"][0]["inputs"] = "/etc/passwd"


def _backslash(idx):
    idx["shards"][0]["path"] = "shards\\..\\..\\x.tar"


CASES = {"run_name": _run_name, "unfinished_run": _unfinished_run, "shard_up": _shard_up,
         "shard_absolute": _shard_absolute, "manifest_absolute": _manifest_absolute, "backslash": _backslash}


def _assert_every_command_refuses(top: Path, ds: Path, capsys) -> None:
    before = _snapshot(top, ds)
    with pytest.raises(ValueError, match="refusing|symlink"):
        DatasetFolder(ds, "toy").recover()  # the first thing every pipeline run does
    with pytest.raises(ValueError, match="refusing|symlink"):
        run_corpus("toy", ToyConfig(run=RunConfig(out=str(ds), runner="sequential", progress=False)),
                   toy_inputs(range(1, 3)), [Square()])
    problems, stats = verify(ds)
    assert stats == {} and len(problems) == 1 and ("refusing" in problems[0] or "symlink" in problems[0])
    assert cli(["verify", str(ds)]) == 1
    with pytest.raises(ValueError, match="refusing|symlink"):
        build_report(ds, top / "report_dest")
    assert cli(["report", str(ds), "--dest", str(top / "report_dest2")]) == 2
    assert "report:" in capsys.readouterr().out
    for reader in (read_index, shard_paths, open_dataset):
        with pytest.raises(ValueError, match="refusing|symlink"):
            reader(ds)
    assert _snapshot(top, ds) == before, "a command changed files outside the dataset folder"
    assert not (top / "report_dest" / "memcorpus-report" / "index.html").exists()


@pytest.mark.parametrize("case", sorted(CASES))
def test_path_traversal_hostile_index_is_refused_by_every_command(world, case, capsys):
    top, ds = world
    change = CASES[case]
    if case == "shard_absolute":
        _edit(ds, lambda idx: change(idx, str(top / "outside" / "x.tar")))
    else:
        _edit(ds, change)
    _assert_every_command_refuses(top, ds, capsys)
    assert (top / "a" / "outside_dir" / "canary.txt").read_text() == "do not touch"


def test_path_traversal_symlinked_shards_folder_is_refused(world, capsys):
    top, ds = world
    (ds / "shards").rename(top / "real_shards")
    (ds / "shards").symlink_to(top / "outside", target_is_directory=True)
    _assert_every_command_refuses(top, ds, capsys)
    (ds / "dataset.json").unlink()  # a fresh folder: recovery would list and delete everything in "shards"
    with pytest.raises(ValueError, match="symlink"):
        DatasetFolder(ds, "toy")
    assert sorted(p.name for p in (top / "outside").iterdir()) == ["canary.txt", "x.tar"]


def test_path_traversal_symlinked_shard_file_is_refused(world, capsys):
    top, ds = world
    idx = json.loads((ds / "dataset.json").read_text())
    (ds / "shards" / "evil.tar").symlink_to(top / "outside" / "x.tar")
    _edit(ds, lambda i: i["shards"][0].update(path="shards/evil.tar"))
    assert idx["shards"][0]["path"] != "shards/evil.tar"
    _assert_every_command_refuses(top, ds, capsys)


def test_path_traversal_planted_temporary_symlink_is_not_written_through(world):
    top, ds = world
    (ds / ".tmp-dataset.json").symlink_to(top / "outside" / "canary.txt")  # write_index's temporary name
    run_corpus("toy", ToyConfig(run=RunConfig(out=str(ds), runner="sequential", progress=False)),
               toy_inputs(range(1, 9)), [Square()])
    assert (top / "outside" / "canary.txt").read_text() == "do not touch"
    assert verify(ds)[0] == []


def test_path_traversal_validator_api():
    assert safe_name("20250101T000000-ab12", "run") == "20250101T000000-ab12"
    for bad in ("..", "../x", "a/b", "a\\b", "", ".", "x..y", "/abs", "c:", None, 3):
        with pytest.raises(ValueError, match="run="):
            safe_name(bad, "run", "ds/dataset.json")
    assert safe_rel("shards/toy-r-000000.tar", ("shards/",), "path") == "shards/toy-r-000000.tar"
    for bad in ("shards/../x.tar", "/shards/x.tar", "shards//x.tar", "manifest/x.parquet", "s3://b/shards/x",
                "shards/a\\..\\x"):
        with pytest.raises(ValueError, match="path="):
            safe_rel(bad, ("shards/",), "path", "ds/dataset.json")
