"""The dataset folder (DESIGN §4) and its commit protocol.

``dataset.json`` is the single source of truth: a shard, a manifest part or a run is part of
the dataset only once ``dataset.json`` lists it, and ``dataset.json`` is replaced atomically
(temporary file, fsync, rename, fsync of the folder). Everything a commit lists is written
and fsynced *before* the index names it, so a crash at any point leaves either the old or
the new index, never a half shard. Files on disk that the index does not list are debris of
a crashed run: ``recover()`` deletes them and folds a crashed run's committed parts into its
final manifest, so the next run resumes from exactly what was committed.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

FORMAT = "memcorpus/1"
INDEX = "dataset.json"
TABLES = ("inputs", "samples", "rejects")

SCHEMAS = {
    "inputs": pa.schema([
        ("id", pa.string()), ("source", pa.string()), ("status", pa.string()), ("reason", pa.string()),
        ("stage", pa.string()), ("detail", pa.string()), ("samples", pa.list_(pa.string())),
        ("shards", pa.list_(pa.string())), ("versions", pa.string()), ("versions_key", pa.string()),
        ("run", pa.string()),
    ]),
    "samples": pa.schema([
        ("key", pa.string()), ("input_id", pa.string()), ("shard", pa.string()), ("bytes", pa.int64()),
        ("run", pa.string()),
    ]),
    "rejects": pa.schema([
        ("key", pa.string()), ("input_id", pa.string()), ("stage", pa.string()), ("reason", pa.string()),
        ("detail", pa.string()), ("run", pa.string()),
    ]),
}


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".tmp-{path.name}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def write_table(path: Path, table: str, rows: list[dict[str, Any]]) -> None:
    """Write one Parquet table durably (temporary name, fsync, rename)."""
    tmp = path.with_name(f".tmp-{path.name}")
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMAS[table]), tmp)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_table(path: Path, table: str) -> list[dict[str, Any]]:
    return pq.read_table(path, schema=SCHEMAS[table]).to_pylist()


class DatasetFolder:
    """One dataset folder. Not safe for two concurrent writers (the runner is the one writer)."""

    def __init__(self, root: str | Path, corpus: str) -> None:
        self.root = Path(root)
        self.corpus = corpus
        for sub in ("shards", "manifest", "rejects", "runs"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # -- the index -------------------------------------------------------------------------
    def index(self) -> dict[str, Any]:
        p = self.root / INDEX
        if not p.exists():
            return {"format": FORMAT, "corpus": self.corpus, "shards": [], "manifests": [], "runs": []}
        idx = json.loads(p.read_text())
        if idx.get("format") != FORMAT:
            raise ValueError(f"{p}: format {idx.get('format')!r} is not {FORMAT!r}")
        if idx.get("corpus") != self.corpus:
            raise ValueError(f"{p} holds corpus {idx.get('corpus')!r}, not {self.corpus!r}: use another --out")
        return idx

    def write_index(self, idx: dict[str, Any]) -> None:
        atomic_write(self.root / INDEX, json.dumps(idx, indent=1, sort_keys=True).encode())

    # -- commits ---------------------------------------------------------------------------
    def commit(self, run: str, seq: int, shard: dict[str, Any] | None, tables: dict[str, list[dict]]) -> None:
        """Durably write this commit's manifest parts, then list them (and the shard) in the index."""
        part_dir = self.root / "manifest" / run
        part_dir.mkdir(exist_ok=True)
        entry: dict[str, Any] = {"run": run, "seq": seq}
        for t in TABLES:
            if tables.get(t):
                rel = f"manifest/{run}/{t}-{seq:06d}.parquet"
                write_table(self.root / rel, t, tables[t])
                entry[t] = rel
        fsync_dir(part_dir)
        idx = self.index()
        if shard is not None:
            idx["shards"].append(shard)
        idx["manifests"].append(entry)
        self.write_index(idx)

    def finish_run(self, run: str, record: dict[str, Any]) -> None:
        """Fold a run's parts into manifest/<run>.parquet etc., and write runs/<run>.json."""
        idx = self.index()
        parts = [m for m in idx["manifests"] if m["run"] == run]
        final = {"run": run, "seq": -1}
        for t in TABLES:
            rows = [r for m in parts if m.get(t) for r in read_table(self.root / m[t], t)]
            rel = {"inputs": f"manifest/{run}.parquet", "samples": f"manifest/{run}.samples.parquet",
                   "rejects": f"rejects/{run}.parquet"}[t]
            write_table(self.root / rel, t, rows)
            final[t] = rel
        atomic_write(self.root / "runs" / f"{run}.json", json.dumps(record, indent=1, default=str).encode())
        idx["manifests"] = [m for m in idx["manifests"] if m["run"] != run] + [final]
        idx["runs"] = [r for r in idx["runs"] if r["run"] != run] + [
            {"run": run, "complete": True, "crashed": not record.get("complete", True), "record": f"runs/{run}.json"}
        ]
        self.write_index(idx)
        shutil.rmtree(self.root / "manifest" / run, ignore_errors=True)

    # -- recovery --------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Delete debris a crash left, and finish crashed runs from their committed parts."""
        idx = self.index()
        listed = {s["path"] for s in idx["shards"]}
        listed |= {m[t] for m in idx["manifests"] for t in TABLES if m.get(t)}
        listed |= {r["record"] for r in idx["runs"] if r.get("record")}
        removed = []
        for sub in ("shards", "manifest", "rejects", "runs"):
            for p in sorted((self.root / sub).rglob("*")):
                rel = p.relative_to(self.root).as_posix()
                if p.is_file() and rel not in listed:
                    p.unlink()
                    removed.append(rel)
        complete = {r["run"] for r in idx["runs"] if r.get("complete")}
        crashed = sorted({m["run"] for m in idx["manifests"]} - complete)
        for run in crashed:
            self.finish_run(run, {"run": run, "complete": False, "note": "crashed; committed parts recovered",
                                  "recovered_at": time.time()})
        for d in (self.root / "manifest").iterdir():
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        return removed

    # -- what is already there ---------------------------------------------------------------
    def rows(self, table: str) -> list[dict[str, Any]]:
        return [r for m in self.index()["manifests"] if m.get(table) for r in read_table(self.root / m[table], table)]

    def done_inputs(self) -> dict[str, set[str]]:
        """input id -> the versions keys it was built with."""
        done: dict[str, set[str]] = {}
        for r in self.rows("inputs"):
            done.setdefault(r["id"], set()).add(r["versions_key"])
        return done

    def committed_samples(self) -> dict[str, str]:
        """sample key -> shard path, for every sample in a listed shard."""
        return {r["key"]: r["shard"] for r in self.rows("samples")}
