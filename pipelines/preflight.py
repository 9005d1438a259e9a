"""One front door for the corpus builders, and the checks that run before Ray starts.

``build_main(builder, argv)`` is every builder's ``main()`` (``memcorpus build <corpus>`` and
``python pipelines/build_<corpus>.py`` for ``ray job submit``): parse the flags, resolve the
config, check what a user can get wrong (model folders, the output folder) so a mistake is one
line and exit status 2 before any process starts, then either print the plan (``--dry-run``)
or build (``--limit N`` first inputs) and exit 3 when more than ``--max-reject-rate`` of the
inputs were rejected.

A builder module provides: ``CORPUS``, ``add_input_args(p)``, ``load(args, build_models)`` (the
config, demo models resolved), ``count_inputs(cfg)`` (cheap: listings, no media read),
``model_paths(cfg)`` (config key -> folder/file/hub id the stages will load), ``build_inputs``,
``build_stages`` and ``run(cfg, inputs)``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from types import ModuleType
from typing import Any

from pipelines.config import ConfigError

log = logging.getLogger("memcorpus")
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
_SUBMITTED_JOB_ENV = "RAY_JOB_CONFIG_JSON_ENV_VAR"  # set by `ray job submit`'s supervisor


def add_build_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--limit", type=int, metavar="N", help="build only the first N inputs (run.limit)")
    p.add_argument("--dry-run", action="store_true",
                   help="check and print the resolved config, models, inputs, output and resource plan; build nothing")
    p.add_argument("--max-reject-rate", type=float, metavar="R",
                   help="exit 3 when more than this share of the processed inputs was rejected (run.max_reject_rate)")


@dataclass
class Preflight:
    """What the checks found; ``--dry-run`` prints it."""

    models: dict[str, str] = field(default_factory=dict)  # key -> "<value>: <what was found>"
    output: str = ""
    warnings: list[str] = field(default_factory=list)


def joins_cluster(run: Any) -> bool:
    """True when the stages will run on a cluster's nodes, whose disks this process cannot see."""
    return bool(run.ray_address) or bool(os.environ.get(_SUBMITTED_JOB_ENV) and os.environ.get("RAY_ADDRESS"))


def check_model(key: str, value: str) -> str:
    """What ``value`` names: an existing file/folder, or a hub id in the local cache. Else ``ConfigError``."""
    p = Path(value).expanduser()
    if p.exists():
        return f"{'folder' if p.is_dir() else 'file'} {p.resolve()}"
    if "://" in value:
        return f"URI {value} (not checked)"
    if not p.is_absolute() and _HUB_ID.fullmatch(value):
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import LocalEntryNotFoundError

        try:
            return f"hub id, cached at {snapshot_download(value, local_files_only=True)}"
        except (LocalEntryNotFoundError, OSError, ValueError):
            if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
                raise ConfigError(f"{key}={value}: no such local folder, and not a hub id in the local cache "
                                  "(HF_HUB_OFFLINE=1: nothing is downloaded)") from None
            return "hub id, not cached: downloaded when a stage loads it (HF_HUB_OFFLINE=0)"
    raise ConfigError(f"{key}={value}: no such file or folder")


def check_output(out: str, corpus: str, force_new: bool) -> str:
    """The dataset folder: ours or empty (or --force-new), and writable. Creates nothing."""
    from pipelines import recovery
    from pipelines.dataset import INDEX, DatasetFolder

    if "://" not in out:
        p = Path(out).expanduser().resolve()
        if p.exists() and not p.is_dir():
            raise ConfigError(f"run.out={out}: exists and is not a folder")
        parent = p
        while not parent.exists():
            parent = parent.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            raise ConfigError(f"run.out={out}: {parent} is not writable")
    folder = DatasetFolder(out, corpus)
    if folder.store.exists(INDEX):
        idx = folder.index()  # format, corpus and schema version: a mismatch is a ValueError naming both
        return f"{folder.root}: {corpus} dataset with {len(idx['shards'])} shard(s); new inputs are appended"
    if recovery.has_content(folder.store) and not force_new:
        raise ConfigError(f"run.out={out}: has files but no {INDEX}; use another --out, or --force-new to start a "
                          "dataset beside them (nothing is deleted)")
    return f"{folder.root}: new dataset (writable)"


def preflight(builder: ModuleType, cfg: Any) -> Preflight:
    """Models present and the output folder usable; raises ``ConfigError`` naming the key or path."""
    pf = Preflight()
    remote = joins_cluster(cfg.run)
    for key, value in builder.model_paths(cfg).items():
        try:
            pf.models[key] = f"{value}: {check_model(key, value)}"
        except ConfigError as e:
            if not remote:
                raise
            # The stages load models on the cluster's nodes: their disks may hold what this one does not.
            pf.models[key] = f"{value}: not found here; the cluster's nodes must have it"
            pf.warnings.append(str(e))
    pf.output = check_output(cfg.run.out, builder.CORPUS, cfg.run.force_new)
    return pf


def resource_plan(stages: list[Any], run: Any) -> list[dict[str, Any]]:
    """Per stage: how it runs (actor pool / tasks / in-process) and the CPUs/GPUs each worker asks for."""
    if run.runner == "sequential":
        return [{"stage": s.name, "runs_as": "in-process (sequential runner)", "cpus": s.resources.cpus,
                 "gpus": s.resources.gpus} for s in stages]
    from pipelines.common import make_runner

    cluster_cpus = float(run.ray_num_cpus or os.cpu_count() or 1) if not joins_cluster(run) else None
    runner = make_runner(run)  # the runner the build would use; constructing it starts nothing
    placed = getattr(run, "ray_model_resource", None)
    # The runner caps CPU-only actor pools at half the cluster's CPUs; a cluster's size is known only once joined.
    capped = runner._actor_cpus(stages, cluster_cpus) if cluster_cpus else {}
    rows = []
    for s in stages:
        if hasattr(s, "ray_apply"):
            how = "its own Ray Data processor (ray.data.llm)"
        elif s.is_model_stage:
            how = f"actor pool, 1..{run.ray_max_actors} actors (model loaded once per actor)"
            how += f", on nodes with resource {placed!r}" if placed else ""
        else:
            how = "Ray tasks"
        rows.append({"stage": s.name, "runs_as": how, "cpus": capped.get(s.name, s.resources.cpus),
                     "gpus": s.resources.gpus})
    return rows


def print_plan(builder: ModuleType, cfg: Any, pf: Preflight) -> None:
    from pipelines.common import redact
    from pipelines.config import to_tree

    print(f"dry run: {builder.CORPUS} (nothing is built, Ray is not started)")
    print("config:")
    print(json.dumps(redact(to_tree(cfg)), indent=2, default=str))
    print("models:")
    for key, what in pf.models.items():
        print(f"  {key} = {what}")
    if not pf.models:
        print("  (none configured)")
    if note := getattr(builder, "demo_note", lambda c: None)(cfg):
        print(f"  {note}")
    counts = builder.count_inputs(cfg)
    total = sum(counts.values())
    limit = cfg.run.limit
    print(f"inputs: {total}" + (f" (--limit: the first {min(limit, total)} are built)" if limit else ""))
    for what, n in counts.items():
        print(f"  {what}: {n}")
    print(f"output: {pf.output}")
    where = "the cluster at " + str(cfg.run.ray_address) if joins_cluster(cfg.run) else (
        "in this process" if cfg.run.runner == "sequential" else "a new embedded Ray on 127.0.0.1")
    print(f"resources ({cfg.run.runner} runner, {where}):")
    for row in resource_plan(builder.build_stages(cfg), cfg.run):
        print(f"  {row['stage']:<22} {row['runs_as']}; {row['cpus']:g} CPU, {row['gpus']:g} GPU each")
    for w in pf.warnings:
        print(f"warning: {w}")


def limit_inputs(inputs: Any, n: int | None) -> Any:
    """The first ``n`` inputs. An ingest listing (``descriptors()``) is made into Samples here: n is small."""
    if not n:
        return inputs
    if hasattr(inputs, "descriptors"):
        from pipelines.ingest import Prepared

        return Prepared(list(islice(iter(inputs), n)))
    return islice(inputs, n)


def build_main(builder: ModuleType, argv: list[str] | None = None, prog: str | None = None) -> int:
    """The builder's ``main()``: user mistakes raise ``ConfigError`` (see ``exit_on_user_error``)."""
    from pipelines.common import add_common_args

    p = argparse.ArgumentParser(prog=prog, description=(builder.__doc__ or "").splitlines()[0])
    add_common_args(p)
    builder.add_input_args(p)
    add_build_args(p)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        cfg = builder.load(args, build_models=not args.dry_run)
        pf = preflight(builder, cfg)
    except ConfigError:
        raise
    except (ValueError, OSError) as e:  # a config value, an input path or the output folder: the user's to fix
        raise ConfigError(str(e)) from e
    if args.dry_run:
        print_plan(builder, cfg, pf)
        return 0
    for w in pf.warnings:
        log.warning("%s", w)
    from pipelines.lock import DatasetLocked

    try:
        summary = builder.run(cfg, limit_inputs(builder.build_inputs(cfg), cfg.run.limit))
    except DatasetLocked as e:  # another build holds the folder: nothing to debug, wait or pick another --out
        raise ConfigError(str(e)) from e
    if summary.too_many_rejected:
        log.error("%d of %d inputs were rejected (%.0f%%, more than --max-reject-rate %g): see the reasons above",
                  summary.counts["rejected"], summary.counts["rejected"] + summary.counts.get("accepted", 0),
                  100 * summary.reject_rate, cfg.run.max_reject_rate)
    return summary.exit_code
