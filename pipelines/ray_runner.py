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
from contextlib import contextmanager
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


LOOPBACK = "127.0.0.1"
# Set by the job supervisor of `ray job submit`, whose --address is how the user named the cluster.
_SUBMITTED_JOB_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"
_SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def init_ray(address: str | None, num_cpus: int | None = None, dashboard: bool = False,
             runtime_env: dict[str, Any] | None = None) -> dict[str, Any]:
    """Join the Ray cluster the user named, else start a new embedded Ray that listens on 127.0.0.1 only.

    A cluster is joined only when named: ``address`` (``--ray-address``; ``auto`` means $RAY_ADDRESS
    or the head ``ray start`` left on this host), or RAY_ADDRESS inside a ``ray job submit`` job. A
    stray RAY_ADDRESS or ``ray start`` head is otherwise ignored: joining it unasked runs our data on
    someone else's cluster (and then fails with "num_cpus and num_gpus must not be provided").
    Ray 2.60 turns token authentication on for new local clusters and writes the token to
    ~/.ray/auth_token; we keep it on.
    """
    import ray

    from stages.redact import redact_url

    if ray.is_initialized():
        return {"address": "already-initialized", "embedded": False}
    if not address and os.environ.get(_SUBMITTED_JOB_ENV) and os.environ.get("RAY_ADDRESS"):
        address = os.environ["RAY_ADDRESS"]
    if address:
        ray.init(address=address, log_to_driver=True, runtime_env=runtime_env)
        return {"address": redact_url(address), "embedded": False}  # the info lands in the run record
    with _loopback_only():
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=dashboard,
                 dashboard_host=LOOPBACK, _node_ip_address=LOOPBACK, log_to_driver=True, runtime_env=runtime_env)
    return {"address": "local", "embedded": True}


@contextmanager
def _loopback_only() -> Iterator[None]:
    """Make a new local Ray bind GCS, raylet, workers, agents and /metrics to 127.0.0.1.

    Ray replaces a node IP of 127.0.0.1 by the address of the default route
    (``services.resolve_ip_for_localhost``), so ``_node_ip_address`` alone leaves every server on
    eth0 or all interfaces. Ray's single-machine mode (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, the
    macOS/Windows default) keeps the node IP on loopback: the variable reaches the processes
    ``ray.init`` spawns, and the driver's copy of the constant, read when ray was imported, is set
    too. Both are restored afterwards so a later ``ray.init(address=...)`` still finds the real IP.
    tests/spine/test_ray_loopback.py fails if a Ray upgrade changes this.
    """
    from ray._private import ray_constants

    old_env, old_flag = os.environ.get(_SINGLE_MACHINE_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_SINGLE_MACHINE_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = old_flag
        if old_env is None:
            os.environ.pop(_SINGLE_MACHINE_ENV, None)
        else:
            os.environ[_SINGLE_MACHINE_ENV] = old_env


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
