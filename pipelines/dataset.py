"""The dataset folder (DESIGN §4) and its commit protocol.

``dataset.json`` is the single source of truth: a shard, a manifest part or a run is part of
the dataset only once ``dataset.json`` lists it, and ``dataset.json`` is replaced atomically
(temporary file, fsync, rename, fsync of the folder). Everything a commit lists is written
and fsynced *before* the index names it, so a crash at any point leaves either the old or
the new index, never a half shard. A run registers itself in the index before it writes,
and holds the folder's lock (pipelines/lock.py) throughout; ``recover()`` deletes only the
debris of registered runs (pipelines/recovery.py) and folds a crashed run's committed parts
into its final manifest, so the next run resumes from exactly what was committed. Rebuilt
inputs supersede their old rows and retire their old samples (pipelines/live.py).

``dataset.json``: ``format``, ``corpus``, ``shards`` (``path``, ``samples``, ``bytes``, ``run``,
and ``retired``: keys readers skip, ``damaged``: why repair gave up the whole shard),
``manifests`` (parts per commit, then one folded entry per run), ``runs`` (``complete``,
``crashed``, ``record``; ``started`` while a run is open), ``requeue`` (input id -> why the
next run must rebuild it).
"""

from __future__ import annotations

import io
import json
import logging
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.live import Live, live_state
from pipelines.names import check_folder, check_index
from pipelines.schema import check_index_schema, schema_for
from pipelines.storage import Storage

log = logging.getLogger("memcorpus")

FORMAT = "memcorpus/1"
INDEX = "dataset.json"
TABLES = ("inputs", "samples", "rejects")

SCHEMAS = {
    "inputs": pa.schema([
        ("id", pa.string()), ("source", pa.string()), ("status", pa.string()), ("reason", pa.string()),
        ("stage", pa.string()), ("detail", pa.string()), ("samples", pa.list_(pa.string())),
        ("shards", pa.list_(pa.string())), ("versions", pa.string()), ("versions_key", pa.string()),
        ("run", pa.string()),
        ("retryable", pa.bool_()),  # rejected for a reason that is not the input's fault: retried next run
        ("replaces", pa.string()),  # why this row supersedes an earlier one: refresh | retry | repair | ""
    ]),
    "samples": pa.schema([
        ("key", pa.string()), ("input_id", pa.string()), ("shard", pa.string()), ("bytes", pa.int64()),
        ("run", pa.string()), ("versions_key", pa.string()),
        ("members", pa.list_(pa.struct([("name", pa.string()), ("size", pa.int64()), ("blake2b", pa.string())]))),
    ]),
    "rejects": pa.schema([
        ("key", pa.string()), ("input_id", pa.string()), ("stage", pa.string()), ("reason", pa.string()),
        ("detail", pa.string()), ("run", pa.string()), ("retryable", pa.bool_()),
    ]),
}


def write_table(store: Storage, rel: str, table: str, rows: list[dict[str, Any]]) -> None:
    """Write one Parquet table durably (temporary name, fsync, rename; one PUT on object stores)."""
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMAS[table]), buf)
    store.write_atomic(rel, buf.getvalue())


def read_parquet_rows(data: bytes, schema: pa.Schema | None = None) -> list[dict[str, Any]]:
    """Rows of a small Parquet file held in memory, read on the calling thread only.

    Every manifest read goes through here. Arrow's threaded readers (``pq.read_table``, which goes
    through the dataset scanner whenever a schema is given, even with ``use_threads=False``) leave
    threads that can outlive the interpreter's teardown and abort a short command at exit
    ("terminate called without an active exception", exit 134) after it printed its result:
    apache/arrow#34314. ``ParquetFile.read`` on one thread never starts them; the schema (columns
    added since a part was written read as nulls) is applied here. Manifest parts are small, so one
    thread costs nothing. Drop this when a fixed pyarrow is pinned.
    """
    table = pq.ParquetFile(io.BytesIO(data)).read(use_threads=False)
    if schema is not None:
        have = set(table.column_names)
        cols = [table.column(f.name).cast(f.type) if f.name in have else pa.nulls(len(table), f.type) for f in schema]
        table = pa.Table.from_arrays(cols, schema=schema)
    return table.to_pylist()


def read_table(store: Storage, rel: str, table: str) -> list[dict[str, Any]]:
    return read_parquet_rows(store.read_bytes(rel), SCHEMAS[table])


class DatasetFolder:
    """One dataset folder. One writer at a time: writers hold ``DatasetLock`` and set ``self.lock``."""

    def __init__(self, root: str | Path, corpus: str) -> None:
        self.store = Storage(root)
        self.root = self.store.root  # a Path for local folders, the URI otherwise
        self.corpus = corpus
        if self.store.local:  # before makedirs: never create or walk folders through a planted symlink
            check_folder(self.root)
        self.lock = None  # a DatasetLock while a writer holds the folder; commits check it is still held

    def prepare(self) -> None:
        """Create the subfolders, only once we know this is (or becomes) our dataset folder."""
        for sub in ("shards", "manifest", "rejects", "runs"):
            self.store.makedirs(sub)

    # -- the index -------------------------------------------------------------------------
    def index(self) -> dict[str, Any]:
        p = f"{self.root}/{INDEX}"  # for messages
        schema = schema_for(self.corpus)
        if not self.store.exists(INDEX):
            idx = {"format": FORMAT, "corpus": self.corpus, "shards": [], "manifests": [], "runs": []}
            return {**idx, "schema": schema.ref} if schema else idx
        idx = json.loads(self.store.read_bytes(INDEX))
        if idx.get("format") != FORMAT:
            raise ValueError(f"{p}: format {idx.get('format')!r} is not {FORMAT!r}")
        if idx.get("corpus") != self.corpus:
            raise ValueError(f"{p} holds corpus {idx.get('corpus')!r}, not {self.corpus!r}: use another --out")
        check_index_schema(idx, p)  # one schema version per folder: samples of two versions never mix
        if schema:
            idx["schema"] = schema.ref
        # Names and paths in the index become rmtree/remove/write targets: refuse any that leave the folder.
        return check_index(idx, p, self.root if self.store.local else None)

    def write_index(self, idx: dict[str, Any]) -> None:
        self.store.write_atomic(INDEX, json.dumps(idx, indent=1, sort_keys=True).encode())

    # -- commits ---------------------------------------------------------------------------
    def commit(self, run: str, seq: int, shard: dict[str, Any] | None, tables: dict[str, list[dict]],
               retire: list[tuple[str, str]] = (), rebuilt: set[str] = frozenset()) -> None:
        """Durably write this commit's manifest parts, then list them (and the shard) in the index.

        ``retire``: (shard, key) of old samples the rows of this commit supersede; ``rebuilt``:
        input ids whose requeue entry this commit settles. Both change in the same index write
        as the rows that replace them, so no crash can leave an input with neither.
        """
        if self.lock is not None:
            self.lock.check()
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
        retire_keys(idx, retire)
        if rebuilt and idx.get("requeue"):
            idx["requeue"] = {k: v for k, v in idx["requeue"].items() if k not in rebuilt}
        self.write_index(idx)

    def begin_run(self, run: str) -> None:
        """Register ``run`` in the index before it writes anything, so recovery can name its debris."""
        self.prepare()
        idx = self.index()
        idx["runs"].append({"run": run, "complete": False, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                    time.gmtime())})
        self.write_index(idx)

    def finish_run(self, run: str, record: dict[str, Any]) -> None:
        """Fold a run's parts into manifest/<run>.parquet etc., and write runs/<run>.json."""
        self.prepare()
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
        idx["runs"] = [r for r in idx["runs"] if _run_name(r) != run] + [
            {"run": run, "complete": True, "crashed": not record.get("complete", True), "record": f"runs/{run}.json"}
        ]
        self.write_index(idx)
        for m in parts:  # only the parts this run wrote: anything else in manifest/<run>/ is not ours
            for t in TABLES:
                if m.get(t) and m[t] != final[t] and self.store.exists(m[t]):
                    self.store.remove(m[t])
        if self.store.local:
            d = Path(self.store.path(f"manifest/{run}"))
            if d.is_dir() and not d.is_symlink() and not any(d.iterdir()):
                d.rmdir()

    # -- recovery --------------------------------------------------------------------------
    def recover(self, force_new: bool = False) -> list[str]:
        """Delete debris of registered runs that crashed, and fold their committed parts.

        A folder with content but no ``dataset.json`` is refused (a deleted index once made the
        next run delete the whole corpus) unless ``force_new``, which starts a new index and
        deletes nothing. Returns the removed paths; what is left alone is logged.
        """
        from pipelines import recovery

        if not self.store.exists(INDEX) and recovery.has_content(self.store):
            if not force_new:
                raise ValueError(f"{self.root} has content but no {INDEX}: it is not a dataset folder, or its index "
                                 "was deleted. Nothing was changed. Use another --out, restore the index, or pass "
                                 "--force-new to start a new dataset here (existing files are kept, never deleted)")
            log.warning("%s: --force-new: starting a new dataset next to existing files (none deleted)", self.root)
        idx = self.index()
        plan = recovery.plan(self.store, idx, self.corpus)
        for rel, why in plan.remove:
            log.warning("recovery removes %s (%s)", rel, why)
        for rel, why in plan.keep[:20]:
            log.warning("recovery leaves %s alone (%s)", rel, why)
        for rel, _ in plan.remove:
            self.store.remove(rel)
        complete = {r["run"] for r in idx["runs"] if isinstance(r, dict) and r.get("complete")}
        crashed = sorted(recovery.run_names(idx) - complete - {r for r in idx["runs"] if isinstance(r, str)})
        for run in crashed:
            self.finish_run(run, {"run": run, "complete": False, "note": "crashed; committed parts recovered",
                                  "recovered_at": time.time()})
        return [rel for rel, _ in plan.remove]

    # -- what is already there ---------------------------------------------------------------
    def rows(self, table: str) -> list[dict[str, Any]]:
        return [r for m in self.index()["manifests"] if m.get(table) for r in read_table(self.store, m[table], table)]

    def live(self) -> Live:
        """The live row of every input and the live samples (pipelines/live.py)."""
        idx = self.index()
        rows = {t: [r for m in idx["manifests"] if m.get(t) for r in read_table(self.store, m[t], t)]
                for t in ("inputs", "samples")}
        return live_state(idx, rows["inputs"], rows["samples"])


def retire_keys(idx: dict[str, Any], retire: list[tuple[str, str]] | set[tuple[str, str]]) -> None:
    """Add (shard, key) pairs to their shard entries' ``retired`` lists (the shard files stay as written)."""
    by_shard: dict[str, set[str]] = {}
    for shard, key in retire:
        by_shard.setdefault(shard, set()).add(key)
    for s in idx["shards"]:
        if s["path"] in by_shard:
            s["retired"] = sorted(set(s.get("retired", ())) | by_shard[s["path"]])


def _run_name(r: Any) -> str:
    return r if isinstance(r, str) else r.get("run", "")
