"""Stopping a `ray start --head --block` started by a test: only that head, never every Ray on the machine."""

from __future__ import annotations

import os
import signal
import subprocess


def stop_head(head: subprocess.Popen) -> None:
    """SIGTERM the head's process group (``start_new_session=True``), SIGKILL it if it outlives a minute."""
    os.killpg(head.pid, signal.SIGTERM)
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()
