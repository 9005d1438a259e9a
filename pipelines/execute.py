"""The middle of a run: inputs through the stages into committed shards, under either runner.

Under the Ray runner nothing heavy touches the driver: ingest tasks read and hash the media,
write tasks tar the samples where they were made, and the driver gets one small row per
sample, from which ``RunWriter`` does the per-input bookkeeping and commits ``dataset.json``.
The local runner does all of it in this process. Both go through the same ``Gate`` (which
inputs to build) and the same ``ShardWriter`` (how a shard is written), so the dataset they
leave is the same.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

from pipelines.dataset import DatasetFolder
from pipelines.datasink import ShardSpec
from pipelines.ingest import Gate, Ingest
from pipelines.interrupt import deferred_sigint
from pipelines.writer import RunWriter
from stages.base import Sample, Stage

log = logging.getLogger("memcorpus")


def _light(row: dict[str, Any]) -> Sample:
    """What a driver-side observer sees of a sample a worker wrote: ids, status and ``meta``."""
    s = Sample(id=row["key"], source=row["source"], input_id=row["input_id"], part=tuple(row["part"]),
               meta=row.get("meta") or {}, timings=row["timings"], shared_timings=row["shared"])
    if row["status"] == "rejected":
        s.reject(row["reason"], row["stage"], row["detail"])
    return s


def _meta_wanted(observe: Callable[[Sample], None] | None) -> bool | tuple[str, ...]:
    """What of ``meta`` the rows carry: nothing without an observer, its ``meta_keys`` when it names them."""
    if observe is None:
        return False
    return tuple(getattr(observe, "meta_keys", ())) or True


def _gated(ingest: Ingest, gate: Gate) -> Iterator[Sample]:
    for desc in ingest.descriptors():
        yield from gate.filter(ingest.samples(desc))


def _drop_orphans(folder: DatasetFolder, run: str, listed: set[str]) -> None:
    """Shards of this run no commit lists: a write task Ray retried left its first attempt's file behind."""
    mark = f"{folder.corpus}-{run}-"
    for rel in folder.store.files("shards"):
        name = rel.rsplit("/", 1)[-1]
        if mark in name and name.endswith((".tar", ".tar.tmp")) and rel not in listed:
            log.warning("removing %s: written by a write task Ray retried, never listed in dataset.json", rel)
            folder.store.remove(rel)


def execute(folder: DatasetFolder, run: str, stages: list[Stage], ingest: Ingest, gate: Gate, writer: RunWriter,
            runner: Any, summary: Any, observe: Callable[[Sample], None] | None, bar: Any) -> None:
    """Stream every input through ``stages`` into ``writer``; counts and timings land in ``summary``."""

    def account(row: dict[str, Any]) -> None:
        for name, sec in row["timings"].items():
            # Parts of a split input inherit the parent's timings: count those stages once per input.
            share = row["part"][1] if name in row["shared"] else 1
            summary.stage_seconds[name] = summary.stage_seconds.get(name, 0.0) + sec / share
            summary.stage_samples[name] += 1 / share
        bar.update(writer.counts["accepted"] + writer.counts["rejected"], summary)

    if runner.name == "ray":
        spec = ShardSpec(str(folder.root), folder.corpus, run, writer.versions_key, writer.max_samples,
                         writer.max_bytes, keep_meta=_meta_wanted(observe))
        for result in runner.write(stages, ingest, gate, spec, folder.store.local):
            with deferred_sigint():  # a commit is never cut in half by Ctrl-C (pipelines/interrupt.py)
                writer.take(result["rows"], result["shards"])
            for row in result["rows"]:
                if observe is not None:
                    observe(_light(row))
                account(row)
        writer.driver_payload_bytes += runner.driver_payload_bytes
        counts, _ = runner.gate_state or (gate.counts, gate.why)
        _drop_orphans(folder, run, set(writer.shards))
    else:
        for s in runner.run(stages, _gated(ingest, gate)):
            with deferred_sigint():
                row = writer.write(s)
            if observe is not None:
                observe(s)
            account(row)
        counts = gate.counts
    summary.counts.update(counts)
