"""The command line of ``python -m capsight.classify.wordnet_export``
(the library module hands over to it, and parses no argv itself)."""

from __future__ import annotations

import argparse
import gzip
from importlib import resources
from pathlib import Path

import capsight.classify.wordnet_export as library
from capsight.classify.wordnet_export import export


def main() -> None:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="python -m capsight.classify.wordnet_export",
        description=library.__doc__.splitlines()[0],
    )
    parser.add_argument("--wordnet", type=Path, required=True, help="folder with data.noun")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    text = resources.files("capsight.data").joinpath("imagenet_wnids.txt").read_text("utf-8")
    wnids = [w for w in text.split() if w]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(args.out, "wb", mtime=0) as fh:  # mtime=0: the same bytes every run
        fh.write(export(args.wordnet, wnids).encode("utf-8"))
