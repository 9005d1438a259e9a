"""Item 7, the embedded Ray is not on loopback: it must listen on 127.0.0.1 only and join no cluster unasked.

Each check runs a driver in a subprocess, so it starts its own Ray whatever this test session
has initialised, and reports what every process of that Ray listens on before shutting down.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.spine.ray_head import stop_head

ROOT = Path(__file__).resolve().parents[2]

# A tiny run through the real runner, then every listening socket of the driver and its descendants.
DRIVER = """
import json, sys, psutil, ray
from pipelines.ray_runner import RayRunner
from tests.spine.toy import Square, toy_inputs

runner = RayRunner(num_cpus=1, shutdown=False)
done = list(runner.run([Square()], toy_inputs(range(1, 4))))
me = psutil.Process()
listen = []
for p in [me] + me.children(recursive=True):
    try:
        listen += [[p.name(), c.laddr.ip, c.laddr.port] for c in p.net_connections("inet") if c.status == "LISTEN"]
    except psutil.Error:
        pass
gcs = ray.get_runtime_context().gcs_address
ray.shutdown()
print(json.dumps({"done": len(done), "info": runner.info, "listen": listen, "gcs": gcs}))
"""


def _drive(env: dict) -> dict:
    r = subprocess.run([sys.executable, "-c", DRIVER], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300, check=False)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(addr, "ipv4_mapped", None)  # ::ffff:127.0.0.1 is IPv4 loopback on a dual-stack socket
    return (mapped or addr).is_loopback


def _env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_ADDRESS")}
    return {**env, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": str(ROOT), **extra}


@pytest.mark.ray
def test_ray_loopback_embedded_ray_listens_on_loopback_only():
    # A stray RAY_ADDRESS (nothing listens there) must be ignored, not joined.
    out = _drive(_env(RAY_ADDRESS="127.0.0.1:1"))
    assert out["done"] == 3 and out["info"]["embedded"] is True
    assert out["listen"], "found no listening sockets: the check would prove nothing"
    names = {name for name, _, _ in out["listen"]}
    assert any("gcs" in n for n in names) and any("raylet" in n for n in names), names
    exposed = [s for s in out["listen"] if not _is_loopback(s[1])]
    assert exposed == [], f"Ray listens beyond loopback: {exposed}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.ray
def test_ray_loopback_default_run_does_not_join_a_ray_start_cluster():
    port = _free_port()
    ray_bin = str(Path(sys.executable).parent / "ray")
    env = _env()
    # --block keeps the head in its own process group, so teardown stops exactly this head.
    head = subprocess.Popen([ray_bin, "start", "--head", "--block", f"--port={port}", "--num-cpus=1",
                             "--include-dashboard=false", "--disable-usage-stats",
                             f"--temp-dir={tempfile.mkdtemp(prefix='rl')}"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.time() + 90
        while not _listening(port):  # the head's GCS is up
            assert head.poll() is None and time.time() < deadline, "ray start --head did not come up"
            time.sleep(0.5)
        out = _drive(env)  # no --ray-address: a joined head would fail on num_cpus, or run our data there
        assert out["done"] == 3 and out["info"] == {"address": "local", "embedded": True}
        assert not out["gcs"].endswith(f":{port}"), out["gcs"]
    finally:
        stop_head(head)
