"""What every corpus pipeline shares: run settings, flags, and ``run_corpus``.

``run_corpus`` is the whole life of a run: recover the dataset folder from any crash, skip
inputs already built with the same stage versions (incremental refresh), stream the rest
through the chosen runner into the one writer, fold the run's manifest, rewrite the dataset
card (README.md, pipelines/card.py), print the summary.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pipelines.card import write_card
from pipelines.config import add_config_args, to_tree
from pipelines.config import load_config as _load_config
from pipelines.dataset import DatasetFolder
from pipelines.execute import execute
from pipelines.ingest import Ingest, Limited, as_ingest, gate_for
from pipelines.interrupt import EXIT_INTERRUPTED, announce, deferred_sigint
from pipelines.live import refresh_key
from pipelines.lock import DatasetLock
from pipelines.progress import Progress
from pipelines.repair import repair
from pipelines.summary import print_summary
from pipelines.throughput import throughput
from pipelines.writer import RunWriter
from stages.base import Sample, Stage
from stages.redact import redact_url

__all__ = ["RunConfig", "RunSummary", "add_common_args", "load_config", "make_runner", "run_corpus"]
log = logging.getLogger("memcorpus")


@dataclass(frozen=True)
class RunConfig:
    out: str = "out/dataset"
    runner: str = "ray"  # "ray" | "sequential"
    shard_max_samples: int = 64
    shard_max_bytes: int = 512 << 20
    commit_every_s: float = 60.0
    ray_address: str | None = None  # None: a new embedded Ray on 127.0.0.1 ("auto": $RAY_ADDRESS / `ray start`)
    ray_num_cpus: int | None = None
    ray_max_actors: int = 2
    ray_dashboard: bool = False
    ray_model_resource: str | None = None  # a custom node resource model-stage actors need (pins them to those nodes)
    progress: bool = True
    progress_every_s: float = 30.0  # when stdout is not a terminal: one line per stage this often (pipelines/progress.py)
    force_new: bool = False  # start a dataset in a folder that has content but no dataset.json (deletes nothing)
    retry_failed: bool = True  # rebuild inputs rejected for retryable reasons (stage_error, timeout, OOM, server)
    max_retryable_fraction: float = 0.1  # more retryable failures than this share of processed inputs: exit 3
    limit: int | None = None  # build only the first N inputs (--limit): a trial run on real data
    max_reject_rate: float | None = None  # more rejected than this share of processed inputs: exit 3

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"run.limit must be >= 1, got {self.limit}")
        if self.max_reject_rate is not None and not 0.0 <= self.max_reject_rate <= 1.0:
            raise ValueError(f"run.max_reject_rate must be in [0, 1], got {self.max_reject_rate}")
        if not 0.0 <= self.max_retryable_fraction <= 1.0:
            raise ValueError(f"run.max_retryable_fraction must be in [0, 1], got {self.max_retryable_fraction}")
        if self.runner not in ("ray", "sequential"):
            raise ValueError(f"run.runner must be 'ray' or 'sequential', got {self.runner!r}")
        if self.shard_max_samples < 1:
            raise ValueError(f"run.shard_max_samples must be >= 1, got {self.shard_max_samples}")
        if not self.out:
            raise ValueError("run.out must name the dataset folder")


@dataclass
class RunSummary:
    corpus: str
    run: str
    out: str
    counts: Counter = field(default_factory=Counter)
    reasons: Counter = field(default_factory=Counter)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_samples: dict[str, float] = field(default_factory=lambda: Counter())
    shards: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    runner: str = ""
    tables: dict[str, str] = field(default_factory=dict)
    max_retryable_fraction: float = 1.0
    max_reject_rate: float | None = None

    @property
    def too_many_retryable(self) -> bool:
        n = self.counts.get("retryable_failed", 0)
        return n > 0 and n > self.max_retryable_fraction * self.counts.get("processed", 0)

    @property
    def reject_rate(self) -> float:
        """Rejected inputs over the inputs this run finished (skipped ones are not counted)."""
        done = self.counts.get("accepted", 0) + self.counts.get("rejected", 0)
        return self.counts.get("rejected", 0) / done if done else 0.0

    @property
    def too_many_rejected(self) -> bool:
        return self.max_reject_rate is not None and self.reject_rate > self.max_reject_rate

    @property
    def exit_code(self) -> int:
        """3 when too many inputs failed for retryable reasons, or more were rejected than --max-reject-rate."""
        return 3 if self.too_many_retryable or self.too_many_rejected else 0


def add_common_args(p: argparse.ArgumentParser) -> None:
    add_config_args(p)
    p.add_argument("--out", help="dataset folder to create or refresh (run.out)")
    p.add_argument("--runner", choices=["ray", "sequential"], help="run.runner (default: ray)")
    p.add_argument("--ray-address", help="join this Ray cluster ('auto': $RAY_ADDRESS or the `ray start` head); "
                   "default: a new embedded Ray listening on 127.0.0.1 only")
    p.add_argument("--force-new", action="store_true", default=None,
                   help="start a new dataset in a folder that has files but no dataset.json (nothing is deleted)")
    p.add_argument("--no-retry-failed", dest="retry_failed", action="store_false", default=None,
                   help="do not rebuild inputs rejected for retryable reasons (stage_error, timeout, OOM, server)")
    p.add_argument("--max-retryable-fraction", type=float, metavar="F",
                   help="exit 3 when more than this share of processed inputs fail retryably "
                        "(run.max_retryable_fraction, default 0.1)")
    p.add_argument("-v", "--verbose", action="store_true")


def common_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The run.* overrides that add_common_args' flags carry."""
    return {"run__out": args.out, "run__runner": args.runner, "run__ray_address": args.ray_address,
            "run__force_new": getattr(args, "force_new", None),
            "run__retry_failed": getattr(args, "retry_failed", None),
            "run__max_retryable_fraction": getattr(args, "max_retryable_fraction", None),
            "run__limit": getattr(args, "limit", None), "run__max_reject_rate": getattr(args, "max_reject_rate", None)}


def load_config(cls: type, args: argparse.Namespace | None = None, **flags: Any) -> Any:
    """Config from defaults, --config, --set, the common flags (--out, --runner, ...) and ``flags``."""
    common = common_flags(args) if args is not None and hasattr(args, "runner") else {}
    return _load_config(cls, args, **common, **flags)


def make_runner(run: RunConfig):
    if run.runner == "sequential":
        from pipelines.runner import SequentialRunner

        return SequentialRunner()
    from pipelines.ray_runner import RayRunner

    return RayRunner(run.ray_address, run.ray_num_cpus, run.ray_max_actors, run.ray_dashboard,
                     model_resource=run.ray_model_resource)


def versions_of(stages: list[Stage]) -> tuple[dict[str, Any], str]:
    """The refresh key: stage versions plus the settings each stage declares in ``output_fields``."""
    return refresh_key(stages)


_SECRET = ("key", "token", "secret", "password", "credential")


def redact(tree: Any) -> Any:
    """The config as recorded in runs/<run>.json: values of secret-looking keys are never written, and
    URLs anywhere lose their credentials (``captions.base_url=https://user:pw@host/v1?token=...``)."""
    if isinstance(tree, dict):
        return {k: "<redacted>" if any(w in k.lower() for w in _SECRET) and v else redact(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [redact(v) for v in tree]
    return redact_url(tree) if isinstance(tree, str) else tree


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def run_corpus(corpus: str, cfg: Any, inputs: Iterable[Sample] | Ingest, stages: list[Stage],
               observe: Callable[[Sample], None] | None = None,
               tables: Callable[[], dict[str, str]] | None = None) -> RunSummary:
    """Build or refresh ``cfg.run.out`` from ``inputs`` through ``stages``. Returns the summary.

    ``inputs``: an ``Ingest`` (pipelines/ingest.py: metadata streamed by the driver, media read
    by the workers) or input Samples the caller already made.
    ``observe`` sees every finished sample (e.g. to collect statistics); ``tables`` then gives
    extra markdown tables by title, printed after the summary and kept in the run record.
    The folder's lock is held from recovery to the final commit: a second build on the same
    folder is refused (``DatasetLocked``, naming the holder) before it touches anything.
    """
    folder = DatasetFolder(cfg.run.out, corpus)
    run = new_run_id()
    try:
        with DatasetLock(folder.store, run) as lock:
            folder.lock = lock
            return _run_locked(folder, run, corpus, cfg, inputs, stages, observe, tables)
    except KeyboardInterrupt:  # before or after the stages ran: nothing was half-committed (pipelines/interrupt.py)
        announce()
        raise SystemExit(EXIT_INTERRUPTED) from None


def _run_locked(folder: DatasetFolder, run: str, corpus: str, cfg: Any, inputs: Iterable[Sample],
                stages: list[Stage], observe: Callable[[Sample], None] | None,
                tables: Callable[[], dict[str, str]] | None) -> RunSummary:
    run_cfg: RunConfig = cfg.run
    t0 = time.perf_counter()
    removed = folder.recover(force_new=run_cfg.force_new)
    if removed:
        log.warning("removed %d files left by an interrupted run of this dataset", len(removed))
    # What a stat can see (a deleted or truncated shard, a deleted manifest part) is repaired now,
    # so this run rebuilds it; content damage needs `memcorpus repair` (checksums).
    damage = repair(folder, level="stat")
    if damage.requeued or damage.restored:
        log.warning("repaired before the run: %d manifest part(s) restored, %d input(s) requeued for rebuild",
                    len(damage.restored), len(damage.requeued))
    folder.begin_run(run)
    versions, vkey = versions_of(stages)
    summary = RunSummary(corpus=corpus, run=run, out=str(folder.root), runner=run_cfg.runner,
                         max_retryable_fraction=run_cfg.max_retryable_fraction, max_reject_rate=run_cfg.max_reject_rate)
    inputs = as_ingest(inputs)
    if getattr(run_cfg, "limit", None):
        inputs = Limited(inputs, run_cfg.limit)
    live = folder.live()
    gate = gate_for(live, vkey, run_cfg.retry_failed)
    by_input = live.by_input()
    writer = RunWriter(folder, run, versions, vkey, live.committed_for(vkey) if run_cfg.runner != "ray" else {},
                       run_cfg.shard_max_samples, run_cfg.shard_max_bytes, run_cfg.commit_every_s,
                       live_by_input={i: by_input[i] for i in gate.rebuild if i in by_input}, replaces=gate.rebuild)
    del live, by_input  # the gate and the writer keep what they need
    runner = make_runner(run_cfg)
    bar = Progress(corpus, enabled=run_cfg.progress, every_s=run_cfg.progress_every_s)
    interrupted = False
    try:
        execute(folder, run, stages, inputs, gate, writer, runner, summary, observe, bar)
    except KeyboardInterrupt:  # Ctrl-C: stop taking work, commit what is complete, record the run as interrupted
        interrupted = True
    bar.close()
    with deferred_sigint():
        _finish(folder, run, corpus, cfg, writer, runner, summary, tables, versions, vkey, t0, interrupted)
    if interrupted:
        announce()
        raise SystemExit(EXIT_INTERRUPTED)
    if summary.too_many_retryable:
        log.error("%d of %d processed inputs failed for retryable reasons (more than run.max_retryable_fraction=%g):"
                  " fix the cause, then rerun to retry them", summary.counts["retryable_failed"],
                  summary.counts["processed"], run_cfg.max_retryable_fraction)
    return summary


def _finish(folder: DatasetFolder, run: str, corpus: str, cfg: Any, writer: RunWriter, runner: Any,
            summary: RunSummary, tables: Callable[[], dict[str, str]] | None, versions: dict[str, Any], vkey: str,
            t0: float, interrupted: bool) -> None:
    """Commit the tail, write the run record and the card, print the summary (SIGINT held meanwhile)."""
    run_cfg: RunConfig = cfg.run
    if interrupted:
        writer.commit()  # inputs still open stay unlisted rows, as after a crash; their committed samples are kept
    else:
        writer.close()
    summary.counts.update(writer.counts)
    summary.reasons = writer.reasons
    summary.shards = writer.shards
    summary.wall_s = time.perf_counter() - t0
    summary.tables = tables() if tables is not None else {}
    record = {
        "run": run, "corpus": corpus, "complete": not interrupted, "config": redact(to_tree(cfg)), "versions": versions,
        "versions_key": vkey, "runner": run_cfg.runner, "runner_info": getattr(runner, "info", {}),
        "counts": dict(summary.counts), "reject_reasons": dict(summary.reasons),
        "stage_seconds": summary.stage_seconds, "stage_samples": dict(summary.stage_samples),
        "shards": summary.shards, "bytes_written": writer.bytes_written, "wall_s": summary.wall_s,
        "driver_payload_bytes": writer.driver_payload_bytes,
        "status": "interrupted" if interrupted else "complete",
        "throughput": throughput(writer.footage_s, summary.wall_s, getattr(runner, "info", {})),
        "tables": summary.tables,
        "host": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    folder.finish_run(run, record)
    write_card(folder)  # README.md: what the folder holds now, from the live manifest
    print_summary(summary)
