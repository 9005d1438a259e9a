"""The in-process sequential runner: same stage list as the Ray runner, no Ray.

Used by tests and for debugging (``--runner sequential``). Inputs are streamed in small
chunks through every stage, so memory stays bounded by one chunk's payloads.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice

from stages.base import Sample, Stage


def _batches(items: list[Sample], size: int) -> Iterator[list[Sample]]:
    for i in range(0, len(items), max(size, 1)):
        yield items[i : i + size]


def run_chunk(stages: list[Stage], chunk: list[Sample]) -> list[Sample]:
    """Push one chunk through every stage, honouring each stage's batch size."""
    for stage in stages:
        chunk = [out for batch in _batches(chunk, stage.batch_size) for out in stage(batch)]
    return chunk


class SequentialRunner:
    """Runs stages in this process. ``setup()`` is called once per stage per run."""

    name = "sequential"

    def __init__(self, chunk_size: int | None = None) -> None:
        self.chunk_size = chunk_size

    def run(self, stages: list[Stage], inputs: Iterable[Sample]) -> Iterator[Sample]:
        for stage in stages:
            stage.setup()
        size = self.chunk_size or max([s.batch_size for s in stages] + [1])
        it = iter(inputs)
        while chunk := list(islice(it, size)):
            yield from run_chunk(stages, chunk)
