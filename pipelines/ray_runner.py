"""The Ray Data runner: the same stage list, streamed through a Ray cluster.

Light stages run as Ray tasks; stages with heavy state (a ``setup()`` or GPUs) run in
autoscaling actor pools so the model loads once per actor. Results stream back to the
driver, where the single ``RunWriter`` commits them, which keeps exactly-once simple.

On a small machine, actors that each hold a whole CPU starve the task stages and the
pipeline stops making progress; the runner caps every actor's CPU request so the actor
pools together hold at most half of the cluster's CPUs.
"""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from stages.base import Sample, Stage

log = logging.getLogger(__name__)


def to_column(samples: list[Sample]) -> dict[str, np.ndarray]:
    # Samples travel as one binary column: Arrow stores bytes natively, where a column of
    # Python objects makes Ray Data try (and fail) an Arrow conversion on every block.
    col = np.empty(len(samples), dtype=object)
    col[:] = [pickle.dumps(s, protocol=5) for s in samples]
    return {"sample": col}


def from_column(batch: dict[str, np.ndarray]) -> list[Sample]:
    return [pickle.loads(b) for b in batch["sample"]]


class _StageActor:
    """One actor of a model stage's pool: ``setup()`` once, then batches."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        stage.setup()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return to_column(self.stage(from_column(batch)))


def _run_task(batch: dict[str, np.ndarray], stage: Stage) -> dict[str, np.ndarray]:
    return to_column(stage(from_column(batch)))


def init_ray(address: str | None, num_cpus: int | None, dashboard: bool) -> dict[str, Any]:
    """Connect to ``address`` (or $RAY_ADDRESS), else start an embedded local Ray on 127.0.0.1.

    Ray 2.60 turns token authentication on for new local clusters and writes the token to
    ~/.ray/auth_token; we keep it on. A job submitted with ``ray job submit`` finds
    RAY_ADDRESS set by the job supervisor and connects to that cluster instead.
    """
    import ray

    if ray.is_initialized():
        return {"address": "already-initialized", "embedded": False}
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
        return {"address": address, "embedded": False}
    ray.init(
        num_cpus=num_cpus or os.cpu_count(),
        include_dashboard=dashboard,
        dashboard_host="127.0.0.1",
        _node_ip_address="127.0.0.1",
        log_to_driver=True,
    )
    return {"address": "local", "embedded": True}


class RayRunner:
    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        num_cpus: int | None = None,
        max_actors: int = 2,
        dashboard: bool = False,
        shutdown: bool = True,
    ) -> None:
        self.address, self.num_cpus, self.max_actors = address, num_cpus, max_actors
        self.dashboard, self.shutdown = dashboard, shutdown
        self.info: dict[str, Any] = {}

    def _actor_cpus(self, stages: list[Stage], cluster_cpus: float) -> dict[str, float]:
        pools = [s for s in stages if s.is_model_stage and s.resources.gpus == 0]
        if not pools:
            return {}
        budget = 0.5 * cluster_cpus / (len(pools) * self.max_actors)
        return {s.name: round(min(s.resources.cpus, budget), 3) for s in pools}

    def run(self, stages: list[Stage], inputs: Iterable[Sample]) -> Iterator[Sample]:
        import ray

        self.info = init_ray(self.address, self.num_cpus, self.dashboard)
        try:
            cluster_cpus = float(ray.cluster_resources().get("CPU", 1.0))
            actor_cpus = self._actor_cpus(stages, cluster_cpus)
            items = [{"sample": pickle.dumps(s, protocol=5)} for s in inputs]
            if not items:
                return
            # Small blocks: one video per block keeps payloads streaming instead of piling up.
            ds = ray.data.from_items(items, override_num_blocks=min(len(items), 200))
            for stage in stages:
                ds = self._apply(ds, stage, actor_cpus)
            for row in ds.iter_rows():
                yield pickle.loads(row["sample"])
        finally:
            if self.shutdown and self.info.get("embedded"):
                ray.shutdown()

    def _apply(self, ds: Any, stage: Stage, actor_cpus: dict[str, float]) -> Any:
        if hasattr(stage, "ray_apply"):  # e.g. vLLM through ray.data.llm works on the Dataset
            return stage.ray_apply(ds)
        common = {"batch_size": stage.batch_size, "batch_format": "numpy", "zero_copy_batch": False}
        if stage.is_model_stage:
            cpus = actor_cpus.get(stage.name, stage.resources.cpus)
            log.info("stage %s: actor pool of 1..%d, %.3g CPU / %.3g GPU each", stage.name, self.max_actors, cpus,
                     stage.resources.gpus)
            import ray

            return ds.map_batches(
                _StageActor, fn_constructor_args=(stage,),
                compute=ray.data.ActorPoolStrategy(min_size=1, max_size=self.max_actors),
                num_cpus=cpus, num_gpus=stage.resources.gpus or None, **common,
            )
        return ds.map_batches(_run_task, fn_args=(stage,), num_cpus=stage.resources.cpus, **common)
