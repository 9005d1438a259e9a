"""memcorpus report OUT: write a static HTML report of a dataset folder and print where it is."""

from __future__ import annotations

import argparse

HELP = "write OUT/report/index.html: counts, reject reasons, histograms, contact sheets, captions, FOV heatmaps"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("out", help="dataset folder")
    p.add_argument("--samples", type=int, default=8, help="how many samples get a card with pictures (default 8)")
    p.add_argument("--frames", type=int, default=12, help="frames per contact sheet (default 12)")
    p.add_argument("--dest", help="write the report into DEST/memcorpus-report/ instead of OUT/report")
    p.add_argument("--open", action="store_true", help="open the report in the default browser")


def run(args: argparse.Namespace) -> int:
    from pipelines.report import build_report

    try:
        index = build_report(args.out, args.dest, samples=args.samples, frames=args.frames)
    except ValueError as e:
        print(f"report: {e}")
        return 2
    print(index)
    if args.open:
        import webbrowser

        webbrowser.open(index.resolve().as_uri())
    return 0
