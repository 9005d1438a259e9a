"""Numbers, intervals and the plot of ``make experiment-memory`` (training/experiment_memory.py).

``experiment_memory.json`` keeps exactly the agreed shape:
``{"arms": {ARM: {"loss": {σ: mean}, "x0_psnr": {σ: mean}}}, "comparisons": {NAME: {"loss_diff",
"loss_ci95", "psnr_diff", "psnr_ci95"}}}``; what it leaves out (per-seed means, settings, timings)
goes to ``experiment_memory.md`` beside it, with the plot ``experiment_memory.png``.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np


def bootstrap_ci(diffs: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile CI of the mean of paired differences ``diffs`` (seeds, targets).

    Targets are resampled with replacement within each seed (each seed's model scored every target),
    and the statistic is the mean over seeds and targets, as the point estimate.
    """
    d = np.atleast_2d(np.asarray(diffs, np.float64))
    rng = np.random.default_rng(seed)
    n = d.shape[1]
    means = np.zeros(n_boot)
    for row in d:
        means += row[rng.integers(0, n, (n_boot, n))].mean(1)
    means /= len(d)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


def _key(s: float) -> str:
    return f"{s:g}"


def summarise(per_seed: list[dict], sigmas, compare_sigma: float, comparisons, n_boot: int) -> dict:
    """The JSON document: arm means over seeds and targets, paired differences at ``compare_sigma``."""
    arms = list(per_seed[0])
    doc = {"arms": {}, "comparisons": {}}
    for a in arms:
        doc["arms"][a] = {
            m: {_key(s): float(np.mean([r[a][m][:, j] for r in per_seed])) for j, s in enumerate(sigmas)}
            for m in ("loss", "x0_psnr")
        }
    j = list(sigmas).index(compare_sigma)
    for first, second in comparisons:
        entry = {}
        for m, name in (("loss", "loss"), ("x0_psnr", "psnr")):
            d = np.stack([r[first][m][:, j] - r[second][m][:, j] for r in per_seed])  # (seeds, targets)
            entry[f"{name}_diff"] = float(d.mean())
            entry[f"{name}_ci95"] = list(bootstrap_ci(d, n_boot))
        doc["comparisons"][f"{first}_vs_{second}"] = entry
    return doc


def plot(doc: dict, sigmas, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for a, v in doc["arms"].items():
        for ax, m in zip(axes, ("x0_psnr", "loss")):
            ax.plot(sigmas, [v[m][_key(s)] for s in sigmas], marker="o", label=a)
    axes[0].set(xlabel="σ", ylabel="one-step x̂0 PSNR (dB)", title="higher is better")
    axes[1].set(xlabel="σ", ylabel="flow-matching loss", title="lower is better")
    axes[0].legend(title="memory")
    fig.suptitle("same model, same noise; only the memory differs")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def table(doc: dict, sigmas, per_seed: list[dict], compare_sigma: float) -> str:
    head = "| memory | " + " | ".join(f"x̂0 PSNR σ={_key(s)} (dB)" for s in sigmas)
    head += " | " + " | ".join(f"loss σ={_key(s)}" for s in sigmas) + " | PSNR σ=" + _key(compare_sigma)
    head += " per seed |\n|---" + "|---" * (2 * len(sigmas) + 1) + "|\n"
    j = list(sigmas).index(compare_sigma)
    rows = []
    for a, v in doc["arms"].items():
        seeds = ", ".join(f"{r[a]['x0_psnr'][:, j].mean():.2f}" for r in per_seed)
        cells = [f"{v['x0_psnr'][_key(s)]:.2f}" for s in sigmas] + [f"{v['loss'][_key(s)]:.4f}" for s in sigmas]
        rows.append(f"| {a} | " + " | ".join(cells) + f" | {seeds} |")
    comp = f"\n\n| difference at σ={_key(compare_sigma)} | x̂0 PSNR (dB) [95 % CI] | loss [95 % CI] |\n|---|---|---|\n"
    for name, c in doc["comparisons"].items():
        comp += (f"| {name} | {c['psnr_diff']:+.2f} [{c['psnr_ci95'][0]:+.2f}, {c['psnr_ci95'][1]:+.2f}] | "
                 f"{c['loss_diff']:+.4f} [{c['loss_ci95'][0]:+.4f}, {c['loss_ci95'][1]:+.4f}] |\n")  # fmt: skip
    return head + "\n".join(rows) + comp


def write_report(res: dict, cfg, out: Path) -> str:
    """Write the JSON, the PNG and the markdown table beside it; return the markdown."""
    from training.experiment_memory import COMPARISONS

    doc = summarise(res["per_seed"], cfg.sigmas, cfg.compare_sigma, COMPARISONS, cfg.n_boot)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    plot(doc, cfg.sigmas, out.with_suffix(".png"))
    settings = {k: v for k, v in asdict(cfg).items()}
    md = (
        f"experiment-memory: {len(cfg.seeds)} seeds x {cfg.steps} steps x batch {cfg.batch}, {cfg.n_test} held-out "
        f"targets; train s per seed {', '.join(f'{t:.0f}' for t in res['train_s'])}; total {res['total_s']:.0f} s\n\n"
        + table(doc, cfg.sigmas, res["per_seed"], cfg.compare_sigma)
        + f"\nsettings: {json.dumps(settings)}\n"
    )
    out.with_suffix(".md").write_text(md)
    return md
