"""The manifest's files: one folder per table, one Parquet part per commit, never folded.

```
manifest/inputs/<run>-<seq:06d>.parquet    one row per input built (a rebuild adds a row)
manifest/samples/<run>-<seq:06d>.parquet   one row per written sample
manifest/rejects/<run>-<seq:06d>.parquet   one row per rejected sample
```

Each folder holds one table, so ``pd.read_parquet("manifest/inputs")``,
``ray.data.read_parquet("manifest/inputs")`` and DuckDB's ``read_parquet('manifest/inputs/*.parquet')``
read exactly that table. The layout is the same during a run, after a crash and after commit:

- a part is written under a hidden name, ``.<name>.pending`` in its table folder (pyarrow, pandas and
  Ray skip names starting with ``.`` or ``_``; ``*.parquet`` does not match it), then ``dataset.json``
  lists its final name, then it is renamed to that name. A glob reader therefore never sees a row the
  index does not list; it can lag the index by that rename. A crash between the index write and the
  rename leaves a listed part under its pending name: recovery (the start of every build) and repair
  rename it; readers through the index read the pending file meanwhile (``read_part_bytes``).
- parts are never folded into one file per run: no sequence of renames can swap many files for one
  without a moment where a glob reader sees both or neither, so the parts are the final files.
  Reading costs one small file per commit (a commit per closed shard or per ``commit_every_s``).
- every row carries ``commit``, its commit's number in ``dataset.json["manifests"]``, so a glob
  reader can order rows without the index (``LIVE_INPUTS_SQL``).

``dataset.json`` stays authoritative: which samples are live also depends on its ``retired`` and
``damaged`` shard entries, which no Parquet file holds (see ``LIVE_*_SQL`` for a glob reader's view).
Format ``memcorpus/1`` folders (``manifest/<run>.parquet`` beside ``manifest/<run>.samples.parquet``,
``rejects/<run>.parquet``, parts in ``manifest/<run>/``) are read as they are and moved to this
layout by ``migrate`` under the folder's lock (the next build, or ``memcorpus repair``).
"""

from __future__ import annotations

import io
import logging
import posixpath
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from pipelines.storage import Storage

log = logging.getLogger("memcorpus")

FORMAT = "memcorpus/2"
OLD_FORMATS = ("memcorpus/1",)  # read as they are; migrated before a write
TABLES = ("inputs", "samples", "rejects")
PENDING = ".pending"

SCHEMAS = {
    "inputs": pa.schema([
        ("id", pa.string()), ("source", pa.string()), ("status", pa.string()), ("reason", pa.string()),
        ("stage", pa.string()), ("detail", pa.string()), ("samples", pa.list_(pa.string())),
        ("shards", pa.list_(pa.string())), ("versions", pa.string()), ("versions_key", pa.string()),
        ("run", pa.string()),
        ("retryable", pa.bool_()),  # rejected for a reason that is not the input's fault: retried next run
        ("replaces", pa.string()),  # why this row supersedes an earlier one: refresh | retry | repair | ""
        ("commit", pa.int64()),  # the commit's number in dataset.json: the last row of an input is its live row
    ]),
    "samples": pa.schema([
        ("key", pa.string()), ("input_id", pa.string()), ("shard", pa.string()), ("bytes", pa.int64()),
        ("run", pa.string()), ("versions_key", pa.string()),
        ("members", pa.list_(pa.struct([("name", pa.string()), ("size", pa.int64()), ("blake2b", pa.string())]))),
        ("commit", pa.int64()),
    ]),
    "rejects": pa.schema([
        ("key", pa.string()), ("input_id", pa.string()), ("stage", pa.string()), ("reason", pa.string()),
        ("detail", pa.string()), ("run", pa.string()), ("retryable", pa.bool_()), ("commit", pa.int64()),
    ]),
}

# A glob reader's live view (DuckDB; run in the dataset folder). The live row of an input is its row of the
# highest commit; its live samples are the sample rows it lists. Exact whenever `memcorpus verify` passes,
# except samples repair retired (damaged, queued for rebuild), which only dataset.json knows about.
LIVE_INPUTS_SQL = ("SELECT * FROM read_parquet('manifest/inputs/*.parquet') "
                   "QUALIFY row_number() OVER (PARTITION BY id ORDER BY \"commit\" DESC) = 1")
LIVE_SAMPLES_SQL = ("SELECT s.* FROM read_parquet('manifest/samples/*.parquet') s "
                    f"JOIN ({LIVE_INPUTS_SQL}) i ON s.input_id = i.id "
                    "WHERE i.status = 'accepted' AND list_contains(i.samples, s.key) "
                    "AND list_contains(i.shards, s.shard)")


def part_rel(table: str, run: str, seq: int) -> str:
    return f"manifest/{table}/{run}-{seq:06d}.parquet"


def pending_rel(rel: str) -> str:
    """The hidden name a part has from its write until ``dataset.json`` lists it."""
    d, name = posixpath.split(rel)
    return f"{d}/.{name}{PENDING}"


def to_parquet(table: str, rows: list[dict[str, Any]]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMAS[table]), buf)
    return buf.getvalue()


def write_table(store: Storage, rel: str, table: str, rows: list[dict[str, Any]]) -> None:
    """Write one Parquet table durably (temporary name, fsync, rename; one PUT on object stores)."""
    store.write_atomic(rel, to_parquet(table, rows))


def read_parquet_table(data: bytes, schema: pa.Schema | None = None) -> pa.Table:
    """A small Parquet file held in memory, read on the calling thread only.

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
    return table


def read_parquet_rows(data: bytes, schema: pa.Schema | None = None) -> list[dict[str, Any]]:
    return read_parquet_table(data, schema).to_pylist()


def part_exists(store: Storage, rel: str) -> bool:
    return store.exists(rel) or store.exists(pending_rel(rel))


def read_part_bytes(store: Storage, rel: str) -> bytes:
    """A listed part's bytes: under its final name, or under its pending name until the rename is done."""
    for name in (rel, pending_rel(rel), rel):  # final again: the rename may land between the first two reads
        try:
            return store.read_bytes(name)
        except FileNotFoundError:
            continue
    raise FileNotFoundError(f"{store.path(rel)} (nor its pending name): memcorpus repair restores it")


def read_table(store: Storage, rel: str, table: str) -> list[dict[str, Any]]:
    return read_parquet_rows(read_part_bytes(store, rel), SCHEMAS[table])


def read_parts(store: Storage, rels: list[str], schema: pa.Schema | None = None) -> list[dict[str, Any]]:
    """Rows of many listed parts, in the given order. Object stores fetch them concurrently (one request
    per part costs a round trip each otherwise); a part not found is read through ``read_part_bytes``."""
    got: dict[str, Any] = {}
    if not store.local and len(rels) > 1:
        got = store.fs.cat([store.path(r) for r in rels], on_error="return")
    tables = []
    for rel in rels:
        data = got.get(store.path(rel))
        tables.append(read_parquet_table(data if isinstance(data, bytes) else read_part_bytes(store, rel), schema))
    if schema is None:  # the report: whatever columns each part has, one part at a time
        return [r for t in tables for r in t.to_pylist()]
    return pa.concat_tables(tables).to_pylist() if tables else []  # one conversion: most of the cost per part


def entry_rows(store: Storage, idx: dict[str, Any], table: str) -> list[dict[str, Any]]:
    """Every row of ``table`` the index lists, in commit order."""
    return read_parts(store, [m[table] for m in idx["manifests"] if m.get(table)], SCHEMAS[table])


def entry_table(store: Storage, idx: dict[str, Any], table: str, columns: list[str]) -> pa.Table:
    """Some columns of every row of ``table`` the index lists, in commit order, kept columnar.

    For counts over a whole dataset (the card): Python dicts of every row cost about 3 KB per input,
    which made the driver's memory grow with the corpus (600+ MB at 200,000 inputs)."""
    schema = pa.schema([SCHEMAS[table].field(c) for c in columns])
    parts = [read_parquet_table(read_part_bytes(store, m[table]), SCHEMAS[table]).select(columns)
             for m in idx["manifests"] if m.get(table)]
    return pa.concat_tables(parts) if parts else schema.empty_table()


def next_commit(idx: dict[str, Any]) -> int:
    return max((int(m.get("commit", -1)) for m in idx.get("manifests", [])), default=-1) + 1


def publish(store: Storage, rels: list[str]) -> list[str]:
    """Rename listed parts from their pending names to their final ones. Returns those renamed.

    A pending file of a listed part is what was committed, so it replaces whatever has the final name
    (on object stores a rename is copy + delete: a crash between leaves two equal files)."""
    done = []
    for rel in rels:
        if store.exists(pending_rel(rel)):
            store.publish(pending_rel(rel), rel)
            done.append(rel)
    return done


def roll_forward(store: Storage, idx: dict[str, Any]) -> list[str]:
    """Finish the renames of committed parts that a crash interrupted (caller holds the lock)."""
    done = publish(store, [m[t] for m in idx.get("manifests", []) for t in TABLES if m.get(t)])
    for rel in done:
        log.warning("committed manifest part %s was still under its pending name: renamed", rel)
    return done


def visible_parts(store: Storage, table: str) -> list[str]:
    """The files a glob reader of ``manifest/<table>/`` reads (``*.parquet``, not hidden)."""
    return [rel for rel in store.files(f"manifest/{table}")
            if rel.count("/") == 2 and rel.endswith(".parquet") and not rel.rsplit("/", 1)[1].startswith((".", "_"))]


def migrate(folder: Any, idx: dict[str, Any]) -> dict[str, Any]:
    """Move a ``memcorpus/1`` folder's manifest into the table folders; returns the new index.

    Same protocol as a commit: new parts are written under pending names, one index write switches
    format and paths, then the parts are renamed and the old files removed. A crash before the
    index write leaves the old index and unlisted pending files (recovery removes them); after it,
    recovery renames the pending parts and removes the old files (its patterns know both layouts).
    Parts the old index lists but that are gone keep their new name, unwritten: repair restores them.
    """
    store = folder.store
    old_files, entries, seqs = [], [], {}
    for n, m in enumerate(idx["manifests"]):
        run = m["run"]
        seq = seqs[run] = seqs.get(run, -1) + 1
        new = {"run": run, "seq": seq, "commit": n}
        for t in TABLES:
            if not m.get(t):
                continue
            new[t] = part_rel(t, run, seq)
            if store.exists(m[t]):
                rows = [{**r, "commit": n} for r in read_table(store, m[t], t)]
                store.makedirs(f"manifest/{t}")
                store.write_atomic(pending_rel(new[t]), to_parquet(t, rows))
                old_files.append(m[t])
        entries.append(new)
    idx = {**idx, "format": FORMAT, "manifests": entries}
    folder.write_index(idx)
    publish(store, [m[t] for m in entries for t in TABLES if m.get(t)])
    for rel in old_files:
        if store.exists(rel):
            store.remove(rel)
    _remove_empty_old_folders(store, {m["run"] for m in entries})
    log.warning("%s: manifest moved to the %s layout (manifest/inputs, manifest/samples, manifest/rejects)",
                folder.root, FORMAT)
    return idx


def _remove_empty_old_folders(store: Storage, runs: set[str]) -> None:
    if not store.local:
        return  # object stores have no folders
    import os

    for d in [f"manifest/{r}" for r in sorted(runs)] + ["rejects"]:
        p = store.path(d)
        if os.path.isdir(p) and not os.path.islink(p) and not os.listdir(p):
            os.rmdir(p)
