"""The command line of ``python -m capsight.classify.wordnet_export``
(the library module hands over to it, and parses no argv itself)."""

from __future__ import annotations

import gzip
from importlib import resources
from pathlib import Path

import capsight.classify.wordnet_export as library
from capsight._cli.tools import tool_parser
from capsight.classify.wordnet_export import export


def main() -> None:
    parser = tool_parser(library.__name__, library.__doc__)
    parser.add_argument("--wordnet", type=Path, required=True, help="folder with data.noun")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    text = resources.files("capsight.data").joinpath("imagenet_wnids.txt").read_text("utf-8")
    wnids = [w for w in text.split() if w]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.GzipFile(args.out, "wb", mtime=0) as fh:  # mtime=0: the same bytes every run
        fh.write(export(args.wordnet, wnids).encode("utf-8"))
