"""Progress of a build: a tqdm bar on a terminal, one log line per stage every 30 s otherwise.

On a terminal the bar redraws in place. In a log file or a CI console (stdout not a terminal)
a redrawing bar becomes thousands of lines, and Ray Data's own per-operator bars likewise; there
we switch Ray Data's bars off and print, every ``every_s`` seconds, one line per stage with the
samples through it and its seconds per sample, plus one line of input counts.
"""

from __future__ import annotations

import sys
import time
from typing import Any


class Progress:
    def __init__(self, corpus: str, enabled: bool = True, every_s: float = 30.0, tty: bool | None = None) -> None:
        self.corpus, self.enabled, self.every_s = corpus, enabled, every_s
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.n = 0
        self._bar = None
        self._last = time.monotonic()
        if enabled and self.tty:
            from tqdm import tqdm

            self._bar = tqdm(desc=f"{corpus} inputs", unit="sample")
        elif enabled:
            _quiet_ray_data_bars()

    def update(self, done: int, summary: Any) -> None:
        """``done``: samples finished (accepted + rejected); ``summary``: the run's RunSummary so far."""
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
        self.n = done
        if self.enabled and not self.tty and time.monotonic() - self._last >= self.every_s:
            self._last = time.monotonic()
            self.log_lines(summary)

    def log_lines(self, summary: Any) -> list[str]:
        lines = [f"progress {self.corpus}: {self.n} samples finished"]
        for name, sec in summary.stage_seconds.items():
            n = summary.stage_samples.get(name, 0)
            lines.append(f"progress {self.corpus}: stage {name}: {n:.0f} samples, {sec / max(n, 1e-9):.3f} s/sample")
        for line in lines:  # stderr, not the log: a build logs warnings only unless --verbose
            print(line, file=sys.stderr, flush=True)
        return lines

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _quiet_ray_data_bars() -> None:
    try:
        from ray.data import DataContext
    except ImportError:  # the sequential runner does not need Ray
        return
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.enable_operator_progress_bars = False
