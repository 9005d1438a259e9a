"""`make gpu-check` refuses a machine without CUDA with exit 2 and a message, before building anything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.py"


def test_refuses_cuda_without_a_gpu(tmp_path):
    # An empty CUDA_VISIBLE_DEVICES hides every GPU, so this holds on GPU machines too (and never runs the check).
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OUT": str(tmp_path)}
    cmd = [sys.executable, str(SCRIPT), "--device", "cuda"]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=120)
    assert p.returncode == 2, (p.returncode, p.stdout[-2000:], p.stderr[-2000:])
    assert "torch.cuda.is_available() is False" in p.stderr and "--device cpu --quick" in p.stderr
    assert not (tmp_path / "gpu_check.json").exists()  # refused before any check ran or wrote a table
