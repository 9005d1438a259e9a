"""`memcorpus build CORPUS`: --dry-run checks and plans without building or starting Ray; --limit N builds the
first N inputs; --max-reject-rate R turns a run with more rejects than R into exit status 3."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipelines.cli import main
from pipelines.dataset import DatasetFolder
from pipelines.demo_senorita import write_demo


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> dict:
    """Real demo pairs (clips and metadata from the demo writer), reordered: the first record is broken."""
    root = tmp_path_factory.mktemp("pairs")
    path = write_demo(root, n_pairs=2, size=(64, 48), broken=True)
    records = json.loads(path.read_text())
    good = [r for r in records if not r["instruction"].startswith("broken")]
    bad = [r for r in records if r["instruction"].startswith("broken")]
    (root / "bad_first.json").write_text(json.dumps([bad[0], *good]))
    (root / "good_first.json").write_text(json.dumps([good[0], bad[0]]))
    return {"root": str(root), "all": str(path), "n": len(records), "bad_first": str(root / "bad_first.json"),
            "good_first": str(root / "good_first.json")}


def _flags(tiny_models) -> list[str]:
    return ["--set", f"extend.model={tiny_models['framepack']}", "--set", f"descriptors.model={tiny_models['dinov2']}",
            "--set", "extend.steps=1", "--set", "extend.num_new_frames=9", "--set", "run.progress=false"]


def _statuses(out: Path) -> list[str]:
    """The live manifest row of every input, as the dataset folder reports it."""
    return sorted(r["status"] for r in DatasetFolder(out, "senorita_long").live().inputs.values())


def test_dry_run_prints_the_plan_and_builds_nothing(pairs, tiny_models, tmp_path, capsys):
    import ray

    out = tmp_path / "ds"
    rc = main(["build", "senorita-long", "--pairs", pairs["all"], "--root", pairs["root"], "--out", str(out),
               *_flags(tiny_models), "--set", "extend.gpus=1", "--dry-run"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert not out.exists() and not ray.is_initialized()
    config = json.loads(text[text.index("{"): text.index("\nmodels:")])
    assert config["extend"]["model"] == tiny_models["framepack"] and config["run"]["out"] == str(out)
    assert re.search(rf"extend\.model = {re.escape(tiny_models['framepack'])}: folder ", text)
    assert f"inputs: {pairs['n']}" in text
    assert f"output: {out}: new dataset (writable)" in text
    assert re.search(r"ValidatePair +Ray tasks; 1 CPU, 0 GPU each", text)
    assert re.search(r"ExtendTarget +actor pool, 1\.\.2 actors .*; 1 CPU, 1 GPU each", text)


def test_dry_run_with_limit_and_a_missing_model_on_a_cluster(pairs, tiny_models, tmp_path, capsys):
    """Joining a cluster, a folder missing here is a warning (the nodes may have it), and no CPU cap is guessed."""
    rc = main(["build", "senorita-long", "--pairs", pairs["all"], "--out", str(tmp_path / "ds"), *_flags(tiny_models),
               "--set", "descriptors.model=/nonexistent/dinov2", "--ray-address", "ray://head:10001",
               "--limit", "2", "--dry-run"])
    text = capsys.readouterr().out
    assert rc == 0, text
    assert f"inputs: {pairs['n']} (--limit: the first 2 are built)" in text
    assert "descriptors.model = /nonexistent/dinov2: not found here" in text
    assert "warning: descriptors.model=/nonexistent/dinov2: no such file or folder" in text


def test_limit_and_max_reject_rate(pairs, tiny_models, tmp_path):
    out = tmp_path / "ds"
    common = ["build", "senorita-long", "--root", pairs["root"], "--out", str(out), "--runner", "sequential",
              *_flags(tiny_models), "--limit", "1"]
    # The first input is broken: 1 of 1 rejected is more than half.
    assert main([*common, "--pairs", pairs["bad_first"], "--max-reject-rate", "0.5"]) == 3
    assert _statuses(out) == ["rejected"]
    # The first input is good: nothing rejected is not more than 0.
    assert main([*common, "--pairs", pairs["good_first"], "--max-reject-rate", "0"]) == 0
    assert _statuses(out) == ["accepted", "rejected"]
