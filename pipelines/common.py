"""What every corpus pipeline shares: run settings, flags, and ``run_corpus``.

``run_corpus`` is the whole life of a run: recover the dataset folder from any crash, skip
inputs already built with the same stage versions (incremental refresh), stream the rest
through the chosen runner into the one writer, fold the run's manifest, rewrite the dataset
card (README.md, pipelines/card.py), print the summary.
"""

from __future__ import annotations

import argparse
import json
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
from pipelines.live import Live, refresh_key
from pipelines.lock import DatasetLock
from pipelines.repair import repair
from pipelines.summary import print_summary
from pipelines.writer import RunWriter
from stages.base import Sample, Stage
from stages.ids import text_id
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
    progress: bool = True
    force_new: bool = False  # start a dataset in a folder that has content but no dataset.json (deletes nothing)
    retry_failed: bool = True  # rebuild inputs rejected for retryable reasons (stage_error, timeout, OOM, server)
    max_retryable_fraction: float = 0.1  # more retryable failures than this share of processed inputs: exit 3

    def __post_init__(self) -> None:
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

    @property
    def too_many_retryable(self) -> bool:
        n = self.counts.get("retryable_failed", 0)
        return n > 0 and n > self.max_retryable_fraction * self.counts.get("processed", 0)

    @property
    def exit_code(self) -> int:
        """3 when too many inputs failed for retryable reasons (the run needs attention, then a rerun)."""
        return 3 if self.too_many_retryable else 0


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
            "run__max_retryable_fraction": getattr(args, "max_retryable_fraction", None)}


def load_config(cls: type, args: argparse.Namespace | None = None, **flags: Any) -> Any:
    """Config from defaults, --config, --set, the common flags (--out, --runner, ...) and ``flags``."""
    common = common_flags(args) if args is not None and hasattr(args, "runner") else {}
    return _load_config(cls, args, **common, **flags)


def make_runner(run: RunConfig):
    if run.runner == "sequential":
        from pipelines.runner import SequentialRunner

        return SequentialRunner()
    from pipelines.ray_runner import RayRunner

    return RayRunner(run.ray_address, run.ray_num_cpus, run.ray_max_actors, run.ray_dashboard)


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


def _select(inputs: Iterable[Sample], live: Live, vkey: str, retry_failed: bool, counts: Counter,
            dup_rejects: list[Sample], why: dict[str, str]) -> list[Sample]:
    """Drop inputs whose live row is done for this refresh key; turn repeats of one content into rejects.

    ``why`` gets, for every input built again, the reason its new row supersedes the old one.
    """
    todo, seen = [], {}

    def done(iid: str) -> bool:
        w = live.why_rebuild(iid, vkey, retry_failed)
        if w is None:
            counts["skipped_done"] += 1
            return True
        if w:
            why[iid] = w
            counts[f"rebuilt_{w}"] += 1
        return False

    for s in inputs:
        counts["inputs"] += 1
        if s.id in seen:
            # Same bytes under another name: one row of its own so inputs = accepted + rejected.
            src = json.dumps(s.source, sort_keys=True, default=str)
            dup = Sample(id=text_id(src, prefix="dup_"), source=s.source)
            if not done(dup.id):
                dup_rejects.append(dup.reject("duplicate_input", stage="ingest",
                                              detail=f"same content as {seen[s.id]}"))
            continue
        seen[s.id] = json.dumps(s.source, sort_keys=True, default=str)
        if not done(s.id):
            todo.append(s)
    return todo


def run_corpus(corpus: str, cfg: Any, inputs: Iterable[Sample], stages: list[Stage],
               observe: Callable[[Sample], None] | None = None,
               tables: Callable[[], dict[str, str]] | None = None) -> RunSummary:
    """Build or refresh ``cfg.run.out`` from ``inputs`` through ``stages``. Returns the summary.

    ``observe`` sees every finished sample (e.g. to collect statistics); ``tables`` then gives
    extra markdown tables by title, printed after the summary and kept in the run record.
    The folder's lock is held from recovery to the final commit: a second build on the same
    folder is refused (``DatasetLocked``, naming the holder) before it touches anything.
    """
    folder = DatasetFolder(cfg.run.out, corpus)
    run = new_run_id()
    with DatasetLock(folder.store, run) as lock:
        folder.lock = lock
        return _run_locked(folder, run, corpus, cfg, inputs, stages, observe, tables)


def _run_locked(folder: DatasetFolder, run: str, corpus: str, cfg: Any, inputs: Iterable[Sample],
                stages: list[Stage], observe: Callable[[Sample], None] | None,
                tables: Callable[[], dict[str, str]] | None) -> RunSummary:
    from tqdm import tqdm

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
                         max_retryable_fraction=run_cfg.max_retryable_fraction)
    dup_rejects: list[Sample] = []
    live, why = folder.live(), {}
    todo = _select(inputs, live, vkey, run_cfg.retry_failed, summary.counts, dup_rejects, why)
    summary.counts["processed"] = len(todo) + len(dup_rejects)
    by_input = live.by_input()
    writer = RunWriter(folder, run, versions, vkey, live.committed_for(vkey), run_cfg.shard_max_samples,
                       run_cfg.shard_max_bytes, run_cfg.commit_every_s,
                       live_by_input={i: by_input[i] for i in why if i in by_input}, replaces=why)
    runner = make_runner(run_cfg)
    bar = tqdm(total=len(todo), desc=f"{corpus} inputs", unit="input", disable=not run_cfg.progress)
    for s in dup_rejects:
        writer.write(s)
    for s in runner.run(stages, todo):
        writer.write(s)
        if observe is not None:
            observe(s)
        for name, sec in s.timings.items():
            # Parts of a split input inherit the parent's timings: count those stages once per input.
            share = s.part[1] if name in s.shared_timings else 1
            summary.stage_seconds[name] = summary.stage_seconds.get(name, 0.0) + sec / share
            summary.stage_samples[name] += 1 / share
        bar.update(writer.counts["accepted"] + writer.counts["rejected"] - len(dup_rejects) - bar.n)
    bar.close()
    writer.close()
    summary.counts.update(writer.counts)
    summary.reasons = writer.reasons
    summary.shards = writer.shards
    summary.wall_s = time.perf_counter() - t0
    summary.tables = tables() if tables is not None else {}
    record = {
        "run": run, "corpus": corpus, "complete": True, "config": redact(to_tree(cfg)), "versions": versions,
        "versions_key": vkey, "runner": run_cfg.runner, "runner_info": getattr(runner, "info", {}),
        "counts": dict(summary.counts), "reject_reasons": dict(summary.reasons),
        "stage_seconds": summary.stage_seconds, "stage_samples": dict(summary.stage_samples),
        "shards": summary.shards, "bytes_written": writer.bytes_written, "wall_s": summary.wall_s,
        "tables": summary.tables,
        "host": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    folder.finish_run(run, record)
    write_card(folder)  # README.md: what the folder holds now, from the live manifest
    print_summary(summary)
    if summary.too_many_retryable:
        log.error("%d of %d processed inputs failed for retryable reasons (more than run.max_retryable_fraction=%g):"
                  " fix the cause, then rerun to retry them", summary.counts["retryable_failed"],
                  summary.counts["processed"], run_cfg.max_retryable_fraction)
    return summary
