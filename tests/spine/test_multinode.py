"""Two Ray nodes on this machine: model stages pinned to the worker node, shards written there, and a
worker node killed mid-run (the driver with it) loses and duplicates nothing once the build is rerun."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from pipelines.verify import verify
from tests.spine.multinode_build import MODEL_NODE
from tests.spine.ray_head import stop_head

ROOT = Path(__file__).resolve().parents[2]
N = 24  # toy inputs: multiples of 5 are rejected, so 20 accepted


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def cluster(tmp_path):
    """A head with no CPUs (it only schedules) and a way to add worker nodes that carry ``model_node``."""
    token = tmp_path / "auth_token"
    token.write_text(secrets.token_hex(32))
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token), RAY_USAGE_STATS_ENABLED="0",
               PATH=f"{bindir}:{os.environ['PATH']}", PYTHONPATH=str(ROOT),
               RAY_health_check_period_ms="1000", RAY_health_check_failure_threshold="3")
    env.pop("RAY_ADDRESS", None)
    ray, port = str(Path(bindir) / "ray"), _free_port()
    address = f"127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []

    def start(*args: str) -> subprocess.Popen:
        # --block keeps each node's processes in its own process group: killing one node is killpg.
        p = subprocess.Popen([ray, "start", "--block", "--node-ip-address=127.0.0.1", "--disable-usage-stats", *args],
                             env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        procs.append(p)
        return p

    def alive_workers() -> int:
        """Alive nodes besides the head, from `ray status` (the head runs no dashboard, so no state API)."""
        r = subprocess.run([ray, "status", f"--address={address}"], env=env, capture_output=True, text=True,
                           timeout=60, check=False)
        text = r.stdout.split("Active:", 1)[-1].split("Pending:", 1)[0] if "Active:" in r.stdout else ""
        return sum(line.strip().startswith("1 node_") for line in text.splitlines()) - 1

    def add_worker() -> subprocess.Popen:
        # On a loaded machine a node's agents can take longer to start than its raylet waits for them,
        # and the raylet exits: start it again (the head is unaffected).
        want = max(alive_workers(), 0) + 1  # the test waits for a killed node to be declared dead first
        for _ in range(3):
            p = start(f"--address={address}", "--num-cpus=2", f"--resources={json.dumps({MODEL_NODE: 1})}")
            deadline = time.time() + 90
            while time.time() < deadline and p.poll() is None:
                if alive_workers() >= want:
                    return p
                time.sleep(1)
            if p.poll() is None:
                stop_head(p)
        raise RuntimeError("a worker node never joined the cluster")

    start("--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=false",
          f"--temp-dir={tempfile.mkdtemp(prefix='mn')}")
    try:
        yield {"address": address, "env": env, "add_worker": add_worker, "alive_workers": alive_workers}
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                stop_head(p)


def _driver(cluster: dict, out: Path, sleep_s: float) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.spine.multinode_build", cluster["address"], str(out), str(N),
                             str(sleep_s)], env=cluster["env"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def _listed_shards(out: Path) -> list[dict]:
    try:
        return json.loads((out / "dataset.json").read_text())["shards"]
    except (OSError, ValueError, KeyError):
        return []


@pytest.mark.ray
def test_worker_node_writes_shards_and_its_death_loses_nothing(cluster, tmp_path):
    out = tmp_path / "out"
    worker = cluster["add_worker"]()
    first = _driver(cluster, out, sleep_s=0.4)
    deadline = time.time() + 90
    while not _listed_shards(out) and time.time() < deadline and first.poll() is None:
        time.sleep(0.2)
    assert _listed_shards(out), f"no shard committed before the kill: {first.communicate(timeout=30)[1][-3000:]}"
    # The worker node dies mid-run (its raylet, model actor and write tasks), and the driver with it.
    os.killpg(worker.pid, signal.SIGKILL)
    worker.wait()
    time.sleep(1)
    if first.poll() is None:
        os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    partial = len(_listed_shards(out))
    deadline = time.time() + 60
    while cluster["alive_workers"]() > 0 and time.time() < deadline:  # the GCS notices the dead node
        time.sleep(1)

    cluster["add_worker"]()
    again = _driver(cluster, out, sleep_s=0.0)
    stdout, stderr = again.communicate(timeout=120)
    assert again.returncode == 0, stderr[-3000:]
    report = json.loads(stdout.strip().splitlines()[-1])

    problems, stats = verify(out)
    assert problems == [], problems  # among others: no key live twice, every listed shard intact
    assert stats["inputs"] == N and stats["accepted"] == 20 and stats["rejected"] == 4 and stats["samples"] == 20
    assert report["counts"]["skipped_done"] > 0 or partial == 0  # the rerun kept what the first run committed

    # Worker nodes: the alive one carries model_node; Ray reports a dead node without its resources.
    model_nodes = {n["id"] for n in report["nodes"] if MODEL_NODE in n["resources"] or not n["alive"]}
    head = {n["id"] for n in report["nodes"] if "node:__internal_head__" in n["resources"]}
    assert len(model_nodes) == 2 and len(head) == 1 and not head & model_nodes  # the dead worker, its replacement
    shards = _listed_shards(out)
    for s in shards:  # written by a Ray worker process on a worker node, never by the driver
        _host, node, pid = s["writer"].split("/")
        assert any(m.startswith(node) for m in model_nodes), s
        assert int(pid) not in (first.pid, again.pid)
    import webdataset as wds

    seen = [json.loads(x["json"]) for x in wds.WebDataset([str(out / s["path"]) for s in shards], shardshuffle=False)]
    assert len({(x["n"]) for x in seen}) == len(seen) == 20  # every sample once (no retired copies here)
    assert {x["model_node"] for x in seen} <= model_nodes  # the model stage ran on the worker nodes only


@pytest.mark.ray
def test_probe_finds_nodes_that_cannot_see_a_path(cluster, tmp_path):
    """The shared-storage check's probe: every alive node reads the marker; a path no node has reads ''."""
    cluster["add_worker"]()
    marker = tmp_path / "marker"
    marker.write_text("tok")
    code = ("import json, sys, ray; from pipelines.shared_storage import probe_nodes; ray.init(address=sys.argv[1]);"
            "time=__import__('time'); [time.sleep(0.5) for _ in range(60) if len(ray.nodes()) < 2];"
            "print(json.dumps([probe_nodes(sys.argv[2]), probe_nodes(sys.argv[2] + '.absent')]))")
    r = subprocess.run([sys.executable, "-c", code, cluster["address"], str(marker)], env=cluster["env"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    seen, absent = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(seen) == 2 and set(seen.values()) == {"tok"}
    assert set(absent.values()) == {""}
