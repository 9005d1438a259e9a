"""The one writer of a run: samples in, WebDataset shards and manifest parts out, exactly once.

Accepted samples go into the open shard; rejected ones become reject rows. An input's
manifest row is emitted once every part split off it has arrived. Each commit lists the
finished shard together with the rows that belong to it, so a crash loses at most the
uncommitted tail, which the next run rebuilds. A sample whose key is already live with the
same refresh key (a crashed run got that far) is not written again. When an input is rebuilt
(new refresh key, retry, repair), its old live samples that the new row does not keep are
retired in the same commit as the new row. Every member's blake2b digest is recorded in the
samples manifest as the member is written (verify and repair check them).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pipelines.dataset import DatasetFolder
from pipelines.schema import check_sample
from pipelines.shardscan import digest
from stages.base import Sample, is_retryable
from stages.ids import sanitize_key

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


@dataclass
class _InputState:
    total: int
    seen: set[int] = field(default_factory=set)
    samples: list[str] = field(default_factory=list)
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
    ) -> None:
        """``committed``: key -> shard of live samples with this refresh key (never written twice);
        ``live_by_input``: input id -> (key, shard) of its live samples, retired when the input is
        rebuilt unless the new row keeps them; ``replaces``: input id -> why it is rebuilt."""
        folder.prepare()
        self.folder, self.run, self.corpus = folder, run, folder.corpus
        self.versions, self.versions_key = json.dumps(versions, sort_keys=True, default=str), versions_key
        self.committed = committed
        self.live_by_input, self.replaces = live_by_input or {}, replaces or {}
        self._retire: list[tuple[str, str]] = []
        self._rebuilt: set[str] = set()
        self.max_samples, self.max_bytes, self.commit_every_s = max_samples, max_bytes, commit_every_s
        self.seq = 0
        self._tar: bool | None = None  # an open shard file
        self._fh = None
        self._tar_keys: list[str] = []
        self._tar_bytes = 0
        self._pending: dict[str, list[dict]] = {"inputs": [], "samples": [], "rejects": []}
        self._inputs: dict[str, _InputState] = {}
        self._last_commit = time.monotonic()
        self.counts: Counter = Counter()
        self.reasons: Counter = Counter()
        self.shards: list[str] = []
        self.bytes_written = 0

    # -- shard files -----------------------------------------------------------------------
    def _shard_rel(self) -> str:
        return f"shards/{self.corpus}-{self.run}-{self.seq:06d}.tar"

    def _open_tar(self) -> None:
        self._fh = self.folder.store.open_write(f"{self._shard_rel()}.tmp")
        self._tar = True

    def _add_to_tar(self, key: str, members: dict[str, bytes]) -> tuple[int, list[dict[str, Any]]]:
        # Plain ustar records written straight to the file: tarfile's own copy loop moves
        # 16 KiB at a time and halves the throughput for video-sized members.
        if self._tar is None:
            self._open_tar()
        n, sums = 0, []
        for ext, data in members.items():
            info = tarfile.TarInfo(f"{key}.{ext}")
            info.size, info.mtime, info.mode = len(data), 0, 0o444
            self._fh.write(info.tobuf(format=tarfile.USTAR_FORMAT))
            self._fh.write(data)
            self._fh.write(b"\0" * (-len(data) % tarfile.BLOCKSIZE))
            n += len(data)
            sums.append({"name": ext, "size": len(data), "blake2b": digest(data)})  # bytes in hand: no re-read
        self._tar_keys.append(key)
        self._tar_bytes += n
        return n, sums

    def _close_tar(self) -> None:
        end = 2 * tarfile.BLOCKSIZE  # end-of-archive marker, then pad to a whole record as tar does
        self._fh.write(b"\0" * (end + (-(self._fh.tell() + end) % tarfile.RECORDSIZE)))
        self.folder.store.close_durably(self._fh)

    # -- the stream ------------------------------------------------------------------------
    def write(self, s: Sample) -> None:
        st = self._inputs.setdefault(s.input_id, _InputState(total=s.part[1], source=s.source))
        assert st.total == s.part[1], f"input {s.input_id}: inconsistent part totals"
        assert s.part[0] not in st.seen, f"input {s.input_id}: part {s.part} arrived twice"
        st.seen.add(s.part[0])
        if not s.rejected and s.id in self.committed:
            self.counts["deduplicated"] += 1  # a crashed run already committed this sample
            st.samples.append(s.id)
            st.shards.add(self.committed[s.id])
        elif not s.rejected:
            try:
                members = encode_members(s, self.corpus)
            except SchemaViolation as e:
                s.reject("schema_violation", stage="writer", detail=str(e))
            except (ValueError, TypeError) as e:
                s.reject("unserialisable_output", stage="writer", detail=str(e))
        if not s.rejected and s.id not in self.committed:
            shard = self._shard_rel()
            n, sums = self._add_to_tar(s.id, members)
            self.committed[s.id] = shard
            self._pending["samples"].append({"key": s.id, "input_id": s.input_id, "shard": shard, "bytes": n,
                                             "run": self.run, "versions_key": self.versions_key, "members": sums})
            st.samples.append(s.id)
            st.shards.add(shard)
            self.counts["samples_written"] += 1
        if s.rejected:
            self._pending["rejects"].append({"key": s.id, "input_id": s.input_id, "stage": s.reject_stage,
                                             "reason": s.reason, "detail": _detail(s), "run": self.run,
                                             "retryable": is_retryable(s.reason)})
            st.reasons[s.reason] += 1
            if not st.first_reject[0]:
                st.first_reject = (s.reason, s.reject_stage, _detail(s))
        if len(st.seen) == st.total:
            self._finish_input(s.input_id, self._inputs.pop(s.input_id))
        self._maybe_commit()

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
        new = {(k, self.committed[k]) for k in st.samples}
        stale = [p for p in self.live_by_input.pop(input_id, ()) if p not in new]
        self._retire.extend((shard, key) for key, shard in stale)
        self.counts["retired"] += len(stale)
        self._rebuilt.add(input_id)
        self._pending["inputs"].append({
            "id": input_id, "source": json.dumps(st.source, sort_keys=True, default=str),
            "status": "accepted" if accepted else "rejected", "reason": reason, "stage": stage, "detail": detail,
            "samples": sorted(st.samples), "shards": sorted(st.shards), "versions": self.versions,
            "versions_key": self.versions_key, "run": self.run, "retryable": retryable,
            "replaces": self.replaces.get(input_id, ""),
        })

    def _maybe_commit(self) -> None:
        full = len(self._tar_keys) >= self.max_samples or self._tar_bytes >= self.max_bytes
        stale = time.monotonic() - self._last_commit > self.commit_every_s
        if full or (stale and any(self._pending.values())):
            self.commit()

    def commit(self) -> None:
        """Close the open shard (if any) durably and list it with the pending rows."""
        shard = None
        if self._tar is not None:
            self._close_tar()
            rel = self._shard_rel()
            self.folder.store.publish(f"{rel}.tmp", rel)
            shard = {"path": rel, "samples": len(self._tar_keys), "bytes": self.folder.store.size(rel), "run": self.run}
            self.shards.append(rel)
            self.bytes_written += shard["bytes"]
            self._tar, self._fh, self._tar_keys, self._tar_bytes = None, None, [], 0
        if shard is not None or any(self._pending.values()):
            self.folder.commit(self.run, self.seq, shard, self._pending, self._retire, self._rebuilt)
            self.seq += 1
        self._pending = {"inputs": [], "samples": [], "rejects": []}
        self._retire, self._rebuilt = [], set()
        self._last_commit = time.monotonic()

    def close(self) -> None:
        assert not self._inputs, f"inputs never completed: {sorted(self._inputs)[:5]}"
        self.commit()


def _detail(s: Sample) -> str:
    return s.errors[-1]["detail"] if s.errors else ""

