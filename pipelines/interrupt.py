"""Ctrl-C during a build: stop taking work, commit what is complete, say how to resume, exit 130.

A KeyboardInterrupt may arrive anywhere in the driver. Where it lands while the driver waits on
Ray or runs a stage, the run stops there; inside a commit (index write, part rename) it would
leave the writer's in-memory state half-updated, so commits run with SIGINT deferred: the signal
is remembered and raised as soon as the commit is through. What was committed is exactly what a
``kill -9`` at the same moment would have kept, so resuming is the same: run the same command.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for a job stopped by Ctrl-C
MESSAGE = "interrupted: rerun the same command to resume"


@contextmanager
def deferred_sigint() -> Iterator[None]:
    """Hold SIGINT for the duration of the block, then raise KeyboardInterrupt if one came."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers live in the main thread only; nothing to defer elsewhere
        return
    got: list[int] = []
    old = signal.signal(signal.SIGINT, lambda signum, frame: got.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)
    if got:
        raise KeyboardInterrupt


def announce() -> None:
    """The one line a user sees (stderr, so a --json stdout stays clean)."""
    print(MESSAGE, file=sys.stderr, flush=True)
