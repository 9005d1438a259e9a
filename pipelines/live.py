"""What is live in a dataset folder: the current row of every input and the samples it owns.

Old shards are never rewritten. When an input is rebuilt (its refresh key changed, a retryable
failure is retried, or ``repair`` re-queued it) its new manifest row supersedes the old one,
and the old samples the new row does not keep are *retired*: listed under their shard's
``retired`` keys in ``dataset.json``, so readers skip them while the files stay as they were.

- the live row of an input is its last row in commit order (``dataset.json["manifests"]``);
- a live sample is a samples-manifest row whose (shard, key) is listed and not retired;
- ``dataset.json["requeue"]`` names inputs the next run must rebuild (damage found by repair).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from stages.base import Stage

# Why a row supersedes an earlier row of the same input (the manifest's ``replaces`` column).
REFRESH, RETRY, REPAIR = "refresh", "retry", "repair"


def refresh_key(stages: list[Stage]) -> tuple[dict[str, Any], str]:
    """Stage versions plus the settings each stage declares as shaping its output, and their hash.

    A changed threshold or model path must rebuild what it shaped, exactly like a version bump.
    """
    versions: dict[str, Any] = {}
    for s in stages:
        conf = s.output_config()
        versions[s.name] = s.version if not conf else {"version": s.version, "config": conf}
    blob = json.dumps(versions, sort_keys=True, default=str).encode()
    return versions, hashlib.blake2b(blob, digest_size=8).hexdigest()


def retired_pairs(idx: dict[str, Any]) -> set[tuple[str, str]]:
    """(shard, key) of every retired sample (repair lists every key of a damaged shard here too)."""
    out = set()
    for s in idx.get("shards", []):
        out.update((s["path"], k) for k in s.get("retired", ()))
    return out


def fully_retired(shard: dict[str, Any]) -> bool:
    return bool(shard.get("damaged")) or len(shard.get("retired", ())) >= shard.get("samples", 0) > 0


@dataclass
class Live:
    inputs: dict[str, dict[str, Any]] = field(default_factory=dict)  # input id -> its live row
    history: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # input id -> rows, in commit order
    samples: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> live sample row (the last one)
    sample_rows: list[dict[str, Any]] = field(default_factory=list)  # every live sample row, doubles included
    doubled: dict[str, int] = field(default_factory=dict)  # key -> count, for keys live in more than one place
    requeue: dict[str, str] = field(default_factory=dict)

    def committed_for(self, vkey: str) -> dict[str, str]:
        """key -> shard of live samples built with ``vkey``: the ones a resumed run must not write again."""
        return {r["key"]: r["shard"] for r in self.sample_rows if self._vkey_of(r) == vkey}

    def _vkey_of(self, sample_row: dict[str, Any]) -> str | None:
        # Parts written before samples carried their key: the key of the input row that lists them.
        if sample_row.get("versions_key"):
            return sample_row["versions_key"]
        row = self.inputs.get(sample_row["input_id"])
        return row["versions_key"] if row else None

    def by_input(self) -> dict[str, list[tuple[str, str]]]:
        """input id -> (key, shard) of its live samples (a key live twice after a crashed rebuild: both)."""
        out: dict[str, list[tuple[str, str]]] = {}
        for r in self.sample_rows:
            out.setdefault(r["input_id"], []).append((r["key"], r["shard"]))
        return out

    def why_rebuild(self, input_id: str, vkey: str, retry_failed: bool) -> str | None:
        """None if the input is done for ``vkey``; else why it is built again ("" for a new input)."""
        row = self.inputs.get(input_id)
        if row is None:
            return ""
        if input_id in self.requeue:
            return REPAIR
        if row["versions_key"] != vkey:
            return REFRESH
        if retry_failed and row.get("retryable"):
            return RETRY
        return None


def live_state(idx: dict[str, Any], inputs: list[dict], samples: list[dict]) -> Live:
    """``inputs``/``samples``: every row of those tables, in the order the index lists the parts."""
    live = Live(requeue=dict(idx.get("requeue") or {}))
    for r in inputs:
        live.history.setdefault(r["id"], []).append(r)
        live.inputs[r["id"]] = r
    listed = {s["path"] for s in idx.get("shards", [])}
    gone = retired_pairs(idx)
    for r in samples:
        if r["shard"] not in listed or (r["shard"], r["key"]) in gone:
            continue
        if r["key"] in live.samples and live.samples[r["key"]]["shard"] != r["shard"]:
            live.doubled[r["key"]] = live.doubled.get(r["key"], 1) + 1
        live.samples[r["key"]] = r
        live.sample_rows.append(r)
    return live
