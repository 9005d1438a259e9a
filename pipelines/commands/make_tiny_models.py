"""memcorpus make-tiny-models DIR: write the tiny random models used offline."""

from __future__ import annotations

import argparse

HELP = "write tiny random models (real configs, tokenizers trained in code) for offline runs and tests"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", help="output folder; one subfolder per model family")
    p.add_argument("--only", nargs="*", help="families to build (default: all)")
    p.add_argument("--force", action="store_true", help="rebuild even if present")


def run(args: argparse.Namespace) -> int:
    from models.tiny import TINY_BUILDERS, build_tiny

    for fam in args.only or sorted(TINY_BUILDERS):
        print(f"{fam}: {build_tiny(fam, args.dir, force=args.force)}")
    return 0
