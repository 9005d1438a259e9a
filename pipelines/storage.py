"""Where a dataset folder lives: a local path or any fsspec URI (``s3://``, ``gs://``, ``memory://``).

Local folders get the full durability protocol (write a temporary file, fsync it, rename,
fsync the folder). Object stores have no rename and no fsync, but a single PUT is atomic
and a finished upload is durable, so there a file is written once under its final name
and ``dataset.json`` (also one PUT) stays the commit point.
"""

from __future__ import annotations

import os
import posixpath
import secrets
import shutil
from pathlib import Path
from typing import IO

import fsspec
from fsspec.implementations.local import LocalFileSystem

TMP_PREFIX = ".tmp-"  # write_atomic's temporary files: recovery knows them by this prefix


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
            # A symlink planted under a temporary name (e.g. .tmp-dataset.json -> ~/.bashrc) would make us
            # overwrite its target: drop the link, and never follow one (O_NOFOLLOW) if it comes back.
            path = self.path(rel)
            if os.path.islink(path):
                os.unlink(path)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o666)
            return os.fdopen(fd, "wb", buffering=1 << 20)
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
        # A name of its own per write: two writers sharing one temporary name once interleaved bytes.
        tmp = f"{posixpath.dirname(rel)}/{TMP_PREFIX}{posixpath.basename(rel)}.{secrets.token_hex(4)}".lstrip("/")
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
