"""Cluster readiness: ray_cluster.yaml validates, and `ray job submit` runs the build on a local head."""

from __future__ import annotations

import copy
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml

from pipelines.verify import verify
from tests.spine.ray_head import stop_head

ROOT = Path(__file__).resolve().parents[2]


def test_ray_cluster_yaml_validates_with_rays_own_schema():
    from ray.autoscaler._private.util import prepare_config, validate_config

    cfg = yaml.safe_load((ROOT / "ray_cluster.yaml").read_text())
    validate_config(prepare_config(copy.deepcopy(cfg)))
    assert {"head", "cpu_worker", "gpu_worker"} <= set(cfg["available_node_types"])
    broken = copy.deepcopy(cfg)
    broken["available_node_types"]["gpu_worker"]["max_wokers"] = 2  # a typo must not pass
    with pytest.raises(Exception, match="max_wokers"):
        validate_config(prepare_config(broken))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A Ray head on 127.0.0.1 with token authentication on, as `ray start --head` gives users."""
    d = tmp_path_factory.mktemp("rayhead")
    token = d / "auth_token"
    token.write_text(secrets.token_hex(32))
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token), RAY_USAGE_STATS_ENABLED="0",
               PATH=f"{bindir}:{os.environ['PATH']}")
    env.pop("RAY_ADDRESS", None)
    port, dash = _free_port(), _free_port()
    ray = str(Path(bindir) / "ray")
    # A short --temp-dir: Ray's Unix sockets live under it and socket paths are limited to 107 bytes.
    # --block keeps `ray start` in the foreground with the head's processes in its own process
    # group, so teardown stops exactly this head (`ray stop` would stop every Ray on the machine).
    head = subprocess.Popen([ray, "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
                             "--num-cpus=2", "--dashboard-host=127.0.0.1", f"--dashboard-port={dash}",
                             "--disable-usage-stats", f"--temp-dir={tempfile.mkdtemp(prefix='rh')}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        _wait_for_dashboard(ray, f"http://127.0.0.1:{dash}", env, head)
        yield {"env": env, "dashboard": f"http://127.0.0.1:{dash}", "ray": ray}
    finally:
        stop_head(head)


def _submit(cmd: list[str], env: dict, tries: int = 30) -> subprocess.CompletedProcess:
    """`ray job submit`, retried while the head's job agent is still starting (it comes up after the dashboard)."""
    for _ in range(tries):
        r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)
        if "No available agent to submit job" not in r.stdout + r.stderr:
            return r
        time.sleep(2)
    return r


def _wait_for_dashboard(ray: str, url: str, env: dict, head: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert head.poll() is None, "ray start --head exited"
        r = subprocess.run([ray, "job", "list", "--address", url], env=env, capture_output=True, timeout=60, check=False)
        if r.returncode == 0:
            return
        time.sleep(1)
    raise TimeoutError(f"the Ray head at {url} did not answer in {timeout} s")


@pytest.mark.ray
def test_ray_job_submit_builds_the_corpus_on_the_cluster(ray_head, tmp_path):
    from models.tiny import build_tiny
    from pipelines.demo_senorita import write_demo

    pairs = write_demo(tmp_path / "in", n_pairs=2, size=(64, 48), broken=False)
    fp, dino = build_tiny("framepack", tmp_path / "tiny"), build_tiny("dinov2", tmp_path / "tiny")
    out = tmp_path / "out"
    cmd = [ray_head["ray"], "job", "submit", "--address", ray_head["dashboard"], "--working-dir", str(ROOT), "--",
           "python", "pipelines/build_senorita_long.py", "--pairs", str(pairs), "--out", str(out),
           "--set", f"extend.model={fp}", "--set", f"descriptors.model={dino}", "--set", "extend.steps=2",
           "--set", "extend.num_new_frames=20", "--set", "run.progress=false"]
    r = _submit(cmd, ray_head["env"])
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    problems, stats = verify(out)
    assert problems == [] and stats["accepted"] == 2
    rec = json.loads(next((out / "runs").glob("*.json")).read_text())
    assert rec["runner"] == "ray" and rec["runner_info"]["embedded"] is False  # it joined the cluster


@pytest.mark.ray
def test_job_submit_without_the_token_is_refused(ray_head, tmp_path):
    env = {k: v for k, v in ray_head["env"].items() if not k.startswith("RAY_AUTH")}
    env["RAY_AUTH_MODE"] = "disabled"
    (tmp_path / "j.py").write_text("print('should not run')\n")
    r = _submit([ray_head["ray"], "job", "submit", "--address", ray_head["dashboard"], "--working-dir",
                 str(tmp_path), "--", "python", "j.py"], env)
    assert r.returncode != 0 and "should not run" not in r.stdout
    assert "authentication" in (r.stdout + r.stderr).lower()  # refused for the missing token, not for another reason
