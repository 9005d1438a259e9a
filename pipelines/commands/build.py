"""memcorpus build senorita-long|memento|multicam [flags]: build or refresh one corpus.

The same as ``python pipelines/build_<corpus>.py [flags]`` (the form ``ray job submit`` runs);
``memcorpus build CORPUS --help`` lists the corpus's flags.
"""

from __future__ import annotations

import argparse
import importlib

HELP = "build or refresh a corpus: senorita-long | memento | multicam (--dry-run, --limit N, --max-reject-rate R)"
BUILDERS = {
    "senorita-long": "pipelines.build_senorita_long",
    "memento": "pipelines.build_memento_corpus",
    "multicam": "pipelines.build_multicam_corpus",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    # The corpus's own parser reads the rest: only the chosen builder is imported, so a mistake is reported fast.
    p.add_argument("corpus", choices=sorted(BUILDERS), help="which corpus to build")
    p.add_argument("args", nargs=argparse.REMAINDER, help="the corpus's flags (memcorpus build CORPUS --help)")


def run(args: argparse.Namespace) -> int:
    from pipelines.config import exit_on_user_error

    builder = importlib.import_module(BUILDERS[args.corpus])
    prog = f"memcorpus build {args.corpus}"
    return exit_on_user_error(builder.main, args.args, prog, prog=prog)
