"""What recovery may delete after a crash: only our own debris, of runs the index names.

Recovery once deleted every file under ``shards/``, ``manifest/``, ``rejects/`` and ``runs/``
that ``dataset.json`` did not list, following symlinks: a user's ``runs/train/state.pt``, a
whole corpus whose ``dataset.json`` had been deleted, files behind a ``shards`` symlink. Now a
file is debris only if its name is one our writers produce *for a run the index names* (a run
registers itself in ``dataset.json`` before it writes anything) and the index does not list
it (manifest parts in their table folders or under pending names, pipelines/manifest.py, and
the ``memcorpus/1`` names a migration leaves behind). Anything else is reported and left
alone; symlinks are never followed nor removed; a folder with content but no ``dataset.json``
is refused unless the caller passes ``force_new``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from pipelines.lock import LEASE_FILE, LOCK_FILE
from pipelines.manifest import PENDING, pending_rel
from pipelines.storage import TMP_PREFIX, Storage

SUBDIRS = ("shards", "manifest", "rejects", "runs")
INDEX = "dataset.json"
_TMP_SUFFIX = r"\.[0-9a-f]{8}"  # Storage.write_atomic's random suffix


@dataclass
class RecoveryPlan:
    remove: list[tuple[str, str]] = field(default_factory=list)  # (relative path, why it is debris)
    keep: list[tuple[str, str]] = field(default_factory=list)  # (relative path, why it is left alone)


def run_names(idx: dict[str, Any]) -> set[str]:
    """Every run the index knows: registered, finished, or with committed parts."""
    runs = {r if isinstance(r, str) else r.get("run") for r in idx.get("runs", [])}
    return {r for r in runs | {m.get("run") for m in idx.get("manifests", [])} if r}


def listed_files(idx: dict[str, Any]) -> set[str]:
    """Every file the index lists; a listed manifest part counts under its pending name too (pipelines/manifest.py)."""
    listed = {s["path"] for s in idx.get("shards", [])}
    parts = {m[t] for m in idx.get("manifests", []) for t in ("inputs", "samples", "rejects") if m.get(t)}
    listed |= parts | {pending_rel(p) for p in parts}
    listed |= {r["record"] for r in idx.get("runs", []) if isinstance(r, dict) and r.get("record")}
    return listed


def _patterns(corpus: str, runs: set[str]) -> list[tuple[re.Pattern, str]]:
    if not runs:
        return [(re.compile(rf"{re.escape(TMP_PREFIX)}{re.escape(INDEX)}{_TMP_SUFFIX}"), "unfinished index write")]
    c, r = re.escape(corpus), "(?:" + "|".join(re.escape(x) for x in sorted(runs)) + ")"
    tables, tmp = "(?:inputs|samples|rejects)", re.escape(TMP_PREFIX)
    # memcorpus/1 names: parts in manifest/<run>/, folded files beside each other (migrate() moves them away).
    old = rf"(?:manifest/{r}\.parquet|manifest/{r}\.samples\.parquet|rejects/{r}\.parquet)"
    return [
        # [<set>-]<corpus>-<run>-<6-digit counter (driver) | 12 hex (worker write task)>.tar (pipelines/writer.py)
        (re.compile(rf"shards/(?:[a-z0-9_]+-)?{c}-{r}-(?:\d{{6}}|[0-9a-f]{{12}})\.tar\.tmp"), "unfinished shard"),
        (re.compile(rf"shards/(?:[a-z0-9_]+-)?{c}-{r}-(?:\d{{6}}|[0-9a-f]{{12}})\.tar"), "shard never committed"),
        (re.compile(rf"manifest/{tables}/\.{r}-\d{{6}}\.parquet{re.escape(PENDING)}"), "manifest part never listed"),
        (re.compile(rf"manifest/{tables}/{r}-\d{{6}}\.parquet"), "manifest part never committed"),
        (re.compile(rf"manifest/{tables}/{tmp}[^/]+{_TMP_SUFFIX}"), "unfinished manifest write"),
        (re.compile(rf"manifest/{r}/{tables}-\d{{6}}\.parquet"), "old-layout manifest part not listed"),
        (re.compile(rf"manifest/{r}/{tmp}{tables}-\d{{6}}\.parquet{_TMP_SUFFIX}"), "unfinished old-layout part"),
        (re.compile(old), "old-layout manifest not listed (never committed, or moved to manifest/<table>/)"),
        (re.compile(rf"runs/{r}\.json"), "run record never committed"),
        (re.compile(rf"(?:manifest|rejects|runs)/{tmp}[^/]+{_TMP_SUFFIX}"), "unfinished write"),
        (re.compile(rf"{tmp}{re.escape(INDEX)}{_TMP_SUFFIX}"), "unfinished index write"),
    ]


def walk(store: Storage) -> tuple[list[str], list[str]]:
    """(regular files, symlinks) under the dataset's own subfolders and its top level, never through a link."""
    if not store.local:
        files = [rel for sub in SUBDIRS for rel in store.files(sub)]
        top = [p.rsplit("/", 1)[-1] for p in store.fs.ls(store.base, detail=False)] if store.fs.exists(store.base) \
            else []
        return files + [t for t in top if t.startswith(TMP_PREFIX)], []
    files, links = [], []
    base = store.base
    if not os.path.isdir(base):
        return [], []
    with os.scandir(base) as it:
        for e in it:
            if e.is_symlink():
                links.append(e.name)
            elif e.is_file(follow_symlinks=False):
                files.append(e.name)
    for sub in SUBDIRS:
        top = os.path.join(base, sub)
        if os.path.islink(top) or not os.path.isdir(top):
            continue
        for d, dirs, names in os.walk(top, followlinks=False):
            rel_d = os.path.relpath(d, base).replace(os.sep, "/")
            for n in dirs + names:
                p = os.path.join(d, n)
                if os.path.islink(p):
                    links.append(f"{rel_d}/{n}")
                elif n in names:
                    files.append(f"{rel_d}/{n}")
    return sorted(files), sorted(links)


def has_content(store: Storage) -> bool:
    """Anything in the folder besides our lock files and empty dataset subfolders."""
    files, links = walk(store)
    ours = {LOCK_FILE, LEASE_FILE}
    if links or any(f not in ours and not _is_index_tmp(f) for f in files):
        return True
    if store.local:
        top = os.listdir(store.base) if os.path.isdir(store.base) else []
    else:
        top = [p.rstrip("/").rsplit("/", 1)[-1] for p in store.fs.ls(store.base, detail=False)] \
            if store.fs.exists(store.base) else []
    return any(n not in ours and n not in SUBDIRS and not _is_index_tmp(n) for n in top)


def _is_index_tmp(rel: str) -> bool:
    return re.fullmatch(rf"{re.escape(TMP_PREFIX)}{re.escape(INDEX)}{_TMP_SUFFIX}", rel) is not None


def plan(store: Storage, idx: dict[str, Any], corpus: str) -> RecoveryPlan:
    """What recovery would remove, and what unlisted files it leaves alone (and why)."""
    out = RecoveryPlan()
    listed = listed_files(idx) | {INDEX, LOCK_FILE, LEASE_FILE}
    pats = _patterns(corpus, run_names(idx))
    files, links = walk(store)
    for rel in files:
        if rel in listed:
            continue
        why = next((w for p, w in pats if p.fullmatch(rel)), None)
        if why is None:
            if "/" in rel:  # top-level files are the user's business; report only what sits in our folders
                out.keep.append((rel, "not a file this dataset's runs write"))
        else:
            out.remove.append((rel, why))
    out.keep += [(rel, "symlink: never followed or removed") for rel in links]
    return out
