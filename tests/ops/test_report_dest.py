"""Item 10, ``memcorpus report DS --dest DIR`` deleted every image in DIR: now it writes a folder of its own.

The report goes into DIR/memcorpus-report/ and a later report removes only the files the
previous one listed in its manifest: a user's pictures in DIR, and even ones a user drops into
the report's own folder, survive any number of report runs.
"""

from __future__ import annotations

import json

import pytest

from pipelines.cli import main as cli
from pipelines.common import RunConfig, run_corpus
from pipelines.report import DEST_SUBFOLDER, MANIFEST, build_report
from tests.spine.toy import Square, ToyConfig, toy_inputs


@pytest.fixture(scope="module")
def toy_ds(tmp_path_factory):
    ds = tmp_path_factory.mktemp("report_dest") / "ds"
    run_corpus("toy", ToyConfig(run=RunConfig(out=str(ds), runner="sequential", progress=False)),
               toy_inputs(range(1, 13)), [Square()])
    return ds


def test_report_dest_keeps_user_files_over_two_runs(toy_ds, tmp_path):
    dest = tmp_path / "www"
    dest.mkdir()
    user = {"holiday.png": b"\x89PNG mine", "photo.jpg": b"mine", "index.html": b"<p>my page</p>", "notes.txt": b"x"}
    for name, data in user.items():
        (dest / name).write_bytes(data)
    first = build_report(toy_ds, dest, samples=2)
    assert first == dest / DEST_SUBFOLDER / "index.html" and first.is_file()
    ours = first.parent
    written = json.loads((ours / MANIFEST).read_text())["written"]
    assert "index.html" in written and any(n.endswith(".png") for n in written)
    (ours / "kept-by-user.png").write_bytes(b"dropped here by a person")
    assert cli(["report", str(toy_ds), "--dest", str(dest), "--samples", "2"]) == 0
    for name, data in user.items():
        assert (dest / name).read_bytes() == data, f"{name} in --dest was touched"
    assert (ours / "kept-by-user.png").read_bytes() == b"dropped here by a person"
    assert sorted(p.name for p in dest.iterdir()) == sorted([*user, DEST_SUBFOLDER])
    assert json.loads((ours / MANIFEST).read_text())["written"] == written  # same report, same files


def test_report_dest_removes_only_its_own_stale_files(toy_ds, tmp_path):
    ours = build_report(toy_ds, tmp_path).parent
    listed = json.loads((ours / MANIFEST).read_text())["written"]
    # As if the previous report had drawn one more sample card than this one will.
    (ours / "s099_sheet.png").write_bytes(b"stale card")
    (ours / MANIFEST).write_text(json.dumps({"written": [*listed, "s099_sheet.png"]}))
    (ours / "s098_sheet.png").write_bytes(b"same pattern, but not listed: not ours to delete")
    build_report(toy_ds, tmp_path)
    assert not (ours / "s099_sheet.png").exists()
    assert (ours / "s098_sheet.png").exists()
    assert json.loads((ours / MANIFEST).read_text())["written"] == listed


def test_report_dest_refuses_a_manifest_that_names_paths(toy_ds, tmp_path):
    ours = tmp_path / DEST_SUBFOLDER
    ours.mkdir()
    (tmp_path / "precious.png").write_bytes(b"mine")
    (ours / MANIFEST).write_text(json.dumps({"written": ["../precious.png"]}))
    with pytest.raises(ValueError, match="not a safe name"):
        build_report(toy_ds, tmp_path)
    assert (tmp_path / "precious.png").read_bytes() == b"mine"
