"""The stage contract: one sample type flows through a list of small stages.

A stage is a dataclass whose fields are its settings. Heavy state (models, decoders) is
built in ``setup()``, which the runner calls once per worker after unpickling, so stages
ship cheaply to Ray workers. A stage never raises on one bad sample: it calls
``sample.reject(reason, ...)`` and the runner routes the sample to the rejects table.
Stages know nothing about Ray; the runner maps ``resources`` onto tasks or actor pools.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Resources:
    """What one worker of a stage needs. Fractions are allowed (and needed on 2 cores)."""

    cpus: float = 1.0
    gpus: float = 0.0

    def __post_init__(self) -> None:
        if self.cpus < 0 or self.gpus < 0:
            raise ValueError(f"Resources must be non-negative, got cpus={self.cpus} gpus={self.gpus}")
        if self.cpus == 0 and self.gpus == 0:
            raise ValueError("Resources(cpus=0, gpus=0) would schedule unbounded workers; give cpus > 0")


ACCEPTED = "accepted"
REJECTED = "rejected"
PENDING = "pending"


@dataclass
class Sample:
    """One unit of work, gaining fields as it flows through the stages.

    ``id`` is the content-derived key of what will be written (tar key). ``input_id`` is
    the id of the input it came from: equal to ``id`` unless a stage split one input into
    several samples (``part = (index, total)``), e.g. one film into many sequences.
    Outputs: ``meta`` (JSON-able, written as ``.json``), ``arrays`` (written as ``.npy``,
    never pickled) and ``blobs`` (already-encoded bytes such as ``.mp4``/``.jpg``), keyed by
    member name without the sample key, e.g. ``{"target.mp4": b"..."}``.
    ``scratch`` is for values passed between stages and never written.
    """

    id: str
    source: dict[str, Any]
    input_id: str = ""
    part: tuple[int, int] = (0, 1)
    meta: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    scratch: dict[str, Any] = field(default_factory=dict)
    status: str = PENDING
    reason: str = ""
    reject_stage: str = ""
    errors: list[dict[str, str]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.input_id:
            self.input_id = self.id

    @property
    def rejected(self) -> bool:
        return self.status == REJECTED

    def reject(self, reason: str, stage: str, detail: str = "") -> Sample:
        """Mark this sample rejected. ``reason`` is a short stable slug used for counting."""
        assert reason, "a reject needs a reason"
        self.status = REJECTED
        self.reason = reason
        self.reject_stage = stage
        self.errors.append({"stage": stage, "reason": reason, "detail": detail[:2000]})
        # Payloads of a rejected sample are never written; free them now so they do not
        # travel through the remaining stages and the object store.
        self.arrays.clear()
        self.blobs.clear()
        self.scratch.clear()
        return self

    def child(self, index: int, total: int, key: str) -> Sample:
        """A new sample split off this input (part ``index`` of ``total``)."""
        assert 0 <= index < total, (index, total)
        return Sample(
            id=f"{self.input_id}_{key}",
            source=self.source,
            input_id=self.input_id,
            part=(index, total),
            meta={},
            timings=dict(self.timings),
        )


@dataclass
class Stage:
    """Base class. Subclasses set their settings as fields and implement ``process``.

    ``batch_size`` is how many samples one ``process`` call gets. ``version`` enters the
    manifest: bump it when the stage's output for the same input changes, so incremental
    refreshes rebuild what it produced.
    """

    resources: Resources = field(default_factory=Resources)
    batch_size: int = 1
    version: str = "0"

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def is_model_stage(self) -> bool:
        """Stages with heavy state run in actor pools so ``setup()`` is paid once per worker."""
        return self.resources.gpus > 0 or type(self).setup is not Stage.setup

    def setup(self) -> None:
        """Build heavy state. Called once per worker, after unpickling."""

    def process(self, batch: list[Sample]) -> list[Sample]:
        raise NotImplementedError(f"{self.name} must implement process()")

    def __call__(self, batch: list[Sample]) -> list[Sample]:
        """Run ``process`` on the live samples; rejected ones pass through untouched.

        An exception escaping ``process`` is a bug or an unforeseen input: rather than kill
        a long job, every sample of the batch is rejected with the exception recorded.
        """
        live = [s for s in batch if not s.rejected]
        done = [s for s in batch if s.rejected]
        if not live:
            return done
        t0 = time.perf_counter()
        try:
            out = self.process(live)
        except Exception as e:  # noqa: BLE001 - recorded as a reject reason, never swallowed
            detail = "".join(traceback.format_exception_only(type(e), e)).strip()
            out = [s.reject("stage_error", stage=self.name, detail=detail) for s in live]
        per_sample = (time.perf_counter() - t0) / max(len(live), 1)
        for s in out:
            s.timings[self.name] = s.timings.get(self.name, 0.0) + per_sample
        return done + out

    def describe(self) -> dict[str, Any]:
        """Settings as plain data, for the run record."""
        from dataclasses import asdict

        d = asdict(self)
        d["stage"] = self.name
        return d
