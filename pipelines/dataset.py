"""The dataset folder (DESIGN §4) and its commit protocol.

``dataset.json`` is the single source of truth: a shard, a manifest part or a run is part of
the dataset only once ``dataset.json`` lists it, and ``dataset.json`` is replaced atomically
(temporary file, fsync, rename, fsync of the folder). Everything a commit lists is written
and fsynced *before* the index names it, so a crash at any point leaves either the old or
the new index, never a half shard. A run registers itself in the index before it writes,
and holds the folder's lock (pipelines/lock.py) throughout; ``recover()`` deletes only the
debris of registered runs (pipelines/recovery.py) and closes a crashed run with the parts it
committed, so the next run resumes from exactly what was committed. Rebuilt inputs supersede
their old rows and retire their old samples (pipelines/live.py). Manifest files and their
commit protocol: pipelines/manifest.py.

``dataset.json``: ``format``, ``corpus``, ``shards`` (``path``, ``samples``, ``bytes``, ``run``,
and ``retired``: keys readers skip, ``damaged``: why repair gave up the whole shard),
``manifests`` (one entry per commit: ``run``, ``seq``, ``commit`` and the part of each table), ``runs`` (``complete``,
``crashed``, ``record``; ``started`` while a run is open), ``requeue`` (input id -> why the
next run must rebuild it).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from pipelines import manifest
from pipelines.live import Live, live_state
from pipelines.manifest import (
    FORMAT,
    OLD_FORMATS,
    SCHEMAS,
    TABLES,
    part_rel,
    pending_rel,
    read_parquet_rows,
    read_table,
    to_parquet,
    write_table,
)
from pipelines.names import check_folder, check_index
from pipelines.schema import check_index_schema, schema_for
from pipelines.storage import Storage

log = logging.getLogger("memcorpus")

INDEX = "dataset.json"
READ_FORMATS = (FORMAT, *OLD_FORMATS)
__all__ = ["FORMAT", "INDEX", "SCHEMAS", "TABLES", "DatasetFolder", "read_parquet_rows", "read_table", "retire_keys",
           "write_table"]


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
        for sub in ("shards", "runs", *(f"manifest/{t}" for t in TABLES)):
            self.store.makedirs(sub)

    # -- the index -------------------------------------------------------------------------
    def index(self) -> dict[str, Any]:
        """The checked index; a ``memcorpus/1`` one reads as it is (writers migrate it first: ``recover``)."""
        p = f"{self.root}/{INDEX}"  # for messages
        schema = schema_for(self.corpus)
        if not self.store.exists(INDEX):
            idx = {"format": FORMAT, "corpus": self.corpus, "shards": [], "manifests": [], "runs": []}
            return {**idx, "schema": schema.ref} if schema else idx
        idx = json.loads(self.store.read_bytes(INDEX))
        if idx.get("format") not in READ_FORMATS:
            raise ValueError(f"{p}: format {idx.get('format')!r} is not one of {list(READ_FORMATS)}: "
                             "written by a newer memcorpus? Upgrade memcorpus to read it")
        if idx.get("corpus") != self.corpus:
            raise ValueError(f"{p} holds corpus {idx.get('corpus')!r}, not {self.corpus!r}: use another --out")
        check_index_schema(idx, p)  # one schema version per folder: samples of two versions never mix
        if schema:
            idx["schema"] = schema.ref
        # Names and paths in the index become rmtree/remove/write targets: refuse any that leave the folder.
        return check_index(idx, p, self.root if self.store.local else None)

    def write_index(self, idx: dict[str, Any]) -> None:
        self.store.write_atomic(INDEX, json.dumps(idx, indent=1, sort_keys=True).encode())

    def _index_for_writing(self) -> dict[str, Any]:
        idx = self.index()
        if idx["format"] != FORMAT:
            raise ValueError(f"{self.root}/{INDEX} is format {idx['format']!r}: run `memcorpus repair {self.root}` "
                             f"(or the build, which does it first) to move it to {FORMAT!r}")
        return idx

    # -- commits ---------------------------------------------------------------------------
    def commit(self, run: str, seq: int, shard: dict[str, Any] | None, tables: dict[str, list[dict]],
               retire: list[tuple[str, str]] = (), rebuilt: set[str] = frozenset()) -> None:
        """Durably write this commit's manifest parts, list them (and the shard) in the index, then
        rename them into their table folders (pipelines/manifest.py: glob readers never see a part
        the index does not list).

        ``retire``: (shard, key) of old samples the rows of this commit supersede; ``rebuilt``:
        input ids whose requeue entry this commit settles. Both change in the same index write
        as the rows that replace them, so no crash can leave an input with neither.
        """
        if self.lock is not None:
            self.lock.check()
        idx = self._index_for_writing()
        n = manifest.next_commit(idx)
        entry: dict[str, Any] = {"run": run, "seq": seq, "commit": n}
        for t in TABLES:
            if tables.get(t):
                rel = part_rel(t, run, seq)
                self.store.makedirs(f"manifest/{t}")
                self.store.write_atomic(pending_rel(rel), to_parquet(t, [{**r, "commit": n} for r in tables[t]]))
                entry[t] = rel
        if shard is not None:
            idx["shards"].append(shard)
        idx["manifests"].append(entry)
        retire_keys(idx, retire)
        if rebuilt and idx.get("requeue"):
            idx["requeue"] = {k: v for k, v in idx["requeue"].items() if k not in rebuilt}
        self.write_index(idx)
        manifest.publish(self.store, [entry[t] for t in TABLES if entry.get(t)])

    def begin_run(self, run: str) -> None:
        """Register ``run`` in the index before it writes anything, so recovery can name its debris."""
        self.prepare()
        idx = self._index_for_writing()
        idx["runs"].append({"run": run, "complete": False, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                    time.gmtime())})
        self.write_index(idx)

    def finish_run(self, run: str, record: dict[str, Any]) -> None:
        """Write runs/<run>.json and mark the run complete. Its manifest parts stay as committed: folding them
        into one file would show a glob reader both, or neither, for a moment (pipelines/manifest.py)."""
        self.prepare()
        idx = self._index_for_writing()
        self.store.write_atomic(f"runs/{run}.json", json.dumps(record, indent=1, default=str).encode())
        idx["runs"] = [r for r in idx["runs"] if _run_name(r) != run] + [
            {"run": run, "complete": True, "crashed": not record.get("complete", True), "record": f"runs/{run}.json",
             **({"interrupted": True} if record.get("status") == "interrupted" else {})}
        ]
        self.write_index(idx)

    # -- recovery --------------------------------------------------------------------------
    def recover(self, force_new: bool = False) -> list[str]:
        """Move an old-format manifest to the table folders, finish interrupted renames of committed parts,
        delete debris of registered runs, and close crashed runs with their committed parts.

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
            log.warning("%s: --force-new: starting a new dataset next to existing files (none deleted; old manifest "
                        "parts stay in manifest/<table>/, where glob readers count them: verify names them)",
                        self.root)
        idx = self.migrate()
        manifest.roll_forward(self.store, idx)
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
            self.finish_run(run, {"run": run, "complete": False, "note": "crashed; committed parts kept",
                                  "recovered_at": time.time()})
        return [rel for rel, _ in plan.remove]

    def migrate(self) -> dict[str, Any]:
        """The index, after moving a ``memcorpus/1`` manifest to the table folders (caller holds the lock)."""
        idx = self.index()
        if idx["format"] in OLD_FORMATS:
            self.prepare()
            idx = manifest.migrate(self, idx)
        return idx

    # -- what is already there ---------------------------------------------------------------
    def rows(self, table: str) -> list[dict[str, Any]]:
        return manifest.entry_rows(self.store, self.index(), table)

    def live(self) -> Live:
        """The live row of every input and the live samples (pipelines/live.py)."""
        idx = self.index()
        return live_state(idx, manifest.entry_rows(self.store, idx, "inputs"),
                          manifest.entry_rows(self.store, idx, "samples"))


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
