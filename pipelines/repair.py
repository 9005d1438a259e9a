"""``memcorpus repair``: make damage visible and rebuildable instead of permanent.

A deleted manifest part once crashed every later run; a truncated or deleted shard made verify
fail while every rerun said "already built". Repair (and, for what a stat can see, the start
of every run) does this under the folder's lock:

- a ``memcorpus/1`` folder's manifest is moved to the table folders, and committed parts left under
  their pending names by an interrupted commit are renamed (pipelines/manifest.py).
- a listed manifest part that is missing is rebuilt from what remains: samples from the run's
  shards (keys, sizes, fresh digests), inputs from the samples and rejects tables, rejects
  from the inputs table. An input's ``source`` cannot be recovered and is left empty.
- samples whose shard is missing, truncated or unreadable, or whose members no longer match
  their recorded checksums, are retired (a shard that cannot be read to its end is marked
  ``damaged`` and given up whole, since a reader would stop at the break), and their inputs are
  put on ``dataset.json["requeue"]``, which the next build of the corpus rebuilds.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from pipelines import manifest
from pipelines.dataset import DatasetFolder, read_table, retire_keys, write_table
from pipelines.live import fully_retired, live_state
from pipelines.shardscan import compare, scan_shard
from stages.base import is_retryable

log = logging.getLogger("memcorpus")


@dataclass
class Damage:
    shard: str
    keys: list[str]  # sample keys given up
    why: str
    whole: bool  # the shard cannot be read at all (or to its end)


@dataclass
class RepairReport:
    restored: list[str] = field(default_factory=list)
    damage: list[Damage] = field(default_factory=list)
    requeued: dict[str, str] = field(default_factory=dict)
    migrated: bool = False  # a memcorpus/1 manifest was moved to manifest/<table>/ (pipelines/manifest.py)
    published: list[str] = field(default_factory=list)  # committed parts renamed from their pending names


def _rows_of_run(folder: DatasetFolder, idx: dict[str, Any], run: str, table: str) -> list[dict[str, Any]]:
    return [r for m in idx["manifests"]
            if m["run"] == run and m.get(table) and manifest.part_exists(folder.store, m[table])
            for r in read_table(folder.store, m[table], table)]


def _restore_samples(folder: DatasetFolder, idx: dict[str, Any], run: str) -> list[dict[str, Any]]:
    have = {r["key"] for r in _rows_of_run(folder, idx, run, "samples")}
    inputs = _rows_of_run(folder, idx, run, "inputs")
    owner = {k: r["id"] for r in inputs for k in r["samples"] or ()}
    vkey = next((r["versions_key"] for r in inputs), None)
    rows = []
    for s in idx["shards"]:
        if s.get("run") != run or not folder.store.exists(s["path"]):
            continue
        scan = scan_shard(folder.store, s["path"])
        for key, members in scan.members.items():
            if key not in have:
                rows.append({"key": key, "input_id": owner.get(key, key), "shard": s["path"], "run": run,
                             "bytes": sum(n for n, _ in members.values()), "versions_key": vkey,
                             "members": [{"name": k, "size": n, "blake2b": h} for k, (n, h) in members.items()]})
    return rows


def _restore_inputs(folder: DatasetFolder, idx: dict[str, Any], run: str) -> list[dict[str, Any]]:
    have = {r["id"] for r in _rows_of_run(folder, idx, run, "inputs")}
    rec = f"runs/{run}.json"
    versions = json.loads(folder.store.read_bytes(rec)).get("versions", {}) if folder.store.exists(rec) else {}
    samples, rejects = _rows_of_run(folder, idx, run, "samples"), _rows_of_run(folder, idx, run, "rejects")
    by_input: dict[str, list[dict]] = {}
    for r in samples:
        by_input.setdefault(r["input_id"], []).append(r)
    reasons: dict[str, Counter] = {}
    for r in rejects:
        reasons.setdefault(r["input_id"], Counter())[r["reason"]] += 1
    vkey = next((r["versions_key"] for r in samples if r.get("versions_key")), "")
    rows = []
    for iid in sorted((set(by_input) | set(reasons)) - have):
        got = by_input.get(iid, [])
        reason = "" if got else reasons[iid].most_common(1)[0][0]
        rows.append({"id": iid, "source": "", "status": "accepted" if got else "rejected", "reason": reason,
                     "stage": "", "detail": "restored by repair from shards and rejects; source unknown",
                     "samples": sorted(r["key"] for r in got), "shards": sorted({r["shard"] for r in got}),
                     "versions": json.dumps(versions, sort_keys=True), "versions_key": vkey, "run": run,
                     "retryable": any(is_retryable(x) for x in reasons.get(iid, ())), "replaces": ""})
    return rows


def _restore_rejects(folder: DatasetFolder, idx: dict[str, Any], run: str) -> list[dict[str, Any]]:
    have = {r["input_id"] for r in _rows_of_run(folder, idx, run, "rejects")}
    return [{"key": r["id"], "input_id": r["id"], "stage": r["stage"], "reason": r["reason"],
             "detail": r["detail"], "run": run, "retryable": bool(r.get("retryable"))}
            for r in _rows_of_run(folder, idx, run, "inputs") if r["status"] == "rejected" and r["id"] not in have]


def restore_parts(folder: DatasetFolder, idx: dict[str, Any], dry_run: bool = False) -> list[str]:
    """Rewrite every listed manifest part that is missing from what the other tables and the shards hold."""
    restored = []
    for t, build in (("samples", _restore_samples), ("inputs", _restore_inputs), ("rejects", _restore_rejects)):
        for m in idx["manifests"]:
            if m.get(t) and not manifest.part_exists(folder.store, m[t]):
                rows = [{**r, "commit": m.get("commit")} for r in build(folder, idx, m["run"])]
                log.warning("manifest part %s is missing: %s %d rows from what remains", m[t],
                            "would restore" if dry_run else "restoring", len(rows))
                if not dry_run:
                    write_table(folder.store, m[t], t, rows)
                restored.append(m[t])
    return restored


def find_damage(folder: DatasetFolder, idx: dict[str, Any], level: str = "full") -> list[Damage]:
    """Damaged samples of live shards. ``level``: "stat" (exists, size), "quick" (+ tar headers), "full" (+ digests)."""
    rows = [r for m in idx["manifests"] if m.get("samples") and manifest.part_exists(folder.store, m["samples"])
            for r in read_table(folder.store, m["samples"], "samples")]
    live = live_state(idx, [], rows)
    keys_in: dict[str, list[str]] = {}
    for r in rows:
        keys_in.setdefault(r["shard"], []).append(r["key"])
    # One listing for every size: each run does this, and a HEAD per shard is slow on object stores.
    top = folder.store.path("shards")
    listing = folder.store.fs.ls(top, detail=True) if folder.store.fs.exists(top) else []
    sizes = {"shards/" + e["name"].rstrip("/").rsplit("/", 1)[-1]: e.get("size") for e in listing
             if e.get("type") == "file"}
    out = []
    for s in idx["shards"]:
        rel, all_keys = s["path"], sorted(set(keys_in.get(s["path"], ())))
        if fully_retired(s):
            continue
        if rel not in sizes:
            out.append(Damage(rel, all_keys, "shard missing", True))
            continue
        size = sizes[rel]
        if s.get("bytes") is not None and size != s["bytes"]:
            out.append(Damage(rel, all_keys, f"shard is {size} bytes, {s['bytes']} when committed", True))
            continue
        if level == "stat":
            continue
        scan = scan_shard(folder.store, rel, quick=level == "quick")
        if scan.error:
            out.append(Damage(rel, all_keys, f"shard unreadable: {scan.error}", True))
            continue
        bad = {}
        for key, r in live.samples.items():
            if r["shard"] == rel and (why := compare(r, scan.members.get(key))):
                bad[key] = why
        if bad:
            first = next(iter(bad.items()))
            out.append(Damage(rel, sorted(bad), f"{len(bad)} sample(s) damaged, e.g. {first[0]}: {first[1]}", False))
    return out


def apply_damage(folder: DatasetFolder, damage: list[Damage]) -> dict[str, str]:
    """Retire the damaged samples and requeue their inputs, in one index write. Returns the requeued inputs."""
    if not damage:
        return {}
    live = folder.live()
    idx = folder.index()
    requeue = dict(idx.get("requeue") or {})
    for d in damage:
        retire_keys(idx, [(d.shard, k) for k in d.keys])
        if d.whole:
            next(s for s in idx["shards"] if s["path"] == d.shard)["damaged"] = d.why
        for k in d.keys:
            r = live.samples.get(k)
            if r is not None and r["shard"] == d.shard:
                requeue[r["input_id"]] = f"{d.why} ({d.shard})"
    idx["requeue"] = requeue
    folder.write_index(idx)
    return requeue


def repair(folder: DatasetFolder, level: str = "full", dry_run: bool = False) -> RepairReport:
    """Move an old-format manifest to the table folders and finish interrupted part renames, restore missing
    manifest parts, then retire damaged samples and requeue their inputs (caller holds the lock)."""
    rep = RepairReport()
    if not dry_run:
        rep.migrated = folder.index()["format"] in manifest.OLD_FORMATS
        rep.published = manifest.roll_forward(folder.store, folder.migrate())
    rep.restored = restore_parts(folder, folder.index(), dry_run)
    idx = folder.index()
    rep.damage = find_damage(folder, idx, level)
    for d in rep.damage:
        log.warning("%s %s: %s (%d sample(s))", "would retire" if dry_run else "retiring", d.shard, d.why,
                    len(d.keys))
    if not dry_run:
        before = set(idx.get("requeue") or {})
        rep.requeued = {k: v for k, v in apply_damage(folder, rep.damage).items() if k not in before}
    return rep

