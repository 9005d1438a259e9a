"""Names and relative paths read from a dataset folder are data: checked here before any use.

A dataset folder may come from anyone (a shared disk, a downloaded corpus). Its ``dataset.json``
and run records name runs and list files that we join to the folder's path and then read,
overwrite or delete (recovery removes debris and ``rmtree``s ``manifest/<run>``). A run named
``../../x``, a shard at ``/etc/x`` or a ``shards`` folder that is a symlink to elsewhere would
make those operations act outside the folder, so every such value is checked once, when the
index or a record is read, and a bad one is refused with a ``ValueError`` naming field and file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

# What our own writers produce: run ids (20250101T000000-ab12), corpus names, tar and Parquet names.
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,200}")
SUBFOLDERS = ("shards", "manifest", "rejects", "runs")
TABLE_KEYS = ("inputs", "samples", "rejects")
# A wrong JSON type is bad data like any other here: ValueError, not the TypeError ruff's TRY004 asks for.


def safe_name(value: Any, what: str, where: str = "") -> str:
    """``value`` if it is a plain name (``[A-Za-z0-9_.-]``, no ``..``); else ValueError naming ``what``."""
    if not isinstance(value, str) or not _NAME.fullmatch(value) or ".." in value or value == ".":
        raise ValueError(f"{where or 'dataset folder'}: {what}={value!r} is not a safe name (letters, digits, "
                         "'_', '.', '-' only; no '..', no separators): refusing to use this dataset folder")
    return value


def safe_rel(value: Any, allowed_prefixes: tuple[str, ...], what: str, where: str = "",
             root: Path | None = None, _parents: dict[str, bool] | None = None) -> str:
    """``value`` if it is a relative path under one of ``allowed_prefixes`` (e.g. ``"shards/"``).

    Every component must be a safe name, so absolute paths, ``..``, backslashes, drive letters
    and URIs are all refused. With ``root`` (a local folder) the path must also stay inside the
    folder after symlinks are resolved, and the file itself must not be a symlink: recovery
    deletes and the writer replaces files by these paths. ``_parents`` caches resolved folders
    across the calls of one index check, so a big index costs one ``lstat`` per file.
    """
    where = where or "dataset folder"
    if not isinstance(value, str) or not value.startswith(allowed_prefixes):
        raise ValueError(f"{where}: {what}={value!r} is not a relative path under {'/'.join(allowed_prefixes)}: "
                         "refusing to use this dataset folder")
    for part in value.split("/"):
        safe_name(part, what, where)
    if root is None:
        return value
    parents = {} if _parents is None else _parents
    parent = value.rsplit("/", 1)[0]
    if parent not in parents:
        top = os.path.realpath(root)
        real = os.path.realpath(os.path.join(top, parent))
        parents[parent] = real == top or real.startswith(top + os.sep)
    if not parents[parent] or os.path.islink(os.path.join(root, value)):
        raise ValueError(f"{where}: {what}={value!r} leads outside the dataset folder through a symlink: "
                         "refusing to use this dataset folder")
    return value


def check_folder(root: Path) -> None:
    """The dataset's own subfolders must be real folders inside ``root``, never symlinks.

    Recovery lists and deletes every unlisted file in them; through a symlinked ``shards``
    that would be someone else's files.
    """
    for sub in SUBFOLDERS:
        if os.path.islink(root / sub):
            raise ValueError(f"{root}/{sub} is a symlink ({os.readlink(root / sub)}): a dataset's subfolders must "
                             "be real folders inside it; refusing to use this dataset folder")


def check_index(idx: dict[str, Any], where: str, root: Path | None = None) -> dict[str, Any]:
    """Validate every name and path ``dataset.json`` holds; returns ``idx`` unchanged.

    ``root`` is the local folder (None for object stores, which have no symlinks).
    """
    if root is not None:
        check_folder(root)
    parents: dict[str, bool] = {}

    def rel(value: Any, prefixes: tuple[str, ...], what: str) -> str:
        return safe_rel(value, prefixes, what, where, root, parents)

    if "corpus" in idx:
        safe_name(idx["corpus"], "corpus", where)
    for i, s in enumerate(_entries(idx, "shards", where)):
        rel(s.get("path"), ("shards/",), f"shards[{i}].path")
        if "run" in s:
            safe_name(s["run"], f"shards[{i}].run", where)
    for i, m in enumerate(_entries(idx, "manifests", where)):
        safe_name(m.get("run"), f"manifests[{i}].run", where)
        for t in TABLE_KEYS:
            if m.get(t):
                rel(m[t], ("manifest/", "rejects/"), f"manifests[{i}].{t}")
    for i, r in enumerate(idx.get("runs") or []):
        if isinstance(r, str):  # training/synthetic.py lists bare run names
            safe_name(r, f"runs[{i}]", where)
            continue
        if not isinstance(r, dict):
            raise ValueError(f"{where}: runs[{i}] must be an object, got {type(r).__name__}")  # noqa: TRY004
        safe_name(r.get("run"), f"runs[{i}].run", where)
        if r.get("record"):
            rel(r["record"], ("runs/",), f"runs[{i}].record")
    return idx


def check_run_record(rec: Any, where: str) -> dict[str, Any]:
    """Validate the names a run record (``runs/<run>.json``) holds; returns it unchanged."""
    if not isinstance(rec, dict):
        raise ValueError(f"{where}: a run record must be a JSON object, got {type(rec).__name__}")  # noqa: TRY004
    if "run" in rec:
        safe_name(rec["run"], "run", where)
    if "corpus" in rec:
        safe_name(rec["corpus"], "corpus", where)
    for i, path in enumerate(rec.get("shards") or []):
        safe_rel(path, ("shards/",), f"shards[{i}]", where)
    return rec


def _entries(idx: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    entries = idx.get(key) or []
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise ValueError(f"{where}: {key} must be a list of objects")
    return entries
