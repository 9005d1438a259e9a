"""``memcorpus``: one console script; each subcommand lives in ``pipelines/commands/<name>.py``.

A command module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``,
and keeps heavy imports (torch, ray) inside ``run`` so listing the commands stays instant.
Modules are found by name, so adding a command never touches this file.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import re
import sys
from pathlib import Path

from pipelines import commands


def version() -> str:
    """The installed distribution's version; from pyproject.toml in a checkout that is not installed."""
    from importlib import metadata

    try:
        return metadata.version("memcorpus")
    except metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        text = pyproject.read_text() if pyproject.is_file() else ""
        project = re.search(r"^\[project\]$(.*?)(?=^\[|\Z)", text, re.MULTILINE | re.DOTALL)
        found = re.search(r'^version\s*=\s*"([^"]+)"', project.group(1), re.MULTILINE) if project else None
        return found.group(1) if found else "unknown"


def _command_modules() -> dict[str, str]:
    return {
        m.name.replace("_", "-"): f"{commands.__name__}.{m.name}"
        for m in pkgutil.iter_modules(commands.__path__)
        if not m.name.startswith("_")
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    mods = _command_modules()
    parser = argparse.ArgumentParser(prog="memcorpus", description="Build, check and use long-video memory corpora.")
    parser.add_argument("--version", action="version", version=f"memcorpus {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, modname in sorted(mods.items()):
        mod = importlib.import_module(modname)
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        if name == chosen:  # some commands' options come from modules that import torch
            mod.add_arguments(p)
            p.set_defaults(_run=mod.run)
    args = parser.parse_args(argv)
    if not hasattr(args, "_run"):
        parser.error(f"unknown command {args.command!r}")
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
