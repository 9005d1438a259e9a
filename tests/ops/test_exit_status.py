"""Short commands that read Parquet exit with their own status, every time (apache/arrow#34314).

Before the fix `memcorpus verify` printed OK and then aborted at interpreter exit (134) about one run
in five: Arrow's threaded Parquet reader left threads behind at teardown. A script trusts the exit code,
so each command runs 20 times as a subprocess with stdout to /dev/null, the way a script would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RUNS = 20
CLI = [sys.executable, "-m", "pipelines.cli"]


@pytest.fixture(scope="module")
def zero_shards(tmp_path_factory, tiny_models) -> Path:
    """A Señorita build whose inputs were all rejected: a dataset with manifests and no shard."""
    from pipelines.build_senorita_long import SenoritaConfig, build_inputs, build_stages
    from pipelines.common import load_config, run_corpus
    from pipelines.demo_senorita import write_demo

    pairs = write_demo(tmp_path_factory.mktemp("broken_in"), n_pairs=1, size=(64, 48))
    pairs.write_text(json.dumps([r for r in json.loads(pairs.read_text()) if r["instruction"].startswith("broken")]))
    out = tmp_path_factory.mktemp("zero") / "dataset"
    cfg = load_config(SenoritaConfig, None, pairs=str(pairs), run__out=str(out), run__runner="sequential",
                      run__progress=False, extend__model=tiny_models["framepack"],
                      descriptors__model=tiny_models["dinov2"])
    summary = run_corpus("senorita_long", cfg, build_inputs(cfg), build_stages(cfg))
    assert summary.counts["rejected"] > 0 and not summary.counts.get("accepted") and not summary.shards
    return out


def _codes(args: list[str], runs: int = RUNS) -> list[int]:
    root = Path(__file__).resolve().parents[2]
    return [subprocess.run(CLI + args, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           check=False, timeout=120).returncode for _ in range(runs)]


def test_verify_exit_status_is_stable(zero_shards, senorita_demo_dataset, tmp_path):
    assert _codes(["verify", str(zero_shards)]) == [0] * RUNS
    assert _codes(["verify", str(senorita_demo_dataset)]) == [0] * RUNS
    broken = tmp_path / "broken"
    shutil.copytree(senorita_demo_dataset, broken)
    next((broken / "shards").glob("*.tar")).unlink()
    assert _codes(["verify", str(broken)], runs=3) == [1] * 3


def test_report_exit_status_is_stable(zero_shards, senorita_demo_dataset, tmp_path):
    for name, src in (("zero", zero_shards), ("demo", senorita_demo_dataset)):
        ds = tmp_path / name
        shutil.copytree(src, ds)  # the report writes into the dataset folder: keep the session's copy clean
        assert _codes(["report", str(ds), "--samples", "1"]) == [0] * RUNS, name
    assert _codes(["report", str(tmp_path / "nowhere")], runs=2) == [2] * 2
