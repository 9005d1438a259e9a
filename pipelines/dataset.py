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

import io
import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.storage import Storage

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


def write_table(store: Storage, rel: str, table: str, rows: list[dict[str, Any]]) -> None:
    """Write one Parquet table durably (temporary name, fsync, rename; one PUT on object stores)."""
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMAS[table]), buf)
    store.write_atomic(rel, buf.getvalue())


def read_table(store: Storage, rel: str, table: str) -> list[dict[str, Any]]:
    return pq.read_table(io.BytesIO(store.read_bytes(rel)), schema=SCHEMAS[table]).to_pylist()


class DatasetFolder:
    """One dataset folder. Not safe for two concurrent writers (the runner is the one writer)."""

    def __init__(self, root: str | Path, corpus: str) -> None:
        self.store = Storage(root)
        self.root = self.store.root  # a Path for local folders, the URI otherwise
        self.corpus = corpus
        for sub in ("shards", "manifest", "rejects", "runs"):
            self.store.makedirs(sub)

    # -- the index -------------------------------------------------------------------------
    def index(self) -> dict[str, Any]:
        p = f"{self.root}/{INDEX}"  # for messages
        if not self.store.exists(INDEX):
            return {"format": FORMAT, "corpus": self.corpus, "shards": [], "manifests": [], "runs": []}
        idx = json.loads(self.store.read_bytes(INDEX))
        if idx.get("format") != FORMAT:
            raise ValueError(f"{p}: format {idx.get('format')!r} is not {FORMAT!r}")
        if idx.get("corpus") != self.corpus:
            raise ValueError(f"{p} holds corpus {idx.get('corpus')!r}, not {self.corpus!r}: use another --out")
        return idx

    def write_index(self, idx: dict[str, Any]) -> None:
        self.store.write_atomic(INDEX, json.dumps(idx, indent=1, sort_keys=True).encode())

    # -- commits ---------------------------------------------------------------------------
    def commit(self, run: str, seq: int, shard: dict[str, Any] | None, tables: dict[str, list[dict]]) -> None:
        """Durably write this commit's manifest parts, then list them (and the shard) in the index."""
        self.store.makedirs(f"manifest/{run}")
        entry: dict[str, Any] = {"run": run, "seq": seq}
        for t in TABLES:
            if tables.get(t):
                rel = f"manifest/{run}/{t}-{seq:06d}.parquet"
                write_table(self.store, rel, t, tables[t])
                entry[t] = rel
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
            rows = [r for m in parts if m.get(t) for r in read_table(self.store, m[t], t)]
            rel = {"inputs": f"manifest/{run}.parquet", "samples": f"manifest/{run}.samples.parquet",
                   "rejects": f"rejects/{run}.parquet"}[t]
            write_table(self.store, rel, t, rows)
            final[t] = rel
        self.store.write_atomic(f"runs/{run}.json", json.dumps(record, indent=1, default=str).encode())
        idx["manifests"] = [m for m in idx["manifests"] if m["run"] != run] + [final]
        idx["runs"] = [r for r in idx["runs"] if r["run"] != run] + [
            {"run": run, "complete": True, "crashed": not record.get("complete", True), "record": f"runs/{run}.json"}
        ]
        self.write_index(idx)
        self.store.rmtree(f"manifest/{run}")

    # -- recovery --------------------------------------------------------------------------
    def recover(self) -> list[str]:
        """Delete debris a crash left, and finish crashed runs from their committed parts."""
        idx = self.index()
        listed = {s["path"] for s in idx["shards"]}
        listed |= {m[t] for m in idx["manifests"] for t in TABLES if m.get(t)}
        listed |= {r["record"] for r in idx["runs"] if r.get("record")}
        removed = []
        for sub in ("shards", "manifest", "rejects", "runs"):
            for rel in self.store.files(sub):
                if rel not in listed:
                    self.store.remove(rel)
                    removed.append(rel)
        complete = {r["run"] for r in idx["runs"] if r.get("complete")}
        crashed = sorted({m["run"] for m in idx["manifests"]} - complete)
        for run in crashed:
            self.finish_run(run, {"run": run, "complete": False, "note": "crashed; committed parts recovered",
                                  "recovered_at": time.time()})
        if self.store.local:
            for d in Path(self.store.path("manifest")).iterdir():
                if d.is_dir() and not any(d.iterdir()):
                    d.rmdir()
        return removed

    # -- what is already there ---------------------------------------------------------------
    def rows(self, table: str) -> list[dict[str, Any]]:
        return [r for m in self.index()["manifests"] if m.get(table) for r in read_table(self.store, m[table], table)]

    def done_inputs(self) -> dict[str, set[str]]:
        """input id -> the versions keys it was built with."""
        done: dict[str, set[str]] = {}
        for r in self.rows("inputs"):
            done.setdefault(r["id"], set()).add(r["versions_key"])
        return done

    def committed_samples(self) -> dict[str, str]:
        """sample key -> shard path, for every sample in a listed shard."""
        return {r["key"]: r["shard"] for r in self.rows("samples")}
