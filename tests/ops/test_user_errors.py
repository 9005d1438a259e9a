"""A user's mistake is one line naming the key or path, exit status 2, fast, before Ray starts; no traceback.

Each case runs the real console entry point in a subprocess, as a user would type it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIMIT_S = 8.0  # "within a second" on an idle machine; generous for a loaded shared CI box


def _run(args: list[str], cwd: Path) -> tuple[int, str, float]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=120, check=False)
    return p.returncode, p.stderr, time.perf_counter() - t0


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("mistakes")
    (d / "pairs.json").write_text("[]")
    (d / "bad.yaml").write_text("run:\n  out: [unclosed\n")
    (d / "list.yaml").write_text("- a\n- b\n")
    (d / "footage").mkdir()
    (d / "train_typo.yaml").write_text("dataset: ds\nbackbone: wan\nstepz: 3\n")
    (d / "train_nodata.yaml").write_text("dataset: nowhere\nbackbone: wan\n")
    names = ("pairs.json", "bad.yaml", "list.yaml", "footage", "train_typo.yaml", "train_nodata.yaml")
    return {k.split(".")[0]: str(d / k) for k in names} | {"dir": str(d)}


CASES = {
    "unknown --set key": (["build", "senorita-long", "--set", "extend.modle=x"], "extend.modle"),
    "wrong type": (["build", "senorita-long", "--set", "run.shard_max_samples=many"], "run.shard_max_samples"),
    "wrong type in a tuple": (["build", "memento", "--set", "demo_size=[640]"], "demo_size"),
    "not a section": (["build", "multicam", "--set", "fov=3"], "fov"),
    "value out of range": (["build", "multicam", "--set", "fov.lam=2"], "fov.lam"),
    "missing pairs file": (["build", "senorita-long", "--pairs", "{dir}/missing.json"], "missing.json"),
    "missing --config file": (["build", "senorita-long", "--config", "{dir}/none.yaml"], "none.yaml"),
    "bad YAML": (["build", "senorita-long", "--config", "{bad}"], "bad.yaml"),
    "YAML that is not a mapping": (["build", "multicam", "--config", "{list}"], "list.yaml"),
    "bad YAML in --set": (["build", "senorita-long", "--set", "demo_size=[1,"], "demo_size"),
    "model not set": (["build", "senorita-long", "--pairs", "{pairs}", "--out", "{dir}/o1"], "extend.model"),
    "model folder missing": (["build", "senorita-long", "--pairs", "{pairs}", "--out", "{dir}/o2", "--set",
                              "extend.model={dir}/no_framepack", "--set", "descriptors.model={dir}/no_dino"],
                             "no_framepack"),
    "captioner not set": (["build", "memento", "--footage", "{footage}", "--out", "{dir}/o3"], "captions.model"),
    "training: unknown key": (["train", "--config", "{train_typo}"], "stepz"),
    "training: wrong type": (["train", "--config", "{train_nodata}", "--set", "steps=ten"], "steps"),
    "training: no dataset": (["train", "--config", "{train_nodata}"], "nowhere"),
    "tiny models into a package": (["make-tiny-models", "models/"], "models"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_user_mistake_is_one_line_and_exit_2(case, files):
    args, names = CASES[case]
    args = [a.format(**files) for a in args]
    rc, err, elapsed = _run(args, cwd=ROOT if case == "tiny models into a package" else Path(files["dir"]))
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err[-2000:]
    assert len(lines) == 1 and "error:" in lines[0], err[-2000:]
    assert names in lines[0]
    assert "Traceback" not in err
    assert elapsed < LIMIT_S, f"{case}: {elapsed:.1f} s"
    assert not (Path(files["dir"]) / "o1").exists() and not (ROOT / "models" / "wan").exists()


def test_internal_errors_keep_their_traceback():
    """Only ConfigError is shortened: anything else is a bug and must show where it happened."""
    from pipelines.config import ConfigError, exit_on_user_error

    def bug() -> int:
        raise KeyError("internal")

    with pytest.raises(KeyError):
        exit_on_user_error(bug)

    def mistake() -> int:
        raise ConfigError("run.out: two\nlines")

    assert exit_on_user_error(mistake) == 2
