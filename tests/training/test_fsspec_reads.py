"""The trainer reads a dataset where the pipelines put it: a local path, ``file://``, ``memory://`` and ``s3://``
(a real S3-compatible server, moto's, started by the test), with the same samples and train-check result."""

from __future__ import annotations

import json
import os
from pathlib import Path

import fsspec
import pytest

from pipelines.cli import main as cli
from pipelines.common import RunConfig, run_corpus
from pipelines.dataset import DatasetFolder
from tests.spine.toy import Split, ToyConfig, toy_inputs
from training.data import open_dataset, shard_paths

S3_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_bucket():
    """An S3 bucket on moto's threaded server; clients find it the usual way (AWS_ENDPOINT_URL)."""
    server = pytest.importorskip("moto.server")
    s3fs = pytest.importorskip("s3fs")
    srv = server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    srv.start()
    host, port = srv.get_host_and_port()
    env = {**S3_ENV, "AWS_ENDPOINT_URL": f"http://{host}:{port}"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    s3fs.S3FileSystem.clear_instance_cache()
    fsspec.filesystem("s3").mkdir("memcorpus-test")
    try:
        yield "s3://memcorpus-test"
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        srv.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def place(request, tmp_path):
    """``place(name)`` -> a fresh dataset location of the parametrised kind (path, file, memory or s3)."""
    kind = request.param

    def make(name: str) -> str:
        if kind == "path":
            return str(tmp_path / name)
        if kind == "file":
            return f"file://{tmp_path / name}"
        if kind == "memory":
            return f"memory://fsspec-reads-{id(tmp_path)}/{name}"
        return f"{request.getfixturevalue('s3_bucket')}/{id(tmp_path)}/{name}"

    yield make
    if kind == "memory":
        fsspec.filesystem("memory").rm(f"/fsspec-reads-{id(tmp_path)}", recursive=True)


def _upload(local: Path, uri: str) -> None:
    """Copy a built dataset folder to ``uri`` file by file, as a user's sync to object storage would."""
    fs, base = fsspec.core.url_to_fs(uri)
    for p in sorted(local.rglob("*")):
        if p.is_file() and p.name != ".memcorpus.lock":
            fs.makedirs(f"{base}/{p.parent.relative_to(local).as_posix()}", exist_ok=True)  # local folders
            fs.pipe_file(f"{base}/{p.relative_to(local).as_posix()}", p.read_bytes())


def _train_check(dataset: str, capsys) -> dict:
    capsys.readouterr()
    assert cli(["train-check", dataset, "--n", "2", "--json"]) == 0
    res = json.loads(capsys.readouterr().out)
    res.pop("examples_per_s")
    return res


@pytest.mark.parametrize("place", ["path", "file", "memory", "s3"], indirect=True)
def test_built_corpus_reads_and_train_checks_the_same_from_a_uri(multicam_demo_dataset, place, capsys):
    uri = place("multicam")
    _upload(multicam_demo_dataset, uri)
    want = {s["__key__"]: s for s in open_dataset(multicam_demo_dataset, decode=False)}
    got = {s["__key__"]: s for s in open_dataset(uri, decode=False)}
    assert want and set(got) == set(want)
    for key, s in got.items():  # byte for byte, every member
        assert {k: v for k, v in s.items() if k != "__url__"} == {k: v for k, v in want[key].items() if k != "__url__"}
    if "://" in uri and not uri.startswith("file://"):
        assert all(u.startswith(uri + "/shards/") for u in shard_paths(uri))
    local = _train_check(str(multicam_demo_dataset), capsys)
    assert local["examples"] == 2 and _train_check(uri, capsys) == local


@pytest.mark.parametrize("place", ["memory", "s3"], indirect=True)
def test_a_build_written_to_a_uri_trains_only_its_live_samples(place):
    uri = place("toy")

    def build(inputs, version):
        cfg = ToyConfig(run=RunConfig(out=uri, runner="sequential", progress=False, shard_max_samples=3))
        return run_corpus("toy", cfg, toy_inputs(inputs), [Split(version=version)])

    build(range(1, 9), "split/1")
    assert build(range(1, 5), "split/2").counts["rebuilt_refresh"] == 4  # retires the old samples of inputs 1-4
    folder = DatasetFolder(uri, "toy")
    live = folder.live()
    written = {(r["key"], r["shard"]) for r in folder.rows("samples")}
    got = [(s["__key__"], s["__url__"].removeprefix(uri + "/")) for s in open_dataset(uri, decode=False)]
    assert sorted(got) == sorted((k, r["shard"]) for k, r in live.samples.items())
    assert set(got) < written  # the rebuild's new samples reuse the keys; the retired ones are not read
