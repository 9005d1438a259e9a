"""`memcorpus train` as a user runs it: relative paths from where it was typed, Ctrl-C / SIGTERM stop it cleanly.

The training runs in a subprocess on its own embedded Ray, from a working directory holding
only relative names for the dataset (the real Señorita demo build) and the tiny Wan backbone:
Ray Train's workers run elsewhere, so the first logged step proves the paths were resolved.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.ray
ROOT = Path(__file__).resolve().parents[2]


def _start(cwd: Path) -> subprocess.Popen:
    env = dict(os.environ, HF_HUB_OFFLINE="1", RAY_USAGE_STATS_ENABLED="0", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "pipelines.cli", "train", "--config", "train.yaml",
                             "--set", "steps=100000"], cwd=cwd, env={**env, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_train_resolves_relative_paths_and_stops_on_signal(sig, senorita_demo_dataset, tiny_models, tmp_path):
    (tmp_path / "ds").symlink_to(senorita_demo_dataset)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "wan").symlink_to(tiny_models["wan"])
    (tmp_path / "train.yaml").write_text("dataset: ds\nbackbone: models/wan\nout: runs\nframes: 5\nsize: [32, 32]\n"
                                         "num_workers: 1\ncpus_per_worker: 0.5\ncheckpoint_every: 100000\n")
    proc = _start(tmp_path)
    steps = tmp_path / "runs" / "memory_dit" / "steps.jsonl"
    deadline = time.time() + 480  # Ray start plus the first step; minutes on a loaded 2-core box
    while not (steps.is_file() and steps.read_text().strip()):
        assert proc.poll() is None, f"training ended early: {proc.communicate()[1][-3000:]}"
        assert time.time() < deadline, "no training step within 480 s"
        time.sleep(0.5)
    family = psutil.Process(proc.pid).children(recursive=True)  # Ray's GCS, raylet, workers
    assert family, "an embedded Ray runs under the command"
    t0 = time.time()
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("training did not stop within 60 s of the signal")
    elapsed = time.time() - t0
    assert proc.returncode == 130, err[-3000:]
    assert "interrupted:" in err and "rerun the same command to resume" in err
    # Lines of Ray's own actors carry a "(Name pid=...)" prefix; the command's own output must hold no traceback.
    ours = "\n".join(line for line in err.splitlines() if not re.match(r"(\x1b\[\d+m)?\(\w+ pid=\d+", line))
    assert "Traceback" not in ours and "SIGTERM received" not in ours, ours[-3000:]
    _, alive = psutil.wait_procs(family, timeout=20)
    assert not alive, f"left running: {alive}"
    assert elapsed < 45
