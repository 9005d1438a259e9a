"""The Ray runner's last stage: shards written on the worker that holds the samples.

A write task gets a batch of finished samples, asks the run's gate which keys a crashed run
already committed, tars the rest (temporary name, fsync, rename to a name no other attempt
uses) and returns one small row per sample plus the shard entries. Only those rows travel
to the driver, which commits ``dataset.json`` (pipelines/writer.py ``RunWriter.take``). A task
Ray retries writes its shard again under a new name; the first attempt's file is never
listed, and the next run's recovery deletes it (pipelines/recovery.py).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Any

import numpy as np

from pipelines.storage import Storage
from pipelines.writer import ShardWriter, worker_shard_name
from stages.base import Sample


@dataclass(frozen=True)
class ShardSpec:
    """What a write task needs to know: where, for which corpus and run, and the shard limits."""

    root: str
    corpus: str
    run: str
    versions_key: str
    max_samples: int
    max_bytes: int
    keep_meta: bool | tuple[str, ...] = False  # rows carry meta (True) or these meta keys, for a driver-side observer


def write_samples(samples: list[Sample], spec: ShardSpec, committed: dict[str, str]) -> dict[str, Any]:
    """Write ``samples`` into as many shards as the limits need; ``{"rows": [...], "shards": [...]}``."""
    w = ShardWriter(Storage(spec.root), spec.corpus, spec.run, spec.versions_key, committed,
                    worker_shard_name(spec.corpus, spec.run), keep_meta=spec.keep_meta)
    rows, shards = [], []
    for s in samples:
        rows.append(w.add(s))
        if full := w.full(spec.max_samples, spec.max_bytes):
            shards += w.close(full)
    shards += w.close()
    return {"rows": rows, "shards": shards}


def write_task(batch: dict[str, np.ndarray], spec: ShardSpec, gate: Any) -> dict[str, np.ndarray]:
    """Ray Data ``map_batches`` function: pickled samples in, one pickled result out."""
    import ray

    samples = [pickle.loads(b) for b in batch["sample"]]
    keys = [s.id for s in samples if not s.rejected]
    committed = ray.get(gate.committed.remote(keys)) if keys else {}
    out = np.empty(1, dtype=object)
    out[0] = pickle.dumps(write_samples(samples, spec, committed), protocol=5)
    return {"result": out}
