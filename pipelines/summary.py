"""The run summary table printed at the end of every run (also kept in runs/<run>.json)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from pipelines.common import RunSummary


def print_summary(s: RunSummary, console: Console | None = None) -> None:
    console = console or Console()
    c = s.counts
    t = Table(title=f"{s.corpus} run {s.run} ({s.runner} runner) -> {s.out}", show_header=True)
    t.add_column("what")
    t.add_column("count", justify="right")
    for label, key in [
        ("inputs seen", "inputs"), ("already built (skipped)", "skipped_done"), ("processed", "processed"),
        ("accepted", "accepted"), ("rejected", "rejected"), ("samples written", "samples_written"),
        ("samples already committed (dedup)", "deduplicated"),
        ("rebuilt: refresh key changed", "rebuilt_refresh"), ("rebuilt: retryable failure retried", "rebuilt_retry"),
        ("rebuilt: requeued by repair", "rebuilt_repair"), ("old samples retired", "retired"),
        ("retryable failures (retried next run)", "retryable_failed"),
    ]:
        t.add_row(label, str(c.get(key, 0)))
    for reason, n in s.reasons.most_common():
        t.add_row(f"  rejected: {reason}", str(n))
    t.add_row("shards written", str(len(s.shards)))
    t.add_row("wall time (s)", f"{s.wall_s:.1f}")
    console.print(t)
    if s.stage_seconds:
        st = Table(title="per-stage time (a split input counts once before its split; stages overlap under Ray)")
        st.add_column("stage")
        st.add_column("samples", justify="right")
        st.add_column("seconds", justify="right")
        st.add_column("s / sample", justify="right")
        for name, sec in s.stage_seconds.items():
            n = s.stage_samples.get(name, 0)
            st.add_row(name, f"{n:.0f}", f"{sec:.2f}", f"{sec / max(n, 1e-9):.3f}")
        console.print(st)
    for title, md in s.tables.items():
        console.print(f"\n{title}\n{md}")
