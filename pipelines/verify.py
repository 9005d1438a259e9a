"""``memcorpus verify``: the exactly-once proof for a dataset folder.

Checks, against what ``dataset.json`` lists: every listed file exists and reads; every shard
that still holds live samples has the size it was committed with and is a complete tar whose
sample keys are exactly the keys the manifest says it holds; every live sample's members
match the blake2b digests recorded when they were written (``quick`` skips the digests and
reads only tar headers); no sample key is live in two places; every input's live row (its
last) is accepted with live samples or rejected with a reason, an input is never built twice
with one refresh key unless the later row is a retry or a repair, and every live sample
belongs to its input's live row (nothing stale from an older refresh key); per run,
processed inputs = accepted + rejected; nothing temporary is listed; a glob reader of each
manifest table folder reads exactly the parts the index lists (pipelines/manifest.py).
"""

from __future__ import annotations

import json
from collections import Counter
from itertools import pairwise
from pathlib import Path

from pipelines import manifest
from pipelines.dataset import FORMAT, INDEX, READ_FORMATS, TABLES
from pipelines.live import REPAIR, RETRY, Live, fully_retired, live_state, retired_pairs
from pipelines.names import check_index
from pipelines.schema import check_index_schema, check_sample
from pipelines.shardscan import compare, scan_shard
from pipelines.storage import Storage


def verify(root: str | Path, quick: bool = False) -> tuple[list[str], dict[str, int]]:
    """Returns ``(problems, stats)``; an empty problem list means the dataset is consistent.

    ``quick``: tar headers and sizes only, no member digests (zeroed payload bytes then pass).
    """
    store = Storage(root)
    problems: list[str] = []
    if not store.is_file(INDEX):
        return [f"{store.path(INDEX)}: missing (not a dataset folder, or nothing was ever committed)"], {}
    try:  # a hostile index is a problem to report, never paths to open
        idx = check_index(json.loads(store.read_bytes(INDEX)), store.path(INDEX), store.root if store.local else None)
    except ValueError as e:
        return [str(e)], {}
    try:
        check_index_schema(idx, store.path(INDEX))
    except ValueError as e:  # another schema version: one problem, not one per sample
        problems.append(str(e))
        idx = {**idx, "corpus": ""}  # a corpus without a schema: the per-sample check is skipped
    if idx.get("format") not in READ_FORMATS:
        return [f"{store.path(INDEX)}: format {idx.get('format')!r} is not one of {list(READ_FORMATS)}"], {}
    retired = {s["path"] for s in idx["shards"] if fully_retired(s)}
    parts = [m[t] for m in idx["manifests"] for t in TABLES if m.get(t)]
    for rel in [s["path"] for s in idx["shards"]] + parts:
        if ".tmp" in rel or Path(rel).name.startswith("."):
            problems.append(f"temporary file listed: {rel}")
        if rel in retired or (store.is_file(rel) if rel.startswith("shards/") else manifest.part_exists(store, rel)):
            continue
        hint = "memcorpus repair restores it" if not rel.startswith("shards/") else "memcorpus repair requeues it"
        problems.append(f"listed file missing: {rel} ({hint})")
    if problems:
        return problems, {}
    if idx["format"] == FORMAT:
        _check_layout(store, idx, problems)
    rows = {t: manifest.entry_rows(store, idx, t) for t in TABLES}
    live = live_state(idx, rows["inputs"], rows["samples"])
    checked = _check_shards(store, idx, rows["samples"], live, quick, problems)
    _check_inputs(live, problems)
    _check_runs(store, idx, rows["inputs"], problems)
    stats = {
        "inputs": len(live.inputs),
        "accepted": sum(r["status"] == "accepted" for r in live.inputs.values()),
        "rejected": sum(r["status"] == "rejected" for r in live.inputs.values()),
        "samples": len(live.samples),
        "retired": len(retired_pairs(idx)),
        "requeued": len(live.requeue),
        "checksummed": checked,
        "shards": len(idx["shards"]),
        "runs": len(idx.get("runs", [])),
    }
    return problems, stats


def _check_layout(store: Storage, idx: dict, problems: list[str]) -> None:
    """What a glob reader of ``manifest/<table>/`` reads is exactly the parts the index lists."""
    for t in TABLES:
        listed = {m[t] for m in idx["manifests"] if m.get(t)}
        visible = set(manifest.visible_parts(store, t))
        for rel in sorted(visible - listed):
            problems.append(f"{rel} is not listed in {INDEX} but glob readers of manifest/{t}/ read it "
                            "(a stray or copied-in file: move it out of the folder)")
        for rel in sorted(listed - visible):
            problems.append(f"committed part {rel} is still under its pending name, so glob readers miss it "
                            "(a commit was interrupted: the next build or memcorpus repair renames it)")


def _check_shards(store: Storage, idx: dict, sample_rows: list[dict], live: Live, quick: bool,
                  problems: list[str]) -> int:
    """Shards hold exactly the samples the manifest says, each once, with the recorded bytes. Returns #digested."""
    for (key, shard), n in Counter((r["key"], r["shard"]) for r in sample_rows).items():
        if n > 1:
            problems.append(f"sample {key} listed {n} times in the samples manifest for {shard}")
    for key, n in live.doubled.items():
        problems.append(f"sample {key} is live in {n} shards (written twice)")
    by_shard: dict[str, Counter] = {}
    for r in sample_rows:
        by_shard.setdefault(r["shard"], Counter())[r["key"]] += 1
    checked = 0
    for s in idx["shards"]:
        rel = s["path"]
        if fully_retired(s):
            continue  # given up (damaged) or wholly replaced: readers skip it, the file may be gone
        size = store.size(rel)
        if s.get("bytes") is not None and size != s["bytes"]:
            problems.append(f"shard {rel} is {size} bytes, {s['bytes']} when committed (truncated or changed: "
                            "memcorpus repair)")
            continue
        scan = scan_shard(store, rel, quick=quick)
        if scan.error:
            problems.append(f"shard {rel} unreadable: {scan.error}")
            continue
        if any(n > 1 for n in scan.keys.values()) or sum(scan.keys.values()) != s["samples"]:
            problems.append(f"shard {rel}: {sum(scan.keys.values())} samples, dataset.json says {s['samples']}")
        if set(scan.keys) != set(by_shard.get(rel, ())):
            problems.append(f"shard {rel}: keys differ from the samples manifest")
        for key, r in live.samples.items():
            if r["shard"] != rel:
                continue
            if why := compare(r, scan.members.get(key)):
                problems.append(f"sample {key} in {rel}: {why} (memcorpus repair)")
            elif not quick and (off := check_sample(idx["corpus"], scan.metas.get(key, {}), scan.layouts.get(key, {}))):
                problems.append(f"sample {key} in {rel} does not match schema {idx.get('schema')}: {'; '.join(off)}")
            checked += not quick and bool(r.get("members"))
    for rel in sorted(set(by_shard) - {s["path"] for s in idx["shards"]}):
        problems.append(f"samples manifest points at unlisted shard {rel}")
    return checked


def _check_inputs(live: Live, problems: list[str]) -> None:
    """Each input: rows superseded only by a rebuild; its live row accepted with live samples or rejected."""
    for iid, hist in live.history.items():
        for old, new in pairwise(hist):
            if old["versions_key"] == new["versions_key"] and new.get("replaces") not in (RETRY, REPAIR):
                problems.append(f"input {iid} built twice with refresh key {new['versions_key']} "
                                f"(runs {old['run']} and {new['run']})")
    for iid, r in live.inputs.items():
        if iid in live.requeue:
            problems.append(f"input {iid} is queued for rebuild ({live.requeue[iid]}): rerun the build")
        elif r["status"] == "accepted":
            missing = [k for k in r["samples"] or () if live.samples.get(k, {}).get("input_id") != iid]
            if not r["samples"] or missing:
                problems.append(f"accepted input {iid} lists samples that are not live in any shard: {missing[:3]}")
        elif r["status"] == "rejected":
            if not r["reason"]:
                problems.append(f"rejected input {iid} has no reason")
        else:
            problems.append(f"input {iid}: status {r['status']!r}")
    stale: list[str] = []
    for r in live.sample_rows:
        key, owner = r["key"], live.inputs.get(r["input_id"])
        if owner is None or owner["status"] != "accepted" or key not in (owner["samples"] or ()) \
                or r["shard"] not in (owner["shards"] or ()):
            what = "has no row" if owner is None else f"is now {owner['status']} under {owner['versions_key']}"
            stale.append(f"sample {key} (run {r['run']}) is live but its input {r['input_id']} {what} "
                         "(stale: a rebuild did not retire it, or a run is unfinished)")
    problems.extend(stale[:10])
    if len(stale) > 10:
        problems.append(f"... {len(stale) - 10} more live samples not owned by their input's live row")


def _check_runs(store: Storage, idx: dict, input_rows: list[dict], problems: list[str]) -> None:
    """Per run: inputs processed = accepted + rejected."""
    for r in idx.get("runs", []):
        if isinstance(r, str):
            continue
        if not r.get("complete"):
            problems.append(f"run {r['run']} never finished (crashed or still running): rerun the build to fold it")
            continue
        if not r.get("record") or not store.is_file(r["record"]):
            problems.append(f"run {r['run']}: record {r.get('record')} missing")
            continue
        rec = json.loads(store.read_bytes(r["record"]))
        if not rec.get("complete", True):
            continue  # a crashed run's counts were never final
        got = Counter(x["status"] for x in input_rows if x["run"] == r["run"])
        c = rec.get("counts", {})
        if c.get("processed", 0) != got["accepted"] + got["rejected"]:
            problems.append(f"run {r['run']}: processed {c.get('processed')} != accepted {got['accepted']}"
                            f" + rejected {got['rejected']}")
