"""memcorpus evaluate VIDEO: the papers' consistency/quality metrics as JSON plus PNG plots, one model per metric."""

from __future__ import annotations

import argparse

HELP = (
    "score a video (e.g. memcorpus generate's, with its generation.json): subject/background/aesthetic/semantic/"
    "inter-shot/per-character consistency, history PSNR/LPIPS, camera errors; records every model's path and hash"
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    from training.evaluate import add_arguments as add

    add(p)


def run(args: argparse.Namespace) -> int:
    from pipelines.config import exit_on_user_error
    from training.evaluate import run as run_eval

    return exit_on_user_error(run_eval, args, prog="memcorpus evaluate")
