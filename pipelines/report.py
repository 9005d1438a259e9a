"""``memcorpus report``: a static HTML page about a dataset folder that a person can read at a glance.

Writes ``<dataset>/report/index.html`` (``--dest DIR``: ``DIR/memcorpus-report/index.html``, never
DIR itself, so the user's files there are safe) with its pictures next to it (relative links only, so
the folder can be copied or served as is): totals and reject reasons from the manifest, the
runs, histograms over every sample's metadata, and cards for the first few samples with
contact sheets, crops, tracked boxes, captions and FOV heatmaps. A small script in the page
marks images that fail to load, so a broken picture is visible to a reader and to the test.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path

from pipelines import report_plots as plots
from pipelines.names import safe_name
from pipelines.report_data import DatasetView, load_view, measures, overlay_counts, sample_media
from pipelines.report_samples import SampleCard, figure
from pipelines.report_style import CSS

esc = html.escape
DEST_SUBFOLDER = "memcorpus-report"  # --dest DIR: the report goes into DIR/memcorpus-report/, a folder of our own
MANIFEST = ".memcorpus-report.json"  # the files the last report wrote: the only ones a new report removes


def build_report(root: str | Path, out: str | Path | None = None, samples: int = 8, frames: int = 12) -> Path:
    """Write the report for the dataset folder ``root``; returns the path of ``index.html``."""
    if samples < 0 or frames < 2:
        raise ValueError(f"report needs samples >= 0 and frames >= 2, got samples={samples}, frames={frames}")
    view = load_view(root)
    if out is None and not view.store.local:
        raise ValueError(f"{root} is not a local folder: give the report a local destination (--dest DIR)")
    out = Path(out) / DEST_SUBFOLDER if out is not None else Path(view.root) / "report"
    before = _clear_previous(out)
    t0 = time.perf_counter()
    body = [_overview(view), _reasons(view, out), _runs(view, out), _histograms(view, out)]
    cards, problems = [], []
    for n, (key, members) in enumerate(sample_media(view, samples)):
        card = SampleCard(out, n, key, members, frames=frames)
        cards.append(card.render())
        problems += [f"{key}: {p}" for p in card.problems]
    if cards:
        body.append(f"<section id='samples'><h2>Samples <span class='muted'>(first {len(cards)} of "
                    f"{len(view.tables['samples'])})</span></h2>{''.join(cards)}</section>")
    footer = (f"<footer>memcorpus report · {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} · "
              f"built in {time.perf_counter() - t0:.1f} s" + (f" · {len(problems)} picture(s) not drawn" if problems
                                                              else "") + "</footer>")
    page = _page(f"{view.corpus} dataset", view, "".join(body) + footer)
    index = out / "index.html"
    index.write_text(page, encoding="utf-8")
    # New or rewritten by this report (a file we did not touch keeps its mtime): ours to remove next time.
    written = sorted(p.name for p in out.iterdir()
                     if p.is_file() and p.name != MANIFEST and before.get(p.name) != p.stat().st_mtime_ns)
    (out / MANIFEST).write_text(json.dumps({"written": written}, indent=1), encoding="utf-8")
    return index


def _clear_previous(out: Path) -> dict[str, int]:
    """Remove what the previous report listed as written; returns name -> mtime of every file left.

    Only files named in our manifest go: a user's files next to the report (or in a folder
    passed as --dest) are never touched. A symlink in or as the folder is refused: writing a
    picture through it would overwrite a file elsewhere (the dataset folder may be hostile).
    """
    if out.is_symlink():
        raise ValueError(f"{out} is a symlink: the report writes only into a real folder")
    out.mkdir(parents=True, exist_ok=True)
    links = [p.name for p in out.iterdir() if p.is_symlink()]
    if links:
        raise ValueError(f"{out} holds symlinks {links[:3]}: the report will not write through them; remove them")
    manifest = out / MANIFEST
    if manifest.is_file():
        try:
            names = json.loads(manifest.read_text(encoding="utf-8")).get("written", [])
        except (json.JSONDecodeError, AttributeError) as e:
            raise ValueError(f"{manifest} is not a report manifest ({e}); remove it to write the report") from e
        for name in names:
            safe_name(name, "written", str(manifest))  # a plain file name in this folder, never a path
            if (out / name).is_file():
                (out / name).unlink()
    return {p.name: p.stat().st_mtime_ns for p in out.iterdir() if p.is_file()}


def _page(title: str, view: DatasetView, body: str) -> str:
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title><style>{CSS}</style></head>
<body><main>
<header><h1>{esc(view.corpus)} <span class="muted">dataset report</span></h1>
<p class="muted"><code>{esc(str(view.root))}</code></p>{_nav(body)}</header>
{body}
</main>
<script>
// Mark images that failed to load: visible to a reader (red frame) and to the rendering test.
window.addEventListener("load", () => {{
  const imgs = Array.from(document.images);
  const broken = imgs.filter((i) => !i.complete || i.naturalWidth === 0);
  broken.forEach((i) => i.classList.add("broken"));
  document.body.dataset.images = String(imgs.length);
  document.body.dataset.broken = String(broken.length);
  document.body.dataset.brokenSrc = broken.map((i) => i.getAttribute("src")).join(" ");
}});
</script>
</body></html>
"""


def _nav(body: str) -> str:
    names = {"rejects": "Rejects", "runs": "Runs", "histograms": "Distributions", "samples": "Samples"}
    links = [f'<a href="#{k}">{v}</a>' for k, v in names.items() if f"<section id='{k}'>" in body]
    return f"<nav>{' · '.join(links)}</nav>" if links else ""


def _stat(key: str, value: int | str, label: str, tone: str = "") -> str:
    return f'<div class="stat {tone}" id="stat-{key}"><b>{value}</b><span>{esc(label)}</span></div>'


def _overview(view: DatasetView) -> str:
    c = view.counts()
    rate = f"{100 * c['accepted'] / c['inputs']:.0f} %" if c["inputs"] else "–"
    stats = [
        _stat("inputs", c["inputs"], "inputs"), _stat("accepted", c["accepted"], "accepted", "good"),
        _stat("rejected", c["rejected"], "rejected", "bad" if c["rejected"] else ""),
        _stat("acceptance", rate, "acceptance"), _stat("samples", c["samples"], "samples written"),
        _stat("shards", c["shards"], "shards"), _stat("bytes", _human(c["bytes"]), "in shards"),
        _stat("runs", c["runs"], "runs"),
    ]
    ov = overlay_counts(view)
    if ov["overlays"] or ov["overlay_rejects"]:  # logos/watermarks a model would learn to draw
        stats += [_stat("overlays", ov["overlays"], f"overlays found ({ov['overlays_cut']} cropped away)"),
                  _stat("overlays_kept", ov["overlays_kept"] + ov["overlay_rejects"],
                        "overlays left in (flagged overlay_kept)", "bad" if ov["overlays_kept"] + ov["overlay_rejects"] else "")]
    note = ""
    if c["inputs"] != c["accepted"] + c["rejected"]:
        note = "<p class='warn'>inputs ≠ accepted + rejected: run <code>memcorpus verify</code>.</p>"
    if view.metas_truncated:
        note += f"<p class='muted'>Histograms use the first {len(view.metas)} samples.</p>"
    return f"<section id='overview'><div class='stats'>{''.join(stats)}</div>{note}</section>"


def _reasons(view: DatasetView, out: Path) -> str:
    by_input = view.input_reasons()
    if not by_input and not view.tables["rejects"]:
        return "<section id='rejects'><h2>Rejects</h2><p class='muted'>Nothing was rejected.</p></section>"
    chart = figure(plots.bars(dict(by_input), "Rejected inputs by reason", "inputs", out / "rejects.png"),
                   "rejected inputs by reason", cls="plot") if by_input else ""
    rows = "".join(
        f"<tr><td><code>{esc(reason)}</code></td><td>{esc(stage)}</td><td class='num' data-reason='{esc(reason)}'>"
        f"{n}</td><td class='detail'>{esc(' | '.join(view.examples(reason)))}</td></tr>"
        for (stage, reason), n in sorted(view.sample_reasons().items(), key=lambda kv: -kv[1])
    )
    table = ("<table class='reasons'><tr><th>reason</th><th>stage</th><th>rejected samples</th>"
             f"<th>example detail</th></tr>{rows}</table>") if rows else ""
    return f"<section id='rejects'><h2>Rejects</h2><div class='row'>{chart}<div class='grow'>{table}</div></div></section>"


def _runs(view: DatasetView, out: Path) -> str:
    if not view.runs:
        return ""
    rows = []
    for r in view.runs:
        c = r.get("counts", {})
        flag = " <span class='badge bad'>crashed, recovered</span>" if r.get("crashed") else ""
        rows.append(f"<tr><td><code>{esc(str(r.get('run')))}</code>{flag}</td><td>{esc(str(r.get('finished_at', '')))}"
                    f"</td><td>{esc(str(r.get('runner', '')))}</td><td class='num'>{c.get('processed', 0)}</td>"
                    f"<td class='num'>{c.get('accepted', 0)}</td><td class='num'>{c.get('rejected', 0)}</td>"
                    f"<td class='num'>{c.get('skipped_done', 0)}</td><td class='num'>{float(r.get('wall_s', 0)):.1f}"
                    "</td></tr>")
    table = ("<table><tr><th>run</th><th>finished</th><th>runner</th><th>processed</th><th>accepted</th>"
             f"<th>rejected</th><th>skipped (done)</th><th>wall s</th></tr>{''.join(rows)}</table>")
    last = view.runs[-1]
    per = {k: v / max(last.get("stage_samples", {}).get(k, 0), 1e-9)
           for k, v in (last.get("stage_seconds") or {}).items() if last.get("stage_samples", {}).get(k)}
    chart = figure(plots.bars({k: round(v, 3) for k, v in per.items()}, "Seconds per input, by stage (last run)",
                              "s / input", out / "stage_seconds.png", color="#17a398"),
                   "seconds per stage", cls="plot") if per else ""
    return f"<section id='runs'><h2>Runs</h2>{table}{chart}</section>"


def _histograms(view: DatasetView, out: Path) -> str:
    ms = measures(view.metas)
    figs = []
    if "duration" in ms:
        figs.append(plots.histogram(ms["duration"], "Sample duration", "seconds", out / "hist_duration.png",
                                    limits=_config_range(view, "min_seconds", "max_seconds")))
    if "shots" in ms:
        figs.append(plots.histogram(ms["shots"], "Shots per sequence", "shots", out / "hist_shots.png", integer=True))
    if "caption_words" in ms:
        figs.append(plots.stacked_histogram(ms["caption_words"], "Caption length", "words",
                                            out / "hist_captions.png"))
    if "kept" in ms:
        figs.append(plots.histogram(ms["kept"], "Kept area after cropping", "fraction of the frame",
                                    out / "hist_kept.png", xlim=(0.0, 1.0)))
    if "instruction_words" in ms:
        figs.append(plots.histogram(ms["instruction_words"], "Instruction length", "words",
                                    out / "hist_instruction.png", integer=True))
    if not figs:
        return ""
    return ("<section id='histograms'><h2>Distributions</h2><div class='grid'>"
            + "".join(figure(f, f.removesuffix(".png").replace("_", " "), cls="plot") for f in figs)
            + "</div></section>")


def _config_range(view: DatasetView, lo: str, hi: str) -> tuple[float, float] | None:
    """``(lo, hi)`` from the first config section of the last run that sets both (e.g. the sequence limits)."""
    stack = [view.runs[-1].get("config")] if view.runs else []
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get(lo), (int, float)) and isinstance(node.get(hi), (int, float)):
                return float(node[lo]), float(node[hi])
            stack.extend(node.values())
    return None


def _human(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)
