"""What every corpus pipeline shares: run settings, flags, and ``run_corpus``.

``run_corpus`` is the whole life of a run: recover the dataset folder from any crash, skip
inputs already built with the same stage versions (incremental refresh), stream the rest
through the chosen runner into the one writer, fold the run's manifest, print the summary.
"""

from __future__ import annotations

import argparse
import hashlib
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

from pipelines.config import add_config_args, to_tree
from pipelines.config import load_config as _load_config
from pipelines.dataset import DatasetFolder
from pipelines.summary import print_summary
from pipelines.writer import RunWriter
from stages.base import Sample, Stage
from stages.ids import text_id

__all__ = ["RunConfig", "RunSummary", "add_common_args", "load_config", "make_runner", "run_corpus"]
log = logging.getLogger("memcorpus")


@dataclass(frozen=True)
class RunConfig:
    out: str = "out/dataset"
    runner: str = "ray"  # "ray" | "sequential"
    shard_max_samples: int = 64
    shard_max_bytes: int = 512 << 20
    commit_every_s: float = 60.0
    ray_address: str | None = None  # None: $RAY_ADDRESS if set, else an embedded local Ray
    ray_num_cpus: int | None = None
    ray_max_actors: int = 2
    ray_dashboard: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
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

    @property
    def exit_code(self) -> int:
        return 0


def add_common_args(p: argparse.ArgumentParser) -> None:
    add_config_args(p)
    p.add_argument("--out", help="dataset folder to create or refresh (run.out)")
    p.add_argument("--runner", choices=["ray", "sequential"], help="run.runner (default: ray)")
    p.add_argument("--ray-address", help="existing Ray cluster (default: $RAY_ADDRESS, else embedded local Ray)")
    p.add_argument("-v", "--verbose", action="store_true")


def common_flags(args: argparse.Namespace) -> dict[str, Any]:
    """The run.* overrides that add_common_args' flags carry."""
    return {"run__out": args.out, "run__runner": args.runner, "run__ray_address": args.ray_address}


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


def versions_of(stages: list[Stage]) -> tuple[dict[str, str], str]:
    versions = {s.name: s.version for s in stages}
    key = hashlib.blake2b(json.dumps(versions, sort_keys=True).encode(), digest_size=8).hexdigest()
    return versions, key


_SECRET = ("key", "token", "secret", "password", "credential")


def redact(tree: Any) -> Any:
    """The config as recorded in runs/<run>.json: values of secret-looking keys are never written."""
    if isinstance(tree, dict):
        return {k: "<redacted>" if any(w in k.lower() for w in _SECRET) and v else redact(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [redact(v) for v in tree]
    return tree


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def _select(inputs: Iterable[Sample], done: dict[str, set[str]], vkey: str, counts: Counter,
            dup_rejects: list[Sample]) -> list[Sample]:
    """Drop inputs built before with these versions; turn repeats of one content into rejects."""
    todo, seen = [], {}
    for s in inputs:
        counts["inputs"] += 1
        if vkey in done.get(s.id, ()):
            counts["skipped_done"] += 1
            continue
        if s.id in seen:
            # Same bytes under another name: one row of its own so inputs = accepted + rejected.
            src = json.dumps(s.source, sort_keys=True, default=str)
            dup = Sample(id=text_id(src, prefix="dup_"), source=s.source)
            if vkey in done.get(dup.id, ()):
                counts["skipped_done"] += 1
                continue
            dup_rejects.append(dup.reject("duplicate_input", stage="ingest", detail=f"same content as {seen[s.id]}"))
            continue
        seen[s.id] = json.dumps(s.source, sort_keys=True, default=str)
        todo.append(s)
    return todo


def run_corpus(corpus: str, cfg: Any, inputs: Iterable[Sample], stages: list[Stage],
               observe: Callable[[Sample], None] | None = None,
               tables: Callable[[], dict[str, str]] | None = None) -> RunSummary:
    """Build or refresh ``cfg.run.out`` from ``inputs`` through ``stages``. Returns the summary.

    ``observe`` sees every finished sample (e.g. to collect statistics); ``tables`` then gives
    extra markdown tables by title, printed after the summary and kept in the run record.
    """
    from tqdm import tqdm

    run_cfg: RunConfig = cfg.run
    t0 = time.perf_counter()
    folder = DatasetFolder(run_cfg.out, corpus)
    removed = folder.recover()
    if removed:
        log.warning("removed %d files left by an interrupted run (never listed in dataset.json)", len(removed))
    versions, vkey = versions_of(stages)
    run = new_run_id()
    summary = RunSummary(corpus=corpus, run=run, out=str(folder.root), runner=run_cfg.runner)
    dup_rejects: list[Sample] = []
    todo = _select(inputs, folder.done_inputs(), vkey, summary.counts, dup_rejects)
    summary.counts["processed"] = len(todo) + len(dup_rejects)
    writer = RunWriter(folder, run, versions, vkey, folder.committed_samples(), run_cfg.shard_max_samples,
                       run_cfg.shard_max_bytes, run_cfg.commit_every_s)
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
    print_summary(summary)
    return summary
