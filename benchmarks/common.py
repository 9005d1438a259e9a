"""Benchmark output: a markdown table printed and saved to bench_out/<name>.md."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "bench_out"


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return f"{platform.machine()}, {os.cpu_count()} cores, load {load:.1f}, {time.strftime('%Y-%m-%d %H:%M')}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def save(name: str, md: str) -> Path:
    """Write ``bench_out/<name>.md`` in the repository, wherever the benchmark was started from."""
    OUT.mkdir(exist_ok=True)
    path = OUT / f"{name}.md"
    path.write_text(md)
    return path


def report(name: str, title: str, headers: list[str], rows: list[list[str]], notes: str = "") -> str:
    md = f"### {title}\n\n_{machine()}_\n\n{table(headers, rows)}\n"
    if notes:
        md += f"\n{notes}\n"
    print(md)
    save(name, md)
    return md
