"""``memcorpus verify``: the exactly-once proof for a dataset folder.

Checks, against what ``dataset.json`` lists: every listed file exists and reads; every
shard is a complete tar whose sample keys are exactly the keys the manifest says it holds;
no sample key is in two places; every input has exactly one row per stage-versions key,
accepted (with its samples) or rejected (with a reason); per run, processed inputs =
accepted + rejected; nothing temporary is listed.
"""

from __future__ import annotations

import json
import tarfile
from collections import Counter
from pathlib import Path

from pipelines.dataset import INDEX, TABLES, read_table
from pipelines.storage import Storage


def _shard_keys(store: Storage, rel: str) -> Counter:
    """Sample keys in a tar, read the way webdataset groups members (key = name up to the first dot)."""
    keys: Counter = Counter()
    path = Path(rel)
    with store.open_read(rel) as fh, tarfile.open(fileobj=fh, mode="r|") as tar:  # a truncated tar raises here
        last = None
        for m in tar:
            if not m.isfile():
                raise ValueError(f"{path.name}: member {m.name!r} is not a regular file")
            if "/" in m.name or m.name.startswith(".") or ".." in m.name:
                raise ValueError(f"{path.name}: unsafe member name {m.name!r}")
            key = m.name.split(".", 1)[0]
            if key != last:
                keys[key] += 1
                last = key
            tar.extractfile(m).read()
    return keys


def verify(root: str | Path) -> tuple[list[str], dict[str, int]]:
    """Returns ``(problems, stats)``; an empty problem list means the dataset is consistent."""
    store = Storage(root)
    problems: list[str] = []
    if not store.is_file(INDEX):
        return [f"{store.path(INDEX)}: missing (not a dataset folder, or nothing was ever committed)"], {}
    idx = json.loads(store.read_bytes(INDEX))
    listed = [s["path"] for s in idx["shards"]] + [m[t] for m in idx["manifests"] for t in TABLES if m.get(t)]
    for rel in listed:
        if ".tmp" in rel or Path(rel).name.startswith("."):
            problems.append(f"temporary file listed: {rel}")
        if not store.is_file(rel):
            problems.append(f"listed file missing: {rel}")
    if problems:
        return problems, {}
    rows = {t: [r for m in idx["manifests"] if m.get(t) for r in read_table(store, m[t], t)] for t in TABLES}

    # shards hold exactly the samples the manifest says, each once
    sample_at = Counter(r["key"] for r in rows["samples"])
    for key, n in sample_at.items():
        if n > 1:
            problems.append(f"sample {key} listed {n} times in the samples manifest")
    by_shard: dict[str, Counter] = {}
    for r in rows["samples"]:
        by_shard.setdefault(r["shard"], Counter())[r["key"]] += 1
    seen_keys: Counter = Counter()
    for s in idx["shards"]:
        try:
            keys = _shard_keys(store, s["path"])
        except (tarfile.TarError, ValueError, OSError, EOFError) as e:
            problems.append(f"shard {s['path']} unreadable: {e}")
            continue
        seen_keys.update(keys)
        if sum(keys.values()) != s["samples"]:
            problems.append(f"shard {s['path']}: {sum(keys.values())} samples, dataset.json says {s['samples']}")
        if keys != by_shard.get(s["path"], Counter()):
            problems.append(f"shard {s['path']}: keys differ from the samples manifest")
    for key, n in seen_keys.items():
        if n > 1:
            problems.append(f"sample {key} appears {n} times across shards")
    unlisted = set(by_shard) - {s["path"] for s in idx["shards"]}
    for rel in sorted(unlisted):
        problems.append(f"samples manifest points at unlisted shard {rel}")

    # every input exactly once per versions key, with a reason when rejected
    per_input = Counter((r["id"], r["versions_key"]) for r in rows["inputs"])
    for (iid, vk), n in per_input.items():
        if n > 1:
            problems.append(f"input {iid} has {n} manifest rows for stage versions {vk}")
    accepted_inputs = set()
    for r in rows["inputs"]:
        if r["status"] == "accepted":
            accepted_inputs.add(r["id"])
            missing = [k for k in r["samples"] if k not in sample_at]
            if not r["samples"] or missing:
                problems.append(f"accepted input {r['id']} lists samples not in any shard: {missing[:3]}")
        elif r["status"] == "rejected":
            if not r["reason"]:
                problems.append(f"rejected input {r['id']} has no reason")
        else:
            problems.append(f"input {r['id']}: status {r['status']!r}")
    orphans = {r["input_id"] for r in rows["samples"]} - accepted_inputs
    for iid in sorted(orphans)[:10]:
        problems.append(f"samples of input {iid} are committed but the input has no accepted row (resume the run)")

    # per run: inputs processed = accepted + rejected
    for r in idx.get("runs", []):
        if not r.get("record") or not store.is_file(r["record"]):
            problems.append(f"run {r['run']}: record {r.get('record')} missing")
            continue
        rec = json.loads(store.read_bytes(r["record"]))
        if not rec.get("complete", True):
            continue  # a crashed run's counts were never final
        got = Counter(x["status"] for x in rows["inputs"] if x["run"] == r["run"])
        c = rec.get("counts", {})
        if c.get("processed", 0) != got["accepted"] + got["rejected"]:
            problems.append(f"run {r['run']}: processed {c.get('processed')} != accepted {got['accepted']}"
                            f" + rejected {got['rejected']}")
    stats = {
        "inputs": len(rows["inputs"]),
        "accepted": sum(r["status"] == "accepted" for r in rows["inputs"]),
        "rejected": sum(r["status"] == "rejected" for r in rows["inputs"]),
        "samples": len(rows["samples"]),
        "shards": len(idx["shards"]),
        "runs": len(idx.get("runs", [])),
    }
    return problems, stats
