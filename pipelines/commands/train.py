"""memcorpus train --config CONFIG: train the memory DiT from a dataset folder with Ray Train."""

from __future__ import annotations

import argparse

HELP = "train the memory-conditioned DiT from corpus shards (Ray Train DDP/FSDP; same as python -m training.train)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from training.train import add_arguments as add

    add(p)


def run(args: argparse.Namespace) -> int:
    from training.train import run as run_training

    return run_training(args)
