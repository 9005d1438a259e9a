"""One writer per dataset folder: a lock held for the whole run.

Two builds on the same ``--out`` used to interleave commits, duplicate samples and delete
each other's temporary files. Every run (and ``memcorpus repair``) now holds this lock from
recovery to the final commit; a second one is refused with a message naming the holder.

Local folders use ``fcntl.flock`` on ``<dataset>/.memcorpus.lock``: the kernel drops the lock
when the holder dies, so a stale lock of a dead owner is taken over by simply locking again.
The file is never deleted (unlinking a flock'ed file lets a third process lock a fresh inode
while the second still holds the old one); only the owner text inside it changes.

Object stores have no locks, so there the lock is a lease object, ``.memcorpus.lease.json``,
with an owner and an expiry that a heartbeat thread renews. A lease past its expiry belongs
to nobody. Object stores offer no compare-and-swap through fsspec, so acquisition writes,
waits, and reads back to detect a racing writer; a holder that finds its lease taken stops
committing (``check()`` raises) instead of writing next to another build.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
import time
from typing import Any, Self

from pipelines.storage import Storage

LOCK_FILE = ".memcorpus.lock"
LEASE_FILE = ".memcorpus.lease.json"


class DatasetLocked(ValueError):
    """Another build holds the dataset folder (a user mistake: one build per folder)."""


def owner_info(run: str) -> dict[str, Any]:
    return {"host": socket.gethostname(), "pid": os.getpid(), "run": run,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def _describe(owner: dict[str, Any] | None) -> str:
    if not owner:
        return "an unknown process (no owner recorded)"
    return f"run {owner.get('run')} (pid {owner.get('pid')} on {owner.get('host')}, started {owner.get('started')})"


class DatasetLock:
    """``with DatasetLock(store, run):`` holds the folder; ``check()`` raises if the lock was lost."""

    def __init__(self, store: Storage, run: str, lease_s: float = 60.0) -> None:
        self.store, self.run, self.lease_s = store, run, lease_s
        self.owner = owner_info(run)
        self._fd: int | None = None
        self._token = secrets.token_hex(8)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lost: str | None = None

    # -- local: flock ------------------------------------------------------------------------
    def _acquire_local(self) -> None:
        import fcntl

        os.makedirs(self.store.base, exist_ok=True)
        path = self.store.path(LOCK_FILE)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.pread(fd, 4096, 0) or b"null")
            except ValueError:
                holder = None
            os.close(fd)
            raise DatasetLocked(f"{self.store.root} is being built by {_describe(holder)}; wait for it to finish "
                                f"or use another --out (lock file {path})") from None
        data = json.dumps(self.owner).encode()
        os.ftruncate(fd, 0)
        os.pwrite(fd, data, 0)
        os.fsync(fd)
        self._fd = fd

    def _release_local(self) -> None:
        import fcntl

        assert self._fd is not None
        os.ftruncate(self._fd, 0)  # the owner text goes first, so nobody reads a released lock as held
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    # -- object stores: a lease ----------------------------------------------------------------
    def _read_lease(self) -> dict[str, Any] | None:
        if not self.store.exists(LEASE_FILE):
            return None
        try:
            return json.loads(self.store.read_bytes(LEASE_FILE))
        except ValueError:
            return None  # a torn or foreign object: nobody's lease

    def _write_lease(self) -> None:
        lease = {"owner": self.owner, "token": self._token, "expires": time.time() + self.lease_s}
        self.store.write_atomic(LEASE_FILE, json.dumps(lease).encode())

    def _acquire_lease(self, settle_s: float) -> None:
        held = self._read_lease()
        if held and held.get("token") != self._token and held.get("expires", 0) > time.time():
            raise DatasetLocked(f"{self.store.root} is being built by {_describe(held.get('owner'))}; its lease "
                                f"expires in {held['expires'] - time.time():.0f} s if that build died "
                                f"(lease object {LEASE_FILE})")
        self._write_lease()
        time.sleep(settle_s)  # a racing writer's PUT lands in this window; the read-back sees who won
        held = self._read_lease()
        if not held or held.get("token") != self._token:
            raise DatasetLocked(f"{self.store.root}: lost the race for the lease to "
                                f"{_describe((held or {}).get('owner'))}")
        self._thread = threading.Thread(target=self._heartbeat, name="memcorpus-lease", daemon=True)
        self._thread.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            held = self._read_lease()
            if not held or held.get("token") != self._token:
                self._lost = f"lease taken by {_describe((held or {}).get('owner'))}"
                return
            self._write_lease()

    def _release_lease(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        held = self._read_lease()
        if held and held.get("token") == self._token:
            self.store.remove(LEASE_FILE)

    # -- the interface -----------------------------------------------------------------------
    def acquire(self, settle_s: float = 1.0) -> Self:
        if self.store.local:
            self._acquire_local()
        else:
            self._acquire_lease(settle_s)
        return self

    def release(self) -> None:
        if self.store.local:
            if self._fd is not None:
                self._release_local()
        else:
            self._release_lease()

    def check(self) -> None:
        """Raise before a commit if the lease was lost (a build that lost it must not write on)."""
        if self._lost:
            raise DatasetLocked(f"{self.store.root}: {self._lost}; this build stopped before its next commit")

    def __enter__(self) -> Self:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
