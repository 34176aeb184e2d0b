"""``capsight train``: train a captioner on cached encoder features (a thin front for
``capsight._cli.train_command``; every option is documented by ``capsight train --help``).

    $ capsight train ../shared/data/flickr8k --out runs/sat --epochs 7
    $ capsight train ../shared/data/flickr8k --out runs/sat-scst --init-from runs/sat/best \
          --epochs 0 --scst-epochs 5 --scst-top-k 5
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> argparse.ArgumentParser:
    # The training module owns its options; pass everything through, --help included.
    p = subparsers.add_parser(
        "train",
        add_help=False,
        help="train a captioner (show-attend-tell, show-and-tell, prefix-gpt2) on a dataset",
        description="Train a captioner; see `capsight train --help`.",
    )
    p.add_argument("-h", "--help", action="store_true", dest="train_help")
    p.add_argument("rest", nargs=argparse.REMAINDER, help="DATASET [options]")
    return p


def run(args: argparse.Namespace) -> int:
    from capsight._cli.parser import OneLineParser
    from capsight._cli.train_command import train_main

    return train_main(["--help"] if args.train_help else list(args.rest), OneLineParser)
