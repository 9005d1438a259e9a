"""The stage contract: one sample type flows through a list of small stages.

A stage is a dataclass whose fields are its settings. Heavy state (models, decoders) is
built in ``setup()``, which the runner calls once per worker after unpickling, so stages
ship cheaply to Ray workers. A stage never raises on one bad sample: it calls
``sample.reject(reason, ...)`` and the runner routes the sample to the rejects table.
Stages know nothing about Ray; the runner maps ``resources`` onto tasks or actor pools.
"""

from __future__ import annotations

import copy
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from stages.redact import redact_url


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


# Reject reasons that say nothing about the input: a crash, a hang, memory, a server that was
# down. The next run retries inputs rejected for these (``--no-retry-failed`` skips them), and
# a run with too many of them exits non-zero. Every other reason is the input's fault: final.
RETRYABLE = frozenset({
    "stage_error", "timeout", "out_of_memory", "extension_failed", "caption_server_unavailable",
    "caption_server_error", "caption_backend_error", "caption_inference_error",
})


def is_retryable(reason: str) -> bool:
    return reason in RETRYABLE or reason.removeprefix("captions_") in RETRYABLE


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
    shared_timings: tuple[str, ...] = ()  # stages timed on the parent before a split: shared by its parts
    footage_s: float = 0.0  # seconds of input video this input holds (set by the stage that probes it), for throughput

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
        # Details land in the rejects table: an error quoting a URL must not carry its credentials.
        self.errors.append({"stage": stage, "reason": reason, "detail": redact_url(detail)[:2000]})
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
            shared_timings=tuple(self.timings),
            footage_s=self.footage_s,  # the parent's: the writer divides it among the parts
        )


def _error_reason(e: BaseException) -> str:
    # A MemoryError is most often a setting (batch, resolution) too big for the worker: retryable.
    return "out_of_memory" if isinstance(e, MemoryError) else "stage_error"


def _snapshot(s: Sample) -> Sample:
    """A copy whose containers are independent of ``s`` (payload bytes/arrays are shared, not copied)."""
    c = copy.copy(s)
    for name in ("meta", "arrays", "blobs", "scratch", "timings"):
        setattr(c, name, dict(getattr(s, name)))
    c.errors = list(s.errors)
    return c


@dataclass
class Stage:
    """Base class. Subclasses set their settings as fields and implement ``process``.

    ``batch_size`` is how many samples one ``process`` call gets. ``version`` enters the
    manifest: bump it when the stage's output for the same input changes, so incremental
    refreshes rebuild what it produced. ``output_fields`` names the settings that change the
    output (thresholds, model paths, sizes); their values enter the refresh key next to the
    version, so changing one rebuilds like a version bump. Settings that only change speed or
    placement (resources, batch size, device, threads) stay out.
    """

    output_fields: ClassVar[tuple[str, ...]] = ()

    resources: Resources = field(default_factory=Resources)
    batch_size: int = 1
    version: str = "0"
    retries: int = 1  # extra attempts, one sample at a time, after process() raised on a batch
    timeout_s: float | None = None  # per process() call; a hung call rejects its samples with "timeout"

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def is_model_stage(self) -> bool:
        """Stages with heavy state run in actor pools so ``setup()`` is paid once per worker."""
        return self.resources.gpus > 0 or type(self).setup is not Stage.setup

    def output_config(self) -> dict[str, Any]:
        """The values of ``output_fields``, as plain data for the refresh key."""
        from dataclasses import asdict, is_dataclass

        missing = [f for f in self.output_fields if not hasattr(self, f)]
        assert not missing, f"{self.name}.output_fields names unknown fields {missing}"
        return {f: asdict(v) if is_dataclass(v) else v for f in self.output_fields for v in [getattr(self, f)]}

    def setup(self) -> None:
        """Build heavy state. Called once per worker, after unpickling."""

    def process(self, batch: list[Sample]) -> list[Sample]:
        raise NotImplementedError(f"{self.name} must implement process()")

    def __call__(self, batch: list[Sample]) -> list[Sample]:
        """Run ``process`` on the live samples; rejected ones pass through untouched.

        An exception escaping ``process`` is a bug or a flaky backend: rather than kill a long
        job, the batch is retried one sample at a time (``retries`` extra attempts each), so
        one bad sample cannot take its batch-mates down, and what still fails is rejected
        with the exception recorded. A call that outlives ``timeout_s`` rejects its samples
        with ``timeout`` and makes the next call rebuild the stage's state with ``setup()``.
        """
        live = [s for s in batch if not s.rejected]
        done = [s for s in batch if s.rejected]
        if not live:
            return done
        t0 = time.perf_counter()
        out, err = self._attempt(live)
        if err is not None:
            out = []
            for s in live:
                for attempt in range(self.retries + 1):
                    one, err = self._attempt([s])
                    if err is None or err[0] == "timeout":
                        break
                if err is not None:
                    one = [s.reject(err[0], stage=self.name, detail=f"after {attempt + 1} attempt(s): {err[1]}")]
                out.extend(one)
        per_sample = (time.perf_counter() - t0) / max(len(out), 1)  # a split shares its time among parts
        for s in out:
            s.timings[self.name] = s.timings.get(self.name, 0.0) + per_sample
        return done + out

    def _attempt(self, batch: list[Sample]) -> tuple[list[Sample], tuple[str, str] | None]:
        if getattr(self, "_needs_setup", False):
            self.setup()
            self._needs_setup = False
        snapshot = [_snapshot(s) for s in batch]  # process() may half-mutate samples before failing
        if self.timeout_s is None:
            try:
                return self.process(batch), None
            except Exception as e:  # noqa: BLE001 - recorded as a reject reason, never swallowed
                self._restore(batch, snapshot)
                return [], (_error_reason(e), "".join(traceback.format_exception_only(type(e), e)).strip())
        pool = ThreadPoolExecutor(max_workers=1)
        fut = pool.submit(self.process, batch)
        pool.shutdown(wait=False)
        try:
            return fut.result(timeout=self.timeout_s), None
        except FuturesTimeout:
            self._needs_setup = True  # the hung call still holds the old state; start afresh
            # The hung thread may still write into `batch`: hand on untouched copies instead.
            return [s.reject("timeout", self.name, f"no answer in {self.timeout_s:g} s") for s in snapshot], None
        except Exception as e:  # noqa: BLE001
            self._restore(batch, snapshot)
            return [], (_error_reason(e), "".join(traceback.format_exception_only(type(e), e)).strip())

    @staticmethod
    def _restore(batch: list[Sample], snapshot: list[Sample]) -> None:
        for s, snap in zip(batch, snapshot):
            s.__dict__.update(_snapshot(snap).__dict__)

    def describe(self) -> dict[str, Any]:
        """Settings as plain data, for the run record."""
        from dataclasses import asdict

        d = asdict(self)
        d["stage"] = self.name
        return d
