"""memcorpus evaluate VIDEOS...: the papers' consistency/quality metrics as JSON plus PNG plots."""

from __future__ import annotations

import argparse

HELP = "score generated videos (subject/background/aesthetic/semantic/inter-shot/history PSNR/camera errors)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from training.evaluate import add_arguments as add

    add(p)


def run(args: argparse.Namespace) -> int:
    from training.evaluate import run as run_eval

    return run_eval(args)
