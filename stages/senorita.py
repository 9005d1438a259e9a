"""Señorita-2M pairs: read the metadata into inputs, then validate each pair's clips.

Metadata (DESIGN §5) is a JSON list of records with ``source_video_path``,
``target_video_path``, ``instruction`` and ``enhanced_instruction``; paths are relative to
the dataset root and must stay inside it. A record that cannot become a pair (missing keys,
a path escaping the root, missing files) becomes an input that is already rejected, so it
still gets its manifest row.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from stages.base import Resources, Sample, Stage
from stages.ids import content_id, text_id
from stages.video import DecodeError, iter_frames, probe

REQUIRED_KEYS = ("source_video_path", "target_video_path", "instruction")


def confine(root: Path, rel: str) -> Path:
    """``root/rel`` resolved; ValueError when it leaves ``root`` (``..``, absolute paths, symlinks)."""
    if not isinstance(rel, str) or not rel:
        raise ValueError("path is empty or not a string")
    if os.path.isabs(rel):
        raise ValueError(f"absolute path {rel!r} (paths must be relative to --root)")
    p = (root / rel).resolve()
    if not p.is_relative_to(root.resolve()):
        raise ValueError(f"path {rel!r} resolves outside the root")
    return p


def load_pairs(pairs_path: str | Path) -> list[Any]:
    """The metadata list. A file that is not a JSON list is a user mistake (ValueError)."""
    p = Path(pairs_path)
    try:
        data = json.loads(p.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"--pairs {p}: cannot read a JSON list of pairs ({e})") from e
    if isinstance(data, dict):  # some dumps wrap the list
        data = data.get("pairs", data.get("data"))
    if not isinstance(data, list):
        raise ValueError(f"--pairs {p}: expected a JSON list of pair records")
    return data


def pair_inputs(records: list[Any], root: str | Path) -> Iterator[Sample]:
    """One input Sample per record, content-addressed; unusable records come out rejected."""
    root = Path(root)
    for i, rec in enumerate(records):
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
            src = confine(root, rec["source_video_path"])
            tgt = confine(root, rec["target_video_path"])
        except (RuntimeError, OSError) as e:  # a symlink loop while resolving
            yield Sample(id=text_id(desc), source=source).reject("symlink_loop", "ingest", str(e))
            continue
        except ValueError as e:
            yield Sample(id=text_id(desc), source=source).reject("path_outside_root", "ingest", str(e))
            continue
        absent = [str(p) for p in (src, tgt) if not p.exists()]
        if absent:
            yield Sample(id=text_id(desc), source=source).reject("missing_file", "ingest", ", ".join(absent))
            continue
        not_files = [str(p) for p in (src, tgt) if not p.is_file()]
        if not_files:
            yield Sample(id=text_id(desc), source=source).reject("not_a_file", "ingest", ", ".join(not_files))
            continue
        sid = content_id([src, tgt], extra=str(rec["instruction"]))
        yield Sample(id=sid, source={**source, "source_abs": str(src), "target_abs": str(tgt)})


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
    resources: Resources = Resources(cpus=0.5)
    version: str = "pair/1"

    def process(self, batch: list[Sample]) -> list[Sample]:
        for s in batch:
            try:
                self._validate(s)
            except DecodeError as e:
                s.reject(f"{e.reason}", stage=self.name, detail=e.detail)
        return batch

    def _validate(self, s: Sample) -> None:
        infos = {}
        for role in ("source", "target"):
            path = Path(s.source[f"{role}_abs"])
            size = path.stat().st_size
            if size > self.max_bytes:
                s.reject("file_too_large", self.name, f"{role}: {size} bytes > {self.max_bytes}")
                return
            data = path.read_bytes()
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
            s.blobs[f"{role}.mp4"] = data
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
