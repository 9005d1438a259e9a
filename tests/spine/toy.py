"""A toy corpus for testing the spine without models: numbers in, small arrays out."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipelines.common import RunConfig
from stages.base import Resources, Sample, Stage
from stages.ids import text_id


@dataclass
class Square(Stage):
    """Payload = n squared; multiples of ``reject_every`` are rejected as 'unlucky'."""

    reject_every: int = 5
    resources: Resources = field(default_factory=lambda: Resources(cpus=0.25))
    version: str = "square/1"
    output_fields = ("reject_every",)

    def process(self, batch: list[Sample]) -> list[Sample]:
        for s in batch:
            n = s.source["n"]
            if n % self.reject_every == 0:
                s.reject("unlucky", self.name, f"{n} is a multiple of {self.reject_every}")
            else:
                s.arrays["square"] = np.array([n * n], dtype=np.int64)
                s.meta["n"] = n
        return batch


@dataclass
class Split(Stage):
    """Splits input n into n % 3 + 1 parts; odd parts of n=7 are rejected."""

    version: str = "split/1"

    def process(self, batch: list[Sample]) -> list[Sample]:
        out = []
        for s in batch:
            k = s.source["n"] % 3 + 1
            for i in range(k):
                c = s.child(i, k, key=f"p{i}")
                c.meta = {"n": s.source["n"], "part": i}
                c.blobs["part.txt"] = f"{s.source['n']}:{i}".encode()
                if s.source["n"] == 7 and i % 2:
                    c.reject("odd_part", self.name)
                out.append(c)
        return out


@dataclass
class DieAfter(Stage):
    """Kills the whole process (like SIGKILL) when it sees input ``n == at``: crash simulation."""

    at: int = -1
    version: str = "die/1"

    def process(self, batch: list[Sample]) -> list[Sample]:
        if any(s.source["n"] == self.at for s in batch):
            os._exit(9)
        return batch


@dataclass(frozen=True)
class ToyConfig:
    run: RunConfig = field(default_factory=lambda: RunConfig(out="out/toy", runner="sequential", progress=False))


def toy_inputs(ns) -> list[Sample]:
    return [Sample(id=text_id(f"n={n}"), source={"n": n}) for n in ns]


@dataclass
class KillWorkerOnce(Stage):
    """A model stage whose worker process SIGKILLs itself the first time it sees ``n == at``."""

    at: int = -1
    marker: str = ""  # a file that records the kill already happened (shared by all workers)
    resources: Resources = field(default_factory=lambda: Resources(cpus=0.5))
    version: str = "killer/1"

    def setup(self) -> None:
        self.pid = os.getpid()

    def process(self, batch: list[Sample]) -> list[Sample]:
        if any(s.source["n"] == self.at for s in batch) and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), 9)
        for s in batch:
            s.meta["worker_pid"] = self.pid
        return batch


@dataclass
class FailOn(Stage):
    """A flaky backend: raises for the inputs whose n is listed in ``fail_file`` (one per line) at call time."""

    fail_file: str = ""
    error: str = "RuntimeError"  # or "MemoryError"
    version: str = "fail/1"

    def process(self, batch: list[Sample]) -> list[Sample]:
        bad = set(Path(self.fail_file).read_text().split()) if os.path.exists(self.fail_file) else set()
        if any(str(s.source["n"]) in bad for s in batch):
            raise MemoryError("worker out of memory") if self.error == "MemoryError" else RuntimeError("backend down")
        return batch


@dataclass
class Slow(Stage):
    """Sleeps per batch: keeps a build running long enough for a second one to try the same folder."""

    seconds: float = 0.2
    version: str = "slow/1"

    def process(self, batch: list[Sample]) -> list[Sample]:
        import time

        time.sleep(self.seconds)
        return batch
