"""Charts for the dataset report (matplotlib, Agg): histograms, reason bars, score heatmaps, camera paths.

Every function writes one PNG and returns its file name; the figure is closed at once so a
report over many samples does not accumulate figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display on workers and CI; must precede pyplot
import matplotlib.pyplot as plt
import numpy as np

INK, MUTED, ACCENT = "#1f2933", "#7b8794", "#2f6fde"
SERIES = ["#2f6fde", "#e4572e", "#17a398", "#f3a712", "#8e5cd9", "#d63c83", "#5c946e", "#8a6d3b"]


def _style(ax, title: str, xlabel: str = "", ylabel: str = "") -> None:
    ax.set_title(title, loc="left", fontsize=11, color=INK, fontweight="bold", pad=8)
    ax.set_xlabel(xlabel, fontsize=9, color=MUTED)
    ax.set_ylabel(ylabel, fontsize=9, color=MUTED)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#cbd2d9")
    ax.tick_params(colors=MUTED, labelsize=8)
    ax.grid(axis="y", color="#e4e7eb", linewidth=0.8)
    ax.set_axisbelow(True)


def _save(fig, out: Path) -> str:
    fig.tight_layout()
    fig.savefig(out, dpi=110, facecolor="white")
    plt.close(fig)
    return out.name


def histogram(values: Sequence[float], title: str, xlabel: str, out: Path, integer: bool = False,
              limits: tuple[float, float] | None = None, xlim: tuple[float, float] | None = None) -> str:
    """One distribution; ``integer`` gives one bar per value; ``limits`` shades the configured range (green)."""
    fig, ax = plt.subplots(figsize=(4.6, 2.9))
    v = np.asarray(values, dtype=float)
    note = f"median {np.median(v):.3g} · n = {len(v)}"
    if limits is not None:
        ax.axvspan(*limits, color="#e3f2e8", zorder=0)
        note += f" · target {limits[0]:g}–{limits[1]:g}"
    if integer:
        lo, hi = int(v.min()), int(v.max())
        ax.hist(v, bins=np.arange(lo - 0.5, hi + 1.5, 1.0), rwidth=0.8, color=ACCENT)
        ax.set_xlim(lo - 1.5, hi + 1.5)
        ax.xaxis.get_major_locator().set_params(integer=True)
    else:
        ax.hist(v, bins=min(30, max(5, int(np.sqrt(len(v))) + 1)), color=ACCENT, edgecolor="white", linewidth=0.8)
    if xlim is not None:
        ax.set_xlim(*xlim)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.axvline(float(np.median(v)), color="#e4572e", linewidth=1.2, linestyle="--")
    _style(ax, title, xlabel, "samples")
    ax.set_title(note, loc="right", fontsize=8, color=MUTED)
    return _save(fig, out)


def stacked_histogram(groups: Mapping[str, Sequence[float]], title: str, xlabel: str, out: Path) -> str:
    """Several distributions on one axis (e.g. words per story, shot and recon caption)."""
    fig, ax = plt.subplots(figsize=(4.6, 2.9))
    data = [np.asarray(v, dtype=float) for v in groups.values() if len(v)]
    labels = [f"{k} (n={len(v)})" for k, v in groups.items() if len(v)]
    top = max(float(d.max()) for d in data)
    bins = np.linspace(0, max(top, 1.0) + 1, min(30, max(6, int(top) + 2)))
    ax.hist(data, bins=bins, stacked=True, color=SERIES[: len(data)], edgecolor="white", linewidth=0.6, label=labels)
    ax.legend(fontsize=7, frameon=False)
    ax.yaxis.get_major_locator().set_params(integer=True)
    _style(ax, title, xlabel, "captions")
    return _save(fig, out)


def bars(counts: Mapping[str, float], title: str, xlabel: str, out: Path, color: str = "#e4572e") -> str:
    """Horizontal bars, largest on top (reject reasons, seconds per stage)."""
    items = sorted(counts.items(), key=lambda kv: kv[1])[-14:]
    fig, ax = plt.subplots(figsize=(6.4, max(1.8, 0.7 + 0.34 * len(items))))
    ax.barh([k for k, _ in items], [v for _, v in items], color=color, height=0.6)
    for i, (_, v) in enumerate(items):
        ax.text(v, i, f" {v:g}", va="center", fontsize=8, color=INK)
    _style(ax, title, xlabel)
    ax.grid(axis="y", visible=False)
    ax.grid(axis="x", color="#e4e7eb", linewidth=0.8)
    ax.set_xlim(0, max(max(v for _, v in items), 1e-9) * 1.15)
    if all(float(v).is_integer() for _, v in items):
        ax.xaxis.get_major_locator().set_params(integer=True)
    return _save(fig, out)


def heatmap(scores: np.ndarray, labels: Sequence[str], title: str, out: Path) -> str:
    """A pairwise score matrix (row = query camera, column = candidate), values written in the cells."""
    n = scores.shape[0]
    side = min(4.8, 2.2 + 0.3 * n)
    fig, ax = plt.subplots(figsize=(side + 0.9, side))
    im = ax.imshow(scores, cmap="viridis", vmin=0.0, vmax=max(1.0, float(np.nanmax(scores))))
    ax.set_xticks(range(n), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(n), labels, fontsize=8)
    if n <= 12:
        for i in range(n):
            for j in range(n):
                v = scores[i, j]
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=6 if n > 8 else 7,
                        color="white" if v < 0.6 else "#1f2933")
    ax.set_title(title, loc="left", fontsize=11, color=INK, fontweight="bold", pad=8)
    ax.set_xlabel("candidate", fontsize=9, color=MUTED)
    ax.set_ylabel("query", fontsize=9, color=MUTED)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=7)
    return _save(fig, out)


def camera_paths(paths: Mapping[str, np.ndarray], title: str, out: Path) -> str:
    """Top-down view (x right, z forward in the OpenCV camera frame) of each camera's positions."""
    fig, ax = plt.subplots(figsize=(4.4, 4.0))
    for i, (name, p) in enumerate(paths.items()):
        c = SERIES[i % len(SERIES)]
        ax.plot(p[:, 0], p[:, 2], color=c, linewidth=1.4, label=name)
        ax.scatter(p[:1, 0], p[:1, 2], color=c, s=18, marker="o")
        ax.scatter(p[-1:, 0], p[-1:, 2], color=c, s=22, marker=">")
    ax.set_aspect("equal", adjustable="datalim")
    _style(ax, title, "x", "z (forward)")
    ax.grid(color="#e4e7eb", linewidth=0.8)
    if len(paths) <= 12:
        ax.legend(fontsize=7, frameon=False, ncol=2, loc="best")
    return _save(fig, out)
