"""Reading a shard back to check it: sample keys, member sizes and (optionally) checksums.

The writer records a blake2b digest of every member in the samples manifest as it writes the
member (the bytes are in memory then, so it costs no extra read). ``scan_shard`` reads the
tar the way webdataset groups it (key = member name up to the first dot) and recomputes the
digests; ``quick=True`` walks the tar headers with seeks instead of reading the payloads, so
it proves structure and sizes but not content (zeroed bytes pass it).
"""

from __future__ import annotations

import hashlib
import json
import tarfile
from collections import Counter
from dataclasses import dataclass, field

from pipelines.schema import npy_header
from pipelines.storage import Storage

DIGEST_SIZE = 16


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=DIGEST_SIZE).hexdigest()


@dataclass
class ShardScan:
    keys: Counter = field(default_factory=Counter)  # key -> number of separate runs of members (1 if well formed)
    members: dict[str, dict[str, tuple[int, str | None]]] = field(default_factory=dict)  # key -> name -> (size, hex)
    error: str | None = None  # why the tar could not be read to its end
    # For the schema check (full scans only): key -> parsed json, and key -> member -> .npy (dtype, shape) or None.
    metas: dict[str, dict] = field(default_factory=dict)
    layouts: dict[str, dict[str, tuple[str, tuple[int, ...]] | None]] = field(default_factory=dict)


def _check_member(name: str, m: tarfile.TarInfo, shard: str) -> None:
    if not m.isfile():
        raise ValueError(f"{shard}: member {m.name!r} is not a regular file")
    if "/" in name or name.startswith(".") or ".." in name:
        raise ValueError(f"{shard}: unsafe member name {name!r}")


def scan_shard(store: Storage, rel: str, quick: bool = False) -> ShardScan:
    out = ShardScan()
    name = rel.rsplit("/", 1)[-1]
    last = None
    try:
        with store.open_read(rel) as fh, tarfile.open(fileobj=fh, mode="r:" if quick else "r|") as tar:
            for m in tar:
                _check_member(m.name, m, name)
                key, _, ext = m.name.partition(".")
                if key != last:
                    out.keys[key] += 1
                    last = key
                hexd = None
                if not quick:
                    data = tar.extractfile(m).read()
                    if len(data) != m.size:
                        raise EOFError(f"member {m.name!r} ends early")
                    hexd = digest(data)
                    _read_layout(out, key, ext, data)
                out.members.setdefault(key, {})[ext] = (m.size, hexd)
    except (tarfile.TarError, ValueError, OSError, EOFError) as e:
        out.error = f"{type(e).__name__}: {e}"
    return out


def _read_layout(out: ShardScan, key: str, ext: str, data: bytes) -> None:
    """What the schema check needs of a member whose bytes are already in memory (no second read)."""
    head = None
    try:
        if ext == "json":
            meta = json.loads(data)
            out.metas[key] = meta if isinstance(meta, dict) else {}
        elif ext.endswith("npy"):
            head = npy_header(data)
    except ValueError:  # a corrupt member: the checksum comparison names it
        head = None
    out.layouts.setdefault(key, {})[ext] = head


def compare(row: dict, scanned: dict[str, tuple[int, str | None]] | None) -> str | None:
    """Why a sample's members differ from what the manifest recorded, or None if they match."""
    if scanned is None:
        return "not in the shard"
    want = row.get("members")
    if not want:
        return None  # written before checksums were recorded: nothing to compare
    names = {m["name"] for m in want}
    if names != set(scanned):
        return f"members {sorted(scanned)} != recorded {sorted(names)}"
    for m in want:
        size, hexd = scanned[m["name"]]
        if size != m["size"]:
            return f"member {m['name']}: {size} bytes, recorded {m['size']}"
        if hexd is not None and hexd != m["blake2b"]:
            return f"member {m['name']}: checksum mismatch"
    return None
