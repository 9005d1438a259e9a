"""memcorpus generate CHECKPOINT --mode camera|edit|story: a video from a trained checkpoint, with its memory log."""

from __future__ import annotations

import argparse

HELP = "generate a video from a `memcorpus train` checkpoint (camera trajectory, multi-turn edit, or story)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from training.generate import add_arguments as add

    add(p)


def run(args: argparse.Namespace) -> int:
    from pipelines.config import exit_on_user_error
    from training.generate import run as run_generate

    return exit_on_user_error(run_generate, args, prog="memcorpus generate")
