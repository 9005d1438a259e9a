"""Subtitle and overlay finding, before and after issue 14, side by side in one run.

    .venv/bin/python benchmarks/bench_subtitles.py [--quick] [--before COMMIT]

"before" is ``stages/subtitles.py`` as of ``--before`` (default 8a8693f, the last commit
before issue 14: 480 px strips, boxes reused when a strip's global mean barely changed, a
box-height filter), loaded from git into its own module; "after" is the working tree (720 px
strips, block-wise change test, same-text linking, a second enlarged look at the subtitle
rows, the sequence's last frame, rows measured on the pixels, overlay rules by duration).
Both use RapidOCR and sample 2 frames per second.

Footage: the real clips in tests/data/real with labels made by eye (see
tests/memento/test_subtitles_real.py for how), and generated films with burned-in subtitles,
a corner logo, a half-transparent watermark and a copyright line (truth from the renderer).
Measures: band IoU against the text rows; event recall with start and end right to one
sample (plus 2 frames for seeking); overlays found (an overlay box over the truth's centre);
overlays reported as subtitles (an event box over an overlay); speed in video frames per
second of wall time.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.common import save
from models.ocr import RapidOCRDetector
from pipelines.demo_memento import hard_cases_film, render_film
from stages.subtitles import make_finder
from stages.video import probe
from tests.memento.test_subtitles_real import (
    CUTS_CAPTIONS,
    CUTS_END,
    CUTS_OVERLAYS,
    RU_EVENTS,
    RU_ROWS,
    ZH_EVENTS,
    ZH_ROWS,
)

REAL = ROOT / "tests" / "data" / "real"


def before_finder(commit: str):
    """The SubtitleFinder of ``commit``, as it was (its own module; imports resolve to today's helpers)."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{commit}:stages/subtitles.py"], check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="subs_before_")) / "subtitles_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("subtitles_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["subtitles_before"] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    # As its stage built it: at 480 px, PP-OCR's box/bitmap thresholds of then (0.5 / 0.3).
    return mod.SubtitleFinder(RapidOCRDetector(max_side=480, box_thresh=0.5, thresh=0.3))


def inside(box, p) -> bool:
    return box[0] <= p[0] <= box[2] and box[1] <= p[1] <= box[3]


def centre(b) -> tuple[float, float]:
    return (b[0] + b[2]) / 2, (b[1] + b[3]) / 2


def score(res: dict, rows, events, overlays, step: int) -> dict:
    """``events``: [(start, end)]; ``overlays``: [(start, end, point inside)]."""
    b = res["band"]
    iou = "" if rows is None else (0.0 if b is None else max(0, min(b[1], rows[1]) - max(b[0], rows[0]))
                                  / (max(b[1], rows[1]) - min(b[0], rows[0])))
    tol = step + 2
    hits = [t for t in events if any(abs(e["start"] - t[0]) <= tol and abs(e["end"] - t[1]) <= tol
                                     for e in res["events"])]
    found = [o for o in overlays if any(inside(r["box"], o[2]) for r in res["overlays"])]
    as_sub = sum(any(inside(e["box"], o[2]) for e in res["events"]) for o in overlays)
    return {"iou": iou, "recall": len(hits) / len(events) if events else "", "ov": f"{len(found)}/{len(overlays)}",
            "as_sub": as_sub, "band": b, "n_events": len(res["events"]), "n_ov": len(res["overlays"])}


def footage(tmp: Path, quick: bool) -> list[tuple[str, Path, int | None, dict]]:
    out = [
        ("real ru 1280x720 (thin spaced captions)", REAL / "subtitles_ru_1280x720.mp4", None,
         {"rows": RU_ROWS, "events": RU_EVENTS, "overlays": []}),
        ("real zh 1920x800", REAL / "subtitles_zh_1920x800.mp4", None,
         {"rows": ZH_ROWS, "events": ZH_EVENTS, "overlays": []}),
        ("real cuts 640x360, frames 0-387 (captions, disclaimers, camera clock)", REAL / "cuts_people_640x360.mp4",
         CUTS_END, {"rows": None, "events": CUTS_CAPTIONS, "overlays": CUTS_OVERLAYS}),
        ("real street 1920x1080 (no text)", REAL / "street_people_1920x1080.mp4", None,
         {"rows": None, "events": [], "overlays": []}),
    ]
    for w, h in ([(320, 180)] if quick else [(320, 180), (640, 360), (1280, 720)]):
        path = tmp / f"marked_{w}x{h}.mp4"
        t = render_film(path, hard_cases_film(w, h, seed=1, watermark=True, copyright=True))
        ovs = [(0, t["frames"] - 1, centre(b)) for b in t["overlays"]]
        out.append((f"generated {w}x{h}: subtitles + logo + watermark + copyright line", path, None,
                    {"rows": t["ink_band"], "events": [(e["start"], e["end"]) for e in t["subtitle_events"]],
                     "overlays": ovs}))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="generated film at 320x180 only")
    ap.add_argument("--before", default="8a8693f", help="commit whose stages/subtitles.py is 'before'")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench_subs_"))
    methods = [("before", before_finder(args.before)), ("after", make_finder())]
    rows = []
    for label, path, end, truth in footage(tmp, args.quick):
        info = probe(path)
        frames = (end or info.frames)
        for name, finder in methods:
            step = finder.sampling(info.fps, info.width, info.height)[0]
            t0 = time.perf_counter()
            res = finder.analyze(str(path), 0, end, info.fps, info.width, info.height)
            dt = time.perf_counter() - t0
            s = score(res, truth["rows"], truth["events"], truth["overlays"], step)
            rows.append((label, name, frames / dt, s))
            print(label, name, f"{frames / dt:.0f} f/s", s, flush=True)
    load = os.getloadavg()
    fmt = lambda v: f"{v:.3f}" if isinstance(v, float) else str(v)
    lines = [
        "# Subtitle and overlay benchmark (issue 14)",
        "",
        (f"Machine: {os.cpu_count()} cores shared with other engineers; load average during the run "
         f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} (1/5/15 min): absolute speeds are pessimistic, "
         "before and after ran alternately on the same clips. Speed is video frames per second of wall time "
         "(2 samples per second of video analysed)."),
        "",
        ("| footage | finder | video frames/s | band IoU | event recall (start/end ±1 sample) | overlays found "
         "| overlays reported as subtitles | band | events | overlays |"),
        "|---|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for label, name, speed, s in rows:
        lines.append(f"| {label} | {name} | {speed:.0f} | {fmt(s['iou'])} | {fmt(s['recall'])} | {s['ov']} | "
                     f"{s['as_sub']} | {s['band']} | {s['n_events']} | {s['n_ov']} |")
    save("subtitles", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
