"""``memcorpus --version`` and a ``--help`` that stays instant (no torch or ray imported to list commands)."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from pipelines import cli

REPO = Path(__file__).resolve().parents[2]
PYPROJECT_VERSION = re.search(r'^version = "(.+)"$', (REPO / "pyproject.toml").read_text(), re.MULTILINE).group(1)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=60, check=False)


def test_version_prints_the_distribution_version_and_exits_0():
    try:
        want = metadata.version("memcorpus")
    except metadata.PackageNotFoundError:
        want = PYPROJECT_VERSION
    r = _run("-m", "pipelines.cli", "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"memcorpus {want}\n"


def test_version_falls_back_to_pyproject_when_not_installed(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "version", not_installed)
    assert cli.version() == PYPROJECT_VERSION


def test_version_and_help_import_nothing_heavy_and_help_is_fast():
    probe = ("import sys\nfrom pipelines.cli import main\n"
             "try:\n    main(['--version'])\nexcept SystemExit as e:\n    assert e.code == 0, e.code\n"
             "print(sorted(m for m in ('torch', 'ray', 'cv2', 'transformers', 'diffusers') if m in sys.modules))")
    r = _run("-c", probe)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "[]"
    t0 = time.perf_counter()
    r = _run("-m", "pipelines.cli", "--help")
    elapsed = time.perf_counter() - t0
    assert r.returncode == 0 and "--version" in r.stdout and "train-check" in r.stdout
    assert elapsed < 3.0, f"memcorpus --help took {elapsed:.2f} s"
