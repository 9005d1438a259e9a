"""Where a dataset folder lives: a local path or any fsspec URI (``s3://``, ``gs://``, ``memory://``).

Local folders get the full durability protocol (write a temporary file, fsync it, rename,
fsync the folder). Object stores have no rename and no fsync, but a single PUT is atomic
and a finished upload is durable, so there a file is written once under its final name
and ``dataset.json`` (also one PUT) stays the commit point.
"""

from __future__ import annotations

import os
import posixpath
import shutil
from pathlib import Path
from typing import IO

import fsspec
from fsspec.implementations.local import LocalFileSystem


def fsync_dir(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Storage:
    """Relative-path file operations under one root (local path or fsspec URI)."""

    def __init__(self, root: str | Path) -> None:
        self.fs, base = fsspec.core.url_to_fs(str(root))
        self.local = isinstance(self.fs, LocalFileSystem)
        self.base = str(Path(base).resolve()) if self.local else base.rstrip("/")
        self.root: Path | str = Path(self.base) if self.local else str(root).rstrip("/")

    def path(self, rel: str) -> str:
        return os.path.join(self.base, rel) if self.local else posixpath.join(self.base, rel)

    # -- reading ---------------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        return self.fs.exists(self.path(rel))

    def is_file(self, rel: str) -> bool:
        return self.fs.isfile(self.path(rel))

    def read_bytes(self, rel: str) -> bytes:
        return self.fs.cat_file(self.path(rel))

    def open_read(self, rel: str) -> IO[bytes]:
        return self.fs.open(self.path(rel), "rb")

    def size(self, rel: str) -> int:
        return int(self.fs.size(self.path(rel)))

    def files(self, rel_dir: str) -> list[str]:
        """Every file under ``rel_dir``, as paths relative to the root."""
        top = self.path(rel_dir)
        if not self.fs.exists(top):
            return []
        out = []
        for p in self.fs.find(top):
            rel = posixpath.relpath(p if not self.local else Path(p).as_posix(), Path(self.base).as_posix()
                                    if self.local else self.base)
            out.append(rel)
        return sorted(out)

    # -- writing ---------------------------------------------------------------------------
    def makedirs(self, rel: str) -> None:
        self.fs.makedirs(self.path(rel), exist_ok=True)

    def open_write(self, rel: str) -> IO[bytes]:
        if self.local:
            return open(self.path(rel), "wb", buffering=1 << 20)
        return self.fs.open(self.path(rel), "wb")

    def close_durably(self, f: IO[bytes]) -> None:
        f.flush()
        if self.local:
            os.fsync(f.fileno())
        f.close()

    def publish(self, tmp_rel: str, rel: str) -> None:
        """Give a finished file its final name (atomic rename locally)."""
        if self.local:
            os.replace(self.path(tmp_rel), self.path(rel))
            fsync_dir(os.path.dirname(self.path(rel)))
        else:
            self.fs.mv(self.path(tmp_rel), self.path(rel))

    def write_atomic(self, rel: str, data: bytes) -> None:
        """Replace ``rel`` with ``data`` so readers see the old or the new bytes, never a mix."""
        if not self.local:
            self.fs.pipe_file(self.path(rel), data)  # one PUT: atomic on object stores
            return
        tmp = f"{posixpath.dirname(rel)}/.tmp-{posixpath.basename(rel)}".lstrip("/")
        with self.open_write(tmp) as f:
            f.write(data)
            self.close_durably(f)
        self.publish(tmp, rel)

    def remove(self, rel: str) -> None:
        self.fs.rm_file(self.path(rel))

    def rmtree(self, rel: str) -> None:
        if self.local:
            shutil.rmtree(self.path(rel), ignore_errors=True)
        elif self.fs.exists(self.path(rel)):
            self.fs.rm(self.path(rel), recursive=True)
