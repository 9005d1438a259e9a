"""Content-derived ids: the same bytes (and instruction) give the same id, whatever the file name.

Files up to ``FULL_HASH_LIMIT`` are hashed whole; larger ones (films) by their size plus 16
evenly spread 1 MiB windows, which tells different encodes apart without reading gigabytes
on the driver.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

FULL_HASH_LIMIT = 64 << 20
WINDOW = 1 << 20
WINDOWS = 16
ID_LEN = 20  # hex chars: 80 bits, no collisions at corpus scale
_SAFE = re.compile(r"[^a-z0-9_]+")


def file_digest(path: str | Path, h: hashlib._Hash | None = None) -> hashlib._Hash:
    """Digest of a local path or an fsspec URI (s3://, memory://, ...)."""
    import fsspec

    h = h or hashlib.blake2b(digest_size=16)
    fs, p = fsspec.core.url_to_fs(str(path))
    size = int(fs.size(p))
    h.update(size.to_bytes(8, "little"))
    with fs.open(p, "rb") as f:
        if size <= FULL_HASH_LIMIT:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        else:
            for k in range(WINDOWS):
                f.seek((size - WINDOW) * k // (WINDOWS - 1))
                h.update(f.read(WINDOW))
    return h


def content_id(paths: list[str | Path], extra: str = "", prefix: str = "") -> str:
    """Id from the bytes of ``paths`` (in order) and ``extra`` text. Missing files raise OSError."""
    h = hashlib.blake2b(digest_size=16)
    for p in paths:
        file_digest(p, h)
    h.update(extra.encode("utf-8"))
    return sanitize_key(prefix + h.hexdigest()[:ID_LEN])


def text_id(text: str, prefix: str = "") -> str:
    """Id for an input that cannot be read (e.g. a pair whose files are missing)."""
    return sanitize_key(prefix + hashlib.blake2b(text.encode("utf-8"), digest_size=16).hexdigest()[:ID_LEN])


def sanitize_key(key: str) -> str:
    """Tar keys and member names: lowercase ``[a-z0-9_]`` only, so nothing escapes a shard."""
    k = _SAFE.sub("_", key.lower()).strip("_")
    if not k:
        raise ValueError(f"key {key!r} has no safe characters")
    return k[:120]
