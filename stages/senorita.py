"""Señorita-2M pairs: turn metadata records into inputs, then validate each pair's clips.

Metadata (DESIGN §5) is a JSON list of records with ``source_video_path``,
``target_video_path``, ``instruction`` and ``enhanced_instruction``; paths are relative to
the dataset root and must stay inside it. A record that cannot become a pair (missing keys,
a path escaping the root, missing files) becomes an input that is already rejected, so it
still gets its manifest row.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fsspec
import numpy as np
from fsspec.implementations.local import LocalFileSystem

from stages.base import Resources, Sample, Stage
from stages.ids import content_id, text_id
from stages.video import DecodeError, iter_frames, probe

REQUIRED_KEYS = ("source_video_path", "target_video_path", "instruction")


class Root:
    """The folder input paths are relative to: a local path or an fsspec URI; nothing may leave it."""

    def __init__(self, root: str | Path) -> None:
        self.fs, base = fsspec.core.url_to_fs(str(root))
        self.local = isinstance(self.fs, LocalFileSystem)
        self.base = str(Path(base).resolve()) if self.local else base.rstrip("/")

    def confine(self, rel: str) -> str:
        """The path of ``rel`` under the root; ValueError when it leaves it (``..``, absolute, symlinks)."""
        if not isinstance(rel, str) or not rel:
            raise ValueError("path is empty or not a string")
        if os.path.isabs(rel) or "://" in rel:
            raise ValueError(f"absolute path {rel!r} (paths must be relative to --root)")
        if self.local:
            p = (Path(self.base) / rel).resolve()  # follows symlinks: RuntimeError on a loop
            if not p.is_relative_to(self.base):
                raise ValueError(f"path {rel!r} resolves outside the root")
            return str(p)
        p = posixpath.normpath(posixpath.join(self.base, rel))
        if not p.startswith(self.base + "/"):
            raise ValueError(f"path {rel!r} resolves outside the root")
        return p

    def exists(self, p: str) -> bool:
        return self.fs.exists(p)

    def is_file(self, p: str) -> bool:
        return self.fs.isfile(p)

    def uri(self, p: str) -> str:
        return p if self.local else self.fs.unstrip_protocol(p)


def read_bytes(uri: str) -> bytes:
    with fsspec.open(uri, "rb") as f:
        return f.read()


def load_pairs(pairs_path: str | Path) -> list[Any]:
    """The metadata list (local path or fsspec URI). A file that is not a JSON list is a user mistake."""
    p = str(pairs_path)
    try:
        data = json.loads(read_bytes(p))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"--pairs {p}: cannot read a JSON list of pairs ({e})") from e
    if isinstance(data, dict):  # some dumps wrap the list
        data = data.get("pairs", data.get("data"))
    if not isinstance(data, list):
        raise ValueError(f"--pairs {p}: expected a JSON list of pair records")  # noqa: TRY004 (a user's file)
    return data


def pair_inputs(records: list[Any], root: str | Path, start: int = 0) -> Iterator[Sample]:
    """One input Sample per record, content-addressed; unusable records come out rejected.

    Runs where it is called: in an ingest task on a Ray worker for a chunk of the pair list
    (pipelines/metadata.py ``PairList``), records numbered from ``start``; the content id reads
    both clips whole, so that work is spread over the cluster, never done by the driver.
    """
    root = Root(root)
    for i, rec in enumerate(records, start):
        desc = json.dumps(rec, sort_keys=True, default=str)
        if not isinstance(rec, dict):
            yield Sample(id=text_id(desc), source={"record": i}).reject("malformed_record", "ingest", desc[:200])
            continue
        source = {"record": i, **{k: rec.get(k) for k in (*REQUIRED_KEYS, "enhanced_instruction")}}
        missing = [k for k in REQUIRED_KEYS if not rec.get(k)]
        if missing:
            yield Sample(id=text_id(desc), source=source).reject("missing_keys", "ingest", ", ".join(missing))
            continue
        try:
            src = root.confine(rec["source_video_path"])
            tgt = root.confine(rec["target_video_path"])
        except (RuntimeError, OSError) as e:  # a symlink loop while resolving
            yield Sample(id=text_id(desc), source=source).reject("symlink_loop", "ingest", str(e))
            continue
        except ValueError as e:
            yield Sample(id=text_id(desc), source=source).reject("path_outside_root", "ingest", str(e))
            continue
        absent = [p for p in (src, tgt) if not root.exists(p)]
        if absent:
            yield Sample(id=text_id(desc), source=source).reject("missing_file", "ingest", ", ".join(absent))
            continue
        not_files = [p for p in (src, tgt) if not root.is_file(p)]
        if not_files:
            yield Sample(id=text_id(desc), source=source).reject("not_a_file", "ingest", ", ".join(not_files))
            continue
        src, tgt = root.uri(src), root.uri(tgt)
        sid = content_id([src, tgt], extra=str(rec["instruction"]))
        yield Sample(id=sid, source={**source, "source_abs": src, "target_abs": tgt})


def _is_vfr(times: list[float], tolerance: float) -> bool:
    d = np.diff(np.asarray(times, dtype=np.float64))
    if len(d) < 2 or not np.isfinite(d).all():
        return False
    med = float(np.median(d))
    return med <= 0 or float(np.max(np.abs(d - med))) > tolerance * med


@dataclass
class ValidatePair(Stage):
    """Decode both clips; keep pairs with the expected frame count, equal sizes and fps."""

    clip_frames: int = 33
    max_bytes: int = 256 << 20
    max_side: int = 4096  # larger frames are not Señorita clips (and would exhaust a GPU worker)
    vfr_tolerance: float = 0.25  # frame-interval spread, relative to the median, that still counts as constant
    resources: Resources = field(default_factory=lambda: Resources(cpus=1))  # decoding is CPU-bound: one task per core, no oversubscription
    version: str = "pair/1"
    # the settings that change the output, so changing one rebuilds (refresh key)
    output_fields = ("clip_frames", "max_bytes", "max_side", "vfr_tolerance")

    def process(self, batch: list[Sample]) -> list[Sample]:
        for s in batch:
            try:
                self._validate(s)
            except DecodeError as e:
                s.reject(f"{e.reason}", stage=self.name, detail=e.detail)
        return batch

    def _validate(self, s: Sample) -> None:
        infos, seconds = {}, 0.0
        for role in ("source", "target"):
            uri = s.source[f"{role}_abs"]
            fs, p = fsspec.core.url_to_fs(uri)
            size = int(fs.size(p))
            if size > self.max_bytes:
                s.reject("file_too_large", self.name, f"{role}: {size} bytes > {self.max_bytes}")
                return
            data = read_bytes(uri)
            info = probe(data)
            if max(info.width, info.height) > self.max_side:
                s.reject("frame_too_large", self.name, f"{role}: {info.width}x{info.height} > {self.max_side}")
                return
            times = [t for _, t, _ in iter_frames(data, size=(16, 16))]  # count what really decodes
            if len(times) != self.clip_frames:
                s.reject("wrong_frame_count", self.name, f"{role}: {len(times)} frames, expected {self.clip_frames}")
                return
            if _is_vfr(times, self.vfr_tolerance):
                s.reject("variable_frame_rate", self.name, f"{role}: frame intervals vary by more than "
                         f"{self.vfr_tolerance:.0%}; re-encode at a constant rate")
                return
            infos[role] = info
            seconds += len(times) / info.fps if info.fps else 0.0
            s.blobs[f"{role}.mp4"] = data
        s.footage_s = seconds  # both clips decoded as video: what the run's throughput counts
        a, b = infos["source"], infos["target"]
        if (a.width, a.height) != (b.width, b.height):
            s.reject("size_mismatch", self.name, f"source {a.width}x{a.height}, target {b.width}x{b.height}")
            return
        if abs(a.fps - b.fps) > 1e-3:
            s.reject("fps_mismatch", self.name, f"source {a.fps:.3f} fps, target {b.fps:.3f} fps")
            return
        s.meta.update({
            "instruction": s.source["instruction"],
            "enhanced_instruction": s.source.get("enhanced_instruction") or "",
            "source_video_path": s.source["source_video_path"],
            "target_video_path": s.source["target_video_path"],
            "fps": a.fps, "frames": self.clip_frames, "width": a.width, "height": a.height,
        })
