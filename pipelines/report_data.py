"""What the dataset report reads: the index, run records, manifest tables and the samples' members.

Reading is split in two passes over the shards because the costs differ by orders of magnitude:
every sample's ``.json`` (small, needed for the histograms) and the media of the first few
samples (decoded into contact sheets). Only what ``dataset.json`` lists is read, so a crashed
run's debris never shows up in a report.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.dataset import INDEX, TABLES
from pipelines.manifest import read_parts
from pipelines.names import check_index, check_run_record
from pipelines.storage import Storage


@dataclass
class DatasetView:
    """Everything the report shows that is not a decoded picture."""

    store: Storage
    index: dict[str, Any]
    runs: list[dict[str, Any]]
    tables: dict[str, list[dict[str, Any]]]
    metas: list[dict[str, Any]] = field(default_factory=list)  # every sample's meta, up to a limit
    metas_truncated: bool = False

    @property
    def root(self) -> Path | str:
        return self.store.root

    @property
    def corpus(self) -> str:
        return str(self.index.get("corpus", "?"))

    def counts(self) -> dict[str, int]:
        """Totals over every manifest row: the same numbers ``memcorpus verify`` proves."""
        inputs = self.tables["inputs"]
        status = Counter(r["status"] for r in inputs)
        shards = self.index.get("shards", [])
        return {
            "inputs": len(inputs),
            "accepted": status.get("accepted", 0),
            "rejected": status.get("rejected", 0),
            "samples": len(self.tables["samples"]),
            "rejected_samples": len(self.tables["rejects"]),
            "shards": len(shards),
            "bytes": int(sum(s.get("bytes", 0) for s in shards)),
            "runs": len(self.runs),
        }

    def input_reasons(self) -> Counter:
        """Why inputs were rejected (one per rejected input)."""
        return Counter(r["reason"] or "unknown" for r in self.tables["inputs"] if r["status"] == "rejected")

    def sample_reasons(self) -> dict[tuple[str, str], int]:
        """(stage, reason) -> rejected samples; finer than inputs when one input splits into many."""
        return dict(Counter((r["stage"] or "?", r["reason"] or "unknown") for r in self.tables["rejects"]))

    def examples(self, reason: str, limit: int = 2) -> list[str]:
        details = [r["detail"] for r in self.tables["rejects"] if r["reason"] == reason and r["detail"]]
        return details[:limit]


def load_view(root: str | Path, max_metas: int = 20000) -> DatasetView:
    """Read a dataset folder's index, run records, manifest tables and up to ``max_metas`` sample metas."""
    store = Storage(root)
    if not store.is_file(INDEX):
        raise ValueError(f"{root} is not a dataset folder: {INDEX} does not exist there (build a corpus first)")
    # The report reads every path the index lists: a hostile folder must not point it elsewhere.
    index = check_index(json.loads(store.read_bytes(INDEX)), store.path(INDEX), store.root if store.local else None)
    runs = []
    for r in index.get("runs", []):
        if isinstance(r, dict) and r.get("record") and store.is_file(r["record"]):
            rec = check_run_record(json.loads(store.read_bytes(r["record"])), store.path(r["record"]))
            runs.append({**rec, "crashed": r.get("crashed", False)})
    # Parquet read without a schema of ours: the report shows whatever columns the manifest has.
    tables = {t: read_parts(store, [m[t] for m in index.get("manifests", []) if m.get(t)]) for t in TABLES}
    view = DatasetView(store, index, runs, tables)
    for _, members in iter_samples(store, index, want=lambda name: name == "json"):
        if len(view.metas) >= max_metas:
            view.metas_truncated = True
            break
        view.metas.append(members.get("json", {}))
    return view


def iter_samples(
    store: Storage, index: dict[str, Any], want: Callable[[str], bool]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """``(key, {member: value})`` for every sample of the listed shards, reading only ``want``-ed members.

    Members are grouped the way webdataset groups them (key = name up to the first dot).
    json and npy members are decoded; everything else stays bytes.
    """
    for shard in index.get("shards", []):
        # Random access ("r:"), not streaming: the json pass seeks over video members instead of reading them.
        with store.open_read(shard["path"]) as f, tarfile.open(fileobj=f, mode="r:") as tar:
            key, members = None, {}
            for m in tar:
                if not m.isfile():
                    continue
                k, _, name = m.name.partition(".")
                if k != key:
                    if key is not None:
                        yield key, members
                    key, members = k, {}
                if want(name):
                    members[name] = _decode(name, tar.extractfile(m).read())
            if key is not None:
                yield key, members


def _decode(name: str, data: bytes) -> Any:
    if name == "json" or name.endswith(".json"):
        return json.loads(data)
    if name.endswith(".npy"):
        return np.load(io.BytesIO(data), allow_pickle=False)
    return data


def sample_media(view: DatasetView, limit: int, max_video_bytes: int = 256 << 20) -> list[tuple[str, dict]]:
    """The first ``limit`` samples with all their members (videos larger than the cap left out)."""
    out = []
    if limit <= 0:
        return out
    for key, members in iter_samples(view.store, view.index, want=lambda name: True):
        members = {k: v for k, v in members.items() if not (isinstance(v, bytes) and len(v) > max_video_bytes)}
        out.append((key, members))
        if len(out) >= limit:
            break
    return out


# -- per-sample measures for the histograms ----------------------------------------------------
def duration_s(meta: dict) -> float | None:
    if isinstance(meta.get("duration"), (int, float)):
        return float(meta["duration"])
    fps, frames = meta.get("fps"), meta.get("frames")
    if isinstance(fps, (int, float)) and fps > 0 and isinstance(frames, (int, float)):
        return float(frames) / float(fps)
    return None


def caption_words(meta: dict) -> dict[str, list[int]]:
    """Words per caption, by caption kind (story, shot, recon); empty when the sample has no captions."""
    caps = meta.get("captions")
    out: dict[str, list[int]] = {}
    if not isinstance(caps, dict):
        return out
    if isinstance(caps.get("story"), str):
        out["story"] = [len(caps["story"].split())]
    for kind in ("shots", "recon"):
        texts = caps.get(kind)
        if isinstance(texts, list):
            out[kind.rstrip("s")] = [len(t.split()) for t in texts if isinstance(t, str)]
    return out


def overlay_counts(view: DatasetView) -> dict[str, int]:
    """Static overlays (logos, watermarks, copyright lines) in written samples: found, cut off by the crop, left
    in; plus sequences rejected because the crop could not afford to cut one (``overlay_kept``)."""
    ovs = [o for m in view.metas for o in ((m.get("subtitles") or {}).get("overlays") or []) if isinstance(o, dict)]
    return {"overlays": len(ovs), "overlays_cut": sum(1 for o in ovs if o.get("kept") is False),
            "overlays_kept": sum(1 for o in ovs if o.get("kept")),
            "overlay_rejects": sum(1 for r in view.tables["rejects"] if r.get("reason") == "overlay_kept")}


def measures(metas: list[dict]) -> dict[str, Any]:
    """The numbers the histograms plot; a key is present only when some sample has the field."""
    out: dict[str, Any] = {}
    durs = [d for d in map(duration_s, metas) if d is not None]
    if durs:
        out["duration"] = durs
    shots = [len(m["shots"]) for m in metas if isinstance(m.get("shots"), list)]
    if shots:
        out["shots"] = shots
    kept = [float(m["kept_fraction"]) for m in metas if isinstance(m.get("kept_fraction"), (int, float))]
    if kept:
        out["kept"] = kept
    words: dict[str, list[int]] = {}
    for m in metas:
        for kind, ns in caption_words(m).items():
            words.setdefault(kind, []).extend(ns)
    if words:
        out["caption_words"] = words
    instr = [len(m["instruction"].split()) for m in metas if isinstance(m.get("instruction"), str)]
    if instr:
        out["instruction_words"] = instr
    return out
