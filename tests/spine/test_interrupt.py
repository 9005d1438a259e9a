"""Ctrl-C during a build: what is complete is committed, the run record says ``interrupted``, one line
tells the user to rerun, exit status 130, no traceback; the rerun finishes with nothing lost or doubled.

The build runs in its own process group and the test sends SIGINT to the whole group, as a terminal's
Ctrl-C does (the embedded Ray's processes get it too).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.dataset import DatasetFolder
from pipelines.verify import verify

ROOT = Path(__file__).resolve().parents[2]
N = 24
BUILD = """
import signal, sys
# As a shell starts a foreground command: a test run started in the background (`pytest &`, nohup) has SIGINT
# ignored, the build would inherit that, and Python installs no KeyboardInterrupt handler then.
signal.signal(signal.SIGINT, signal.default_int_handler)
from pipelines.common import RunConfig, run_corpus
from tests.spine.toy import Slow, Square, ToyConfig, toy_inputs
out, runner = sys.argv[1], sys.argv[2]
cfg = ToyConfig(run=RunConfig(out=out, runner=runner, progress=False, shard_max_samples=2, ray_num_cpus=2))
run_corpus("toy", cfg, toy_inputs(range(1, {n} + 1)), [Slow(seconds=float(sys.argv[3])), Square()])
"""


def _build(out: Path, runner: str, slow: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    return subprocess.Popen([sys.executable, "-c", BUILD.format(n=N), str(out), runner, str(slow)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def _committed_shards(out: Path) -> int:
    try:
        return len(json.loads((out / "dataset.json").read_text())["shards"])
    except (OSError, ValueError, KeyError):
        return 0


@pytest.mark.parametrize("runner", ["sequential", pytest.param("ray", marks=pytest.mark.ray)])
def test_ctrl_c_commits_what_is_complete_and_the_rerun_finishes(tmp_path, runner):
    out = tmp_path / "ds"
    p = _build(out, runner, slow=0.5)
    deadline = time.monotonic() + 300
    while _committed_shards(out) < 1 and p.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert p.poll() is None, f"the build ended before it could be interrupted:\n{p.communicate()[1][-3000:]}"
    os.killpg(p.pid, signal.SIGINT)
    stdout, stderr = p.communicate(timeout=120)
    assert p.returncode == 130, stderr[-3000:]
    assert "interrupted: rerun the same command to resume" in stderr
    assert "Traceback" not in stderr and "Traceback" not in stdout, stderr[-3000:]

    idx = json.loads((out / "dataset.json").read_text())
    (entry,) = idx["runs"]
    assert entry["interrupted"] and entry["complete"]  # closed: the next run does not treat it as a crash
    record = json.loads((out / entry["record"]).read_text())
    assert record["status"] == "interrupted" and not record["complete"]
    kept = DatasetFolder(out, "toy").live()
    assert 0 < len(kept.samples) < N  # some work was committed, not all
    assert not verify(out)[0]

    # The same command again: builds the rest, rewrites nothing already committed.
    p = _build(out, runner, slow=0.0)
    stdout, stderr = p.communicate(timeout=300)
    assert p.returncode == 0, stderr[-3000:]
    live = DatasetFolder(out, "toy").live()
    assert len(live.inputs) == N and not live.doubled
    assert len(live.samples) == sum(1 for n in range(1, N + 1) if n % 5)  # Square rejects multiples of 5
    assert all(live.samples[k]["shard"] == r["shard"] for k, r in kept.samples.items())  # committed stays put
    problems, _ = verify(out)
    assert not problems, problems
    last = json.loads((out / json.loads((out / "dataset.json").read_text())["runs"][-1]["record"]).read_text())
    assert last["status"] == "complete"


def test_progress_in_a_log_is_one_line_per_stage_not_a_redrawn_bar(tmp_path):
    script = BUILD.replace("progress=False", "progress=True, progress_every_s=0.3")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}
    p = subprocess.run([sys.executable, "-c", script.format(n=8), str(tmp_path / "ds"), "sequential", "0.1"], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=300, check=False)  # stdout is a pipe, not a TTY
    assert p.returncode == 0, p.stderr[-3000:]
    lines = [ln for ln in p.stderr.splitlines() if ln.startswith("progress toy:")]
    assert any(": stage Slow:" in ln and "s/sample" in ln for ln in lines), p.stderr[-3000:]
    assert any(": stage Square:" in ln for ln in lines)
    assert "\r" not in p.stderr and "it/s" not in p.stderr  # no tqdm bar redrawn into the log
    assert "ERROR" not in p.stderr  # a normal run logs no error-level line
