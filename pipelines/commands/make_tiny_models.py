"""memcorpus make-tiny-models DIR: write the tiny random models used offline."""

from __future__ import annotations

import argparse
from pathlib import Path

HELP = "write tiny random models (real configs, tokenizers trained in code) for offline runs and tests"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", help="output folder, e.g. tiny_models/; one subfolder per model family")
    p.add_argument("--only", nargs="*", help="families to build (default: all)")
    p.add_argument("--force", action="store_true", help="rebuild even if present")


def check_not_package(folder: str | Path) -> None:
    """Refuse a folder inside a Python package: `make-tiny-models models/` in a checkout would fill our `models`
    package (and a later import or `pip install -e .` would ship the weights with it)."""
    from pipelines.config import ConfigError

    p = Path(folder).expanduser().resolve()
    while not p.exists():  # the folder is created: judge the nearest existing one
        p = p.parent
    if (p / "__init__.py").is_file():
        raise ConfigError(f"{folder} is inside the Python package {p}: choose another folder, e.g. tiny_models/")


def _run(args: argparse.Namespace) -> int:
    from models.tiny import TINY_BUILDERS, build_tiny

    check_not_package(args.dir)
    for fam in args.only or sorted(TINY_BUILDERS):
        print(f"{fam}: {build_tiny(fam, args.dir, force=args.force)}")
    return 0


def run(args: argparse.Namespace) -> int:
    from pipelines.config import exit_on_user_error

    return exit_on_user_error(_run, args, prog="memcorpus make-tiny-models")
