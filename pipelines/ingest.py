"""Inputs as metadata: the driver streams small records, workers read the media.

An ``Ingest`` describes a corpus's inputs in chunks. The driver only walks the metadata (a
pair list, a footage listing) and yields small chunk *descriptors* (byte ranges of a JSON
list or JSON Lines file, row groups of a Parquet file, a handful of file names). Turning a
chunk into input Samples (path checks, ``stat``, content ids, which read every byte of the
clips) runs where ``make`` is called: a Ray task next to the stages under the Ray runner
(pipelines/ray_runner.py), the driver itself under the local runner.

Which inputs are built is decided by a ``Gate`` (one per run; a Ray actor under the Ray
runner): it holds what the dataset already has (inputs done for this refresh key, inputs to
rebuild and why, samples already committed) and every content id seen in this run, so
refresh skips what is built and a second copy of the same bytes becomes one
``duplicate_input`` reject, exactly as when ingest ran on the driver.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from stages.base import Sample
from stages.ids import text_id

CHUNK = 256  # records per descriptor at most: one ingest task's worth


def chunk_sizes(chunk: int = CHUNK) -> Iterator[int]:
    """Sizes of successive chunks: 16 single records, then doubling up to ``chunk``.

    An ingest task's output is one block, and a stage works through a block in one task: small
    first chunks give a small corpus (a demo, a --limit trial) one task per input, while a big
    one soon moves in chunks of ``chunk`` records (few tasks, few descriptors on the driver).
    """
    for _ in range(16):
        yield 1
    size = 2
    while True:
        yield min(size, chunk)
        size *= 2


class Ingest(ABC):
    """Inputs in chunks: ``descriptors()`` runs on the driver, ``samples(desc)`` on a worker."""

    @abstractmethod
    def descriptors(self) -> Iterator[Any]: ...

    @abstractmethod
    def samples(self, desc: Any) -> list[Sample]: ...

    def __iter__(self) -> Iterator[Sample]:  # the local runner: everything in this process
        for desc in self.descriptors():
            yield from self.samples(desc)


class Prepared(Ingest):
    """Samples already made by the caller (tests, small corpora): chunks of them are the descriptors."""

    def __init__(self, inputs: Iterable[Sample], chunk: int = CHUNK) -> None:
        self.inputs, self.chunk = inputs, chunk

    def descriptors(self) -> Iterator[list[Sample]]:
        it, sizes = iter(self.inputs), chunk_sizes(self.chunk)
        while chunk := list(islice(it, next(sizes))):
            yield chunk

    def samples(self, desc: list[Sample]) -> list[Sample]:
        return desc

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.inputs)

    def __getstate__(self) -> dict[str, Any]:
        # Ingest tasks get the samples in their descriptors; the caller's iterable (often a generator) stays here.
        return {"inputs": (), "chunk": self.chunk}


class Limited(Ingest):
    """The first ``n`` inputs of another ingest (``--limit``): whole chunks, then part of the last one."""

    def __init__(self, inner: Ingest, n: int) -> None:
        self.inner, self.n = inner, n

    def descriptors(self) -> Iterator[tuple[Any, int]]:
        left = self.n
        for desc in self.inner.descriptors():
            if left <= 0:
                return
            count = desc[1] if isinstance(desc, tuple) else len(desc)  # (first, count, ...) or a list of items
            yield desc, min(count, left)
            left -= count

    def samples(self, desc: tuple[Any, int]) -> list[Sample]:
        return self.inner.samples(desc[0])[:desc[1]]


def as_ingest(inputs: Iterable[Sample] | Ingest) -> Ingest:
    return inputs if isinstance(inputs, Ingest) else Prepared(inputs)


def source_text(s: Sample) -> str:
    return json.dumps(s.source, sort_keys=True, default=str)


class Gate:
    """Admits an input once per run unless the dataset already holds it for this refresh key.

    ``done``: input ids whose live row is current; ``rebuild``: input id -> why it is built
    again (refresh, retry, repair); ``committed``: key -> shard of live samples with this
    refresh key (a resumed run never writes them twice). Everything else is new.
    """

    def __init__(self, done: set[str], rebuild: dict[str, str], committed: dict[str, str]) -> None:
        self.done, self.rebuild, self._committed = done, rebuild, committed
        self.seen: dict[str, str] = {}  # content id -> the first source with those bytes
        self.why: dict[str, str] = {}  # input id -> why this run rebuilds it (for the rows it supersedes)
        self.counts: Counter = Counter()

    def _todo(self, iid: str) -> bool:
        if iid in self.done:
            self.counts["skipped_done"] += 1
            return False
        if w := self.rebuild.get(iid):
            self.why[iid] = w
            self.counts[f"rebuilt_{w}"] += 1
        return True

    def admit(self, items: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """For each (content id, source text): ("todo", ""), ("done", ""), or ("dup", first source)."""
        out = []
        for iid, src in items:
            self.counts["inputs"] += 1
            if iid in self.seen:
                # Same bytes under another name: one row of its own so inputs = accepted + rejected.
                dup = text_id(src, prefix="dup_")
                out.append(("dup", self.seen[iid]) if self._todo(dup) else ("done", ""))
                continue
            self.seen[iid] = src
            out.append(("todo", "") if self._todo(iid) else ("done", ""))
        self.counts["processed"] += sum(d != "done" for d, _ in out)
        return out

    def filter(self, samples: list[Sample]) -> list[Sample]:
        return admit_samples(samples, self.admit)

    def committed(self, keys: list[str]) -> dict[str, str]:
        """key -> shard for the ``keys`` already live with this refresh key."""
        return {k: self._committed[k] for k in keys if k in self._committed}

    def state(self) -> tuple[Counter, dict[str, str]]:
        return self.counts, self.why


def admit_samples(samples: list[Sample], admit: Any) -> list[Sample]:
    """The samples to build, duplicates turned into rejects; ``admit`` is ``Gate.admit`` or a call to the actor."""
    srcs = [source_text(s) for s in samples]
    out = []
    for s, src, (d, first) in zip(samples, srcs, admit([(s.id, x) for s, x in zip(samples, srcs)])):
        if d == "todo":
            out.append(s)
        elif d == "dup":
            out.append(Sample(id=text_id(src, prefix="dup_"), source=s.source)
                       .reject("duplicate_input", stage="ingest", detail=f"same content as {first}"))
    return out


def gate_for(live: Any, vkey: str, retry_failed: bool) -> Gate:
    """The gate of a run on a dataset whose live state is ``live`` (pipelines/live.py)."""
    done, rebuild = set(), {}
    for iid in live.inputs:
        w = live.why_rebuild(iid, vkey, retry_failed)
        if w is None:
            done.add(iid)
        else:
            rebuild[iid] = w
    return Gate(done, rebuild, live.committed_for(vkey))
