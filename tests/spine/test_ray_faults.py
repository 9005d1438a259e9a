"""Faults under the Ray runner: a model-stage worker SIGKILLed mid-run; the run still ends exactly once."""

from __future__ import annotations

import pytest

from pipelines.common import RunConfig, run_corpus
from pipelines.verify import verify
from tests.spine.toy import KillWorkerOnce, Square, ToyConfig, toy_inputs


@pytest.mark.ray
def test_sigkilled_model_worker_is_replaced_and_nothing_is_lost(tmp_path):
    marker = tmp_path / "killed"
    cfg = ToyConfig(run=RunConfig(out=str(tmp_path / "out"), runner="ray", progress=False, ray_num_cpus=2,
                                  shard_max_samples=8))
    s = run_corpus("toy", cfg, toy_inputs(range(1, 25)), [Square(), KillWorkerOnce(at=7, marker=str(marker))])
    assert marker.exists(), "the worker was never killed: the test did not test anything"
    assert s.counts["processed"] == 24 and s.counts["accepted"] == 20 and s.counts["rejected"] == 4
    problems, stats = verify(tmp_path / "out")
    assert problems == [] and stats["samples"] == 20
