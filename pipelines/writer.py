"""Shards where the samples are made, bookkeeping and commits on the driver, exactly once.

``ShardWriter`` tars accepted samples (temporary name, fsync, rename) and reports what it did
as one small row per sample (key, input, part, status, reason, shard, sizes, digests,
timings): on a Ray worker (pipelines/datasink.py), or in the driver under the local runner.
``RunWriter`` is the run's one committer: it takes those rows, emits an input's manifest row
once every part split off it has arrived, and commits each finished shard together with its
sample rows, so a crash loses at most the uncommitted tail, which the next run rebuilds. A
shard a worker published but the driver never listed (the worker died, Ray retried its task
under a new shard name) is never part of the dataset; recovery deletes it. A sample whose key
is already live with the same refresh key (a crashed run got that far) is not written again.
When an input is rebuilt (new refresh key, retry, repair), its old live samples that the new
row does not keep are retired in the same commit as the new row. Every member's blake2b
digest is recorded as the member is written (verify and repair check them).

Corpora with several sample layouts (multi-camera scenes and roams) write one shard set per
layout (``shards/scenes-…``, ``shards/roams-…``): a WebDataset reader expects every sample of
a shard to have the same members.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import socket
import tarfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.dataset import DatasetFolder
from pipelines.schema import check_sample, schema_for
from pipelines.shardscan import digest
from pipelines.storage import Storage
from stages.base import Sample, is_retryable
from stages.ids import sanitize_key

# meta["layout"] -> shard set, for corpora with several layouts (pipelines/schema.py)
SETS = {"multicam": "scenes", "cam": "roams", "frames": "views"}
MEDIA_EXT = {"mp4", "jpg", "jpeg", "png", "json", "txt", "npy", "webp"}
_MEMBER = re.compile(r"^[a-z0-9_]+(\.[a-z0-9_]+)*$")


class SchemaViolation(ValueError):
    """A sample that does not match its corpus schema (pipelines/schema.py): a bug upstream, rejected."""


def encode_members(s: Sample, corpus: str = "") -> dict[str, bytes]:
    """The tar members of one sample, names sanitised, arrays as .npy without pickle, checked against
    the corpus schema (``corpus`` without a schema, e.g. a toy, is not checked)."""
    out = {"json": json.dumps(s.meta, sort_keys=True, default=_json_default).encode()}
    npy = {}
    for name, arr in s.arrays.items():
        buf = io.BytesIO()
        arr = np.asarray(arr)
        np.save(buf, arr, allow_pickle=False)  # ValueError for object arrays: a bug upstream
        out[f"{sanitize_key(name)}.npy"] = buf.getvalue()
        npy[f"{sanitize_key(name)}.npy"] = (arr.dtype.name, arr.shape)
    for name, data in s.blobs.items():
        stem, _, ext = name.rpartition(".")
        if ext not in MEDIA_EXT or not stem:
            raise ValueError(f"blob {name!r}: extension must be one of {sorted(MEDIA_EXT)}")
        member = f"{sanitize_key(stem)}.{ext}"
        assert _MEMBER.match(member), member
        out[member] = data if isinstance(data, bytes) else bytes(data)
    problems = check_sample(corpus, json.loads(out["json"]), {m: npy.get(m) for m in out})
    if problems:
        raise SchemaViolation("; ".join(problems))
    return out


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def shard_set(corpus: str, meta: dict[str, Any]) -> str:
    """The shard set of a sample: "" for one-layout corpora, else its layout's set (scenes, roams, views)."""
    schema = schema_for(corpus)
    if schema is None or len(schema.layouts) < 2:
        return ""
    layout = str(meta.get("layout", ""))
    return SETS.get(layout, sanitize_key(layout) if layout else "other")


def writer_tag() -> str:
    """Which process wrote a shard: host, Ray node (when in a Ray worker) and pid."""
    node = ""
    try:
        import ray

        if ray.is_initialized():
            node = ray.get_runtime_context().get_node_id()[:12]
    except Exception:  # noqa: BLE001 (no Ray, or not inside a worker: the host and pid still tell)
        node = ""
    return f"{socket.gethostname()}/{node or '-'}/{os.getpid()}"


class _Tar:
    def __init__(self, store: Storage, rel: str) -> None:
        self.rel, self.keys, self.bytes = rel, [], 0
        self.fh = store.open_write(f"{rel}.tmp")


class ShardWriter:
    """Writes samples into shard tars under ``name(set)``; returns one small row per sample.

    ``committed``: key -> shard of samples already live with this refresh key (never written
    again; the row says where they are). Rows carry no payload except ``meta`` when
    ``keep_meta`` (a driver-side observer such as the memento caption statistics wants it).
    """

    def __init__(self, store: Storage, corpus: str, run: str, versions_key: str, committed: dict[str, str],
                 name: Callable[[str], str], keep_meta: bool | tuple[str, ...] = False) -> None:
        self.store, self.corpus, self.run, self.versions_key = store, corpus, run, versions_key
        self.committed, self.name, self.keep_meta = committed, name, keep_meta
        self.open: dict[str, _Tar] = {}
        self.payload_bytes = 0  # sample bytes this process held while writing

    def add(self, s: Sample) -> dict[str, Any]:
        row: dict[str, Any] = {"key": s.id, "input_id": s.input_id, "part": tuple(s.part), "source": s.source,
                               "timings": dict(s.timings), "shared": tuple(s.shared_timings),
                               "footage_s": float(s.footage_s)}
        if self.keep_meta:
            keys = s.meta if self.keep_meta is True else self.keep_meta
            row["meta"] = {k: s.meta[k] for k in keys if k in s.meta}
        if not s.rejected and s.id in self.committed:
            return {**row, "status": "deduplicated", "shard": self.committed[s.id]}  # a crashed run committed it
        if not s.rejected:
            try:
                members = encode_members(s, self.corpus)
            except SchemaViolation as e:
                s.reject("schema_violation", stage="writer", detail=str(e))
            except (ValueError, TypeError) as e:
                s.reject("unserialisable_output", stage="writer", detail=str(e))
        if s.rejected:
            return {**row, "status": "rejected", "reason": s.reason, "stage": s.reject_stage, "detail": _detail(s)}
        tar = self._tar(shard_set(self.corpus, s.meta))
        n, sums = self._append(tar, s.id, members)
        self.committed[s.id] = tar.rel
        return {**row, "status": "written", "shard": tar.rel, "bytes": n, "members": sums}

    def _tar(self, group: str) -> _Tar:
        if group not in self.open:
            self.open[group] = _Tar(self.store, self.name(group))
        return self.open[group]

    def _append(self, tar: _Tar, key: str, members: dict[str, bytes]) -> tuple[int, list[dict[str, Any]]]:
        # Plain ustar records written straight to the file: tarfile's own copy loop moves
        # 16 KiB at a time and halves the throughput for video-sized members.
        n, sums = 0, []
        for ext, data in members.items():
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mtime, info.mode = len(data), 0, 0o444
            tar.fh.write(info.tobuf(format=tarfile.USTAR_FORMAT))
            tar.fh.write(data)
            tar.fh.write(b"\0" * (-len(data) % tarfile.BLOCKSIZE))
            n += len(data)
            sums.append({"name": ext, "size": len(data), "blake2b": digest(data)})  # bytes in hand: no re-read
        tar.keys.append(key)
        tar.bytes += n
        self.payload_bytes += n
        return n, sums

    def full(self, max_samples: int, max_bytes: int) -> list[str]:
        """The sets whose open shard reached a limit."""
        return [g for g, t in self.open.items() if len(t.keys) >= max_samples or t.bytes >= max_bytes]

    def close(self, groups: list[str] | None = None) -> list[dict[str, Any]]:
        """Finish the open shards (all, or those of ``groups``) durably under their final names."""
        out = []
        for g in list(self.open) if groups is None else groups:
            t = self.open.pop(g)
            end = 2 * tarfile.BLOCKSIZE  # end-of-archive marker, then pad to a whole record as tar does
            t.fh.write(b"\0" * (end + (-(t.fh.tell() + end) % tarfile.RECORDSIZE)))
            self.store.close_durably(t.fh)
            self.store.publish(f"{t.rel}.tmp", t.rel)
            entry = {"path": t.rel, "samples": len(t.keys), "bytes": self.store.size(t.rel), "run": self.run,
                     "writer": writer_tag()}
            out.append({**entry, "set": g} if g else entry)
        return out


def shard_name(corpus: str, run: str, group: str, uid: str) -> str:
    """``shards/[<set>-]<corpus>-<run>-<uid>.tar``: uid is a 6-digit counter on the driver, 12 hex on a worker
    (a Ray retry of a write task gets a new name, so its first attempt's file is never overwritten)."""
    return f"shards/{group + '-' if group else ''}{corpus}-{run}-{uid}.tar"


def worker_shard_name(corpus: str, run: str) -> Callable[[str], str]:
    return lambda group: shard_name(corpus, run, group, secrets.token_hex(6))


@dataclass
class _InputState:
    total: int
    seen: set[int] = field(default_factory=set)
    samples: list[tuple[str, str]] = field(default_factory=list)  # (key, shard)
    shards: set[str] = field(default_factory=set)
    reasons: Counter = field(default_factory=Counter)
    first_reject: tuple[str, str, str] = ("", "", "")
    source: dict[str, Any] = field(default_factory=dict)


class RunWriter:
    def __init__(
        self,
        folder: DatasetFolder,
        run: str,
        versions: dict[str, str],
        versions_key: str,
        committed: dict[str, str],
        max_samples: int = 100,
        max_bytes: int = 512 << 20,
        commit_every_s: float = 60.0,
        live_by_input: dict[str, list[tuple[str, str]]] | None = None,
        replaces: dict[str, str] | None = None,
        max_pending_rows: int = 5000,
    ) -> None:
        """``committed``: key -> shard of live samples with this refresh key (never written twice;
        the local writer's lookup); ``live_by_input``: input id -> (key, shard) of its live samples,
        retired when the input is rebuilt unless the new row keeps them; ``replaces``: input id -> why
        it is rebuilt. ``max_pending_rows``: rows held before a commit, so memory stays flat."""
        folder.prepare()
        self.folder, self.run, self.corpus = folder, run, folder.corpus
        self.versions, self.versions_key = json.dumps(versions, sort_keys=True, default=str), versions_key
        self.live_by_input, self.replaces = live_by_input or {}, replaces or {}
        self._retire: list[tuple[str, str]] = []
        self._rebuilt: set[str] = set()
        self.max_samples, self.max_bytes, self.commit_every_s = max_samples, max_bytes, commit_every_s
        self.max_pending_rows = max_pending_rows
        self.seq = 0
        self._shard_no = 0
        self.local = ShardWriter(folder.store, self.corpus, run, versions_key, committed, self._local_name)
        self._pending: dict[str, list[dict]] = {"inputs": [], "samples": [], "rejects": []}
        self._inputs: dict[str, _InputState] = {}
        self._last_commit = time.monotonic()
        self.counts: Counter = Counter()
        self.reasons: Counter = Counter()
        self.shards: list[str] = []
        self.bytes_written = 0
        self.driver_payload_bytes = 0  # sample payload that reached this (the driver's) process
        self.footage_s = 0.0  # input video seconds of every input processed (accepted or rejected)

    def _local_name(self, group: str) -> str:
        self._shard_no += 1
        return shard_name(self.corpus, self.run, group, f"{self._shard_no - 1:06d}")

    # -- the local runner: samples written here -----------------------------------------------
    def write(self, s: Sample) -> dict[str, Any]:
        row = self.local.add(s)
        self.driver_payload_bytes += row.get("bytes", 0)
        self._account(row)
        if self.local.full(self.max_samples, self.max_bytes) or self._due():
            self.commit()
        return row

    # -- the Ray runner: rows of shards a worker already wrote ---------------------------------
    def take(self, rows: list[dict[str, Any]], shards: list[dict[str, Any]]) -> None:
        """Account for ``rows`` and commit ``shards`` (published, unlisted) with their sample rows."""
        for row in rows:
            self._account(row)
        if shards:
            self._commit(shards)
        elif self._due():
            self.commit()

    def _due(self) -> bool:
        rows = sum(len(v) for v in self._pending.values())
        return rows >= self.max_pending_rows or (rows > 0 and time.monotonic() - self._last_commit > self.commit_every_s)

    def _account(self, row: dict[str, Any]) -> None:
        iid, (part, total) = row["input_id"], row["part"]
        st = self._inputs.setdefault(iid, _InputState(total=total, source=row["source"]))
        assert st.total == total, f"input {iid}: inconsistent part totals"
        if part in st.seen:  # delivered twice (a retried task): the copy is never live
            if row["status"] == "written":
                self._retire.append((row["shard"], row["key"]))
            self.counts["duplicate_deliveries"] += 1
            return
        st.seen.add(part)
        self.footage_s += row.get("footage_s", 0.0) / total  # each part carries its input's seconds
        if row["status"] == "deduplicated":
            self.counts["deduplicated"] += 1
            st.samples.append((row["key"], row["shard"]))
            st.shards.add(row["shard"])
        elif row["status"] == "written":
            self._pending["samples"].append({
                "key": row["key"], "input_id": iid, "shard": row["shard"], "bytes": row["bytes"], "run": self.run,
                "versions_key": self.versions_key, "members": row["members"]})
            st.samples.append((row["key"], row["shard"]))
            st.shards.add(row["shard"])
            self.counts["samples_written"] += 1
        else:
            self._pending["rejects"].append({"key": row["key"], "input_id": iid, "stage": row["stage"],
                                             "reason": row["reason"], "detail": row["detail"], "run": self.run,
                                             "retryable": is_retryable(row["reason"])})
            st.reasons[row["reason"]] += 1
            if not st.first_reject[0]:
                st.first_reject = (row["reason"], row["stage"], row["detail"])
        if len(st.seen) == st.total:
            self._finish_input(iid, self._inputs.pop(iid))

    def _finish_input(self, input_id: str, st: _InputState) -> None:
        accepted = bool(st.samples)
        reason, stage, detail = ("", "", "") if accepted else st.first_reject
        if not accepted and st.total > 1:
            reason = st.reasons.most_common(1)[0][0]
            detail = "no part accepted: " + json.dumps(dict(st.reasons))
        self.counts["accepted" if accepted else "rejected"] += 1
        if not accepted:
            self.reasons[reason] += 1
        # Any part that failed for a reason that is not the input's fault makes the whole input retryable.
        retryable = any(is_retryable(r) for r in st.reasons)
        self.counts["retryable_failed"] += retryable
        new = set(st.samples)
        stale = [p for p in self.live_by_input.pop(input_id, ()) if p not in new]
        self._retire.extend((shard, key) for key, shard in stale)
        self.counts["retired"] += len(stale)
        self._rebuilt.add(input_id)
        self._pending["inputs"].append({
            "id": input_id, "source": json.dumps(st.source, sort_keys=True, default=str),
            "status": "accepted" if accepted else "rejected", "reason": reason, "stage": stage, "detail": detail,
            "samples": sorted(k for k, _ in st.samples), "shards": sorted(st.shards), "versions": self.versions,
            "versions_key": self.versions_key, "run": self.run, "retryable": retryable,
            "replaces": self.replaces.get(input_id, ""),
        })

    def commit(self) -> None:
        """Close the local open shards (if any) durably and list them with the pending rows."""
        self._commit(self.local.close())

    def _commit(self, shards: list[dict[str, Any]]) -> None:
        """One index write per shard, each with its own sample rows; the last also takes every other row."""
        for i, shard in enumerate(shards):
            last = i == len(shards) - 1
            if last:
                tables = self._pending
            else:
                mine = [r for r in self._pending["samples"] if r["shard"] == shard["path"]]
                self._pending["samples"] = [r for r in self._pending["samples"] if r["shard"] != shard["path"]]
                tables = {"inputs": [], "samples": mine, "rejects": []}
            self.shards.append(shard["path"])
            self.bytes_written += shard["bytes"]
            self._index_write(shard, tables, last)
        if not shards and (any(self._pending.values()) or self._retire):
            self._index_write(None, self._pending, True)
        self._last_commit = time.monotonic()

    def _index_write(self, shard: dict[str, Any] | None, tables: dict[str, list[dict]], last: bool) -> None:
        if last:
            self.folder.commit(self.run, self.seq, shard, tables, self._retire, self._rebuilt)
            self._pending = {"inputs": [], "samples": [], "rejects": []}
            self._retire, self._rebuilt = [], set()
        else:
            self.folder.commit(self.run, self.seq, shard, tables)
        self.seq += 1

    def close(self) -> None:
        assert not self._inputs, f"inputs never completed: {sorted(self._inputs)[:5]}"
        self.commit()


def _detail(s: Sample) -> str:
    return s.errors[-1]["detail"] if s.errors else ""
