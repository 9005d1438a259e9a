"""memcorpus train --config CONFIG: train the memory DiT from a dataset folder with Ray Train."""

from __future__ import annotations

import argparse

HELP = "train the memory-conditioned DiT from corpus shards (Ray Train DDP/FSDP; same as python -m training.train)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from training.config import add_arguments as add

    add(p)


def _run(args: argparse.Namespace) -> int:
    from training.config import config_from_args, print_config

    cfg = config_from_args(args)  # before torch and Ray are imported: a mistake is reported at once
    if args.dry_run:
        print_config(cfg)
        return 0
    from training.train import train

    return train(cfg, args.ray_address)


def run(args: argparse.Namespace) -> int:
    from pipelines.config import exit_on_user_error

    return exit_on_user_error(_run, args, prog="memcorpus train")
