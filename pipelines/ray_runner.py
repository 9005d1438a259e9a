"""The Ray Data runner: ingest, the stage list and the shard writers, streamed through a Ray cluster.

The driver streams only chunk descriptors of the inputs' metadata (pipelines/metadata.py).
The first operator turns each chunk into input Samples on a worker (path checks, stat,
content ids) and asks the run's gate, a small actor on the driver's node, which ones to
build (pipelines/ingest.py). Light stages run as Ray tasks; stages with heavy state (a
``setup()`` or GPUs) run in autoscaling actor pools so the model loads once per actor, on
nodes with ``run.ray_model_resource`` when set. The last operator writes the shards on the
worker that holds the samples (pipelines/datasink.py); only small manifest rows come back
to the driver, whose ``RunWriter`` commits ``dataset.json`` (exactly once, as before).

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

from pipelines.datasink import ShardSpec, write_task
from pipelines.ingest import Gate, Ingest, admit_samples
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


def _in_batches(stage: Stage, samples: list[Sample]) -> list[Sample]:
    # A stage with batch_size 1 gets whole blocks from Ray Data (one call per block, not per row:
    # the per-batch conversions cost more than a rejected sample's pass-through) and takes them one by one.
    n = max(stage.batch_size, 1)
    return [out for i in range(0, len(samples), n) for out in stage(samples[i:i + n])]


class _StageActor:
    """One actor of a model stage's pool: ``setup()`` once, then batches."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        stage.setup()

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return to_column(_in_batches(self.stage, from_column(batch)))


def _run_task(batch: dict[str, np.ndarray], stage: Stage) -> dict[str, np.ndarray]:
    return to_column(_in_batches(stage, from_column(batch)))


def _named(fn: Any, name: str) -> Any:
    """``fn`` (a task function or an actor class) under the stage's name: Ray Data names its operators,
    progress lines and dashboard rows after the function, so ``MapBatches(ExtendTarget)``, not one
    ``MapBatches(_StageActor)`` per stage."""
    if isinstance(fn, type):
        return type(name, (fn,), {"__module__": fn.__module__, "__qualname__": name})

    def task(batch: dict[str, np.ndarray], *args: Any) -> dict[str, np.ndarray]:
        return fn(batch, *args)

    task.__name__ = task.__qualname__ = name
    return task


def _ingest_task(batch: dict[str, np.ndarray], ingest: Ingest, gate: Any) -> dict[str, np.ndarray]:
    """Chunk descriptors in, the inputs this run builds out (read, stat and hashed here, on a worker)."""
    import ray

    samples = [s for d in batch["desc"] for s in ingest.samples(pickle.loads(d))]
    return to_column(admit_samples(samples, lambda items: ray.get(gate.admit.remote(items))))


class GateActor:
    """The run's ``Gate`` (pipelines/ingest.py) as an actor: one place that sees every content id."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    def admit(self, items: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return self.gate.admit(items)

    def committed(self, keys: list[str]) -> dict[str, str]:
        return self.gate.committed(keys)

    def state(self) -> tuple[Any, dict[str, str]]:
        return self.gate.state()


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
        model_resource: str | None = None,
    ) -> None:
        self.address, self.num_cpus, self.max_actors = address, num_cpus, max_actors
        self.dashboard, self.shutdown, self.model_resource = dashboard, shutdown, model_resource
        self.info: dict[str, Any] = {}
        self.driver_payload_bytes = 0
        self.gate_state: tuple[Any, dict[str, str]] | None = None

    def _actor_cpus(self, stages: list[Stage], cluster_cpus: float) -> dict[str, float]:
        pools = [s for s in stages if s.is_model_stage and s.resources.gpus == 0]
        if not pools:
            return {}
        budget = 0.5 * cluster_cpus / (len(pools) * self.max_actors)
        return {s.name: round(min(s.resources.cpus, budget), 3) for s in pools}

    def run(self, stages: list[Stage], inputs: Iterable[Sample]) -> Iterator[Sample]:
        """Samples back to the driver (benchmarks/bench_runners.py; builds use ``write``)."""
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
                self.driver_payload_bytes += len(row["sample"])
                yield pickle.loads(row["sample"])
        finally:
            if self.shutdown and self.info.get("embedded"):
                ray.shutdown()

    def write(self, stages: list[Stage], ingest: Ingest, gate: Gate, spec: ShardSpec,
              local_out: bool) -> Iterator[dict[str, Any]]:
        """Ingest, stages and shard writing on the cluster; yields each write task's small result.

        ``gate_state`` holds the gate's counts and rebuild reasons once the stream is exhausted.
        """
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from pipelines.shared_storage import require_shared

        self.info = init_ray(self.address, self.num_cpus, self.dashboard)
        try:
            require_shared(spec.root, local_out)
            held = ray.cluster_resources()
            self.info.update(cluster_cpus=float(held.get("CPU", 0)), cluster_gpus=float(held.get("GPU", 0)))
            actor_cpus = self._actor_cpus(stages, float(held.get("CPU", 1.0)))
            here = NodeAffinitySchedulingStrategy(ray.get_runtime_context().get_node_id(), soft=False)
            actor = ray.remote(GateActor).options(num_cpus=0, scheduling_strategy=here).remote(gate)
            # Descriptors are small (a byte range, a row group, a few names): the metadata stays on storage.
            descs = [{"desc": pickle.dumps(d, protocol=5)} for d in ingest.descriptors()]
            if descs:
                ds = ray.data.from_items(descs, override_num_blocks=min(len(descs), 10_000))
                ds = ds.map_batches(_named(_ingest_task, "Ingest"), fn_args=(ingest, actor), batch_size=1,
                                    batch_format="numpy",
                                    zero_copy_batch=False, num_cpus=0.5)
                for stage in stages:
                    ds = self._apply(ds, stage, actor_cpus)
                ds = ds.map_batches(_named(write_task, "WriteShards"), fn_args=(spec, actor), batch_size=spec.max_samples,
                                    batch_format="numpy", zero_copy_batch=False, num_cpus=0.25)
                for row in ds.iter_rows():
                    self.driver_payload_bytes += len(row["result"])
                    yield pickle.loads(row["result"])
            self.gate_state = ray.get(actor.state.remote())
        finally:
            if self.shutdown and self.info.get("embedded"):
                ray.shutdown()

    def _apply(self, ds: Any, stage: Stage, actor_cpus: dict[str, float]) -> Any:
        if hasattr(stage, "ray_apply"):  # e.g. vLLM through ray.data.llm works on the Dataset
            return stage.ray_apply(ds)
        size = stage.batch_size if stage.batch_size > 1 else None  # None: whole blocks (see _in_batches)
        common = {"batch_size": size, "batch_format": "numpy", "zero_copy_batch": False}
        if stage.is_model_stage:
            cpus = actor_cpus.get(stage.name, stage.resources.cpus)
            log.info("stage %s: actor pool of 1..%d, %.3g CPU / %.3g GPU each", stage.name, self.max_actors, cpus,
                     stage.resources.gpus)
            import ray

            extra = {"resources": {self.model_resource: 0.001}} if self.model_resource else {}
            return ds.map_batches(
                _named(_StageActor, stage.name), fn_constructor_args=(stage,),
                compute=ray.data.ActorPoolStrategy(min_size=1, max_size=self.max_actors),
                num_cpus=cpus, num_gpus=stage.resources.gpus or None, **common, **extra,
            )
        return ds.map_batches(_named(_run_task, stage.name), fn_args=(stage,), num_cpus=stage.resources.cpus, **common)
