"""The command line of ``python -m capsight.training.end_to_end``
(the library module hands over to it, and parses no argv itself)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from capsight._cli.tools import tool_parser
from capsight.errors import CapsightError
from capsight.training.end_to_end import OPTION_HELP, EndToEndConfig, end_to_end


def build_parser() -> argparse.ArgumentParser:
    parser = tool_parser(
        "capsight.training.end_to_end",
        "Train Show, Attend and Tell with its whole encoder, on photos (a GPU job).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "data", help="caption dataset, as for capsight train (with train and val splits)"
    )
    parser.add_argument("--out", required=True, help="run folder: best/, last/, metrics.jsonl")
    defaults = EndToEndConfig(data="", out="")
    for f in dataclasses.fields(EndToEndConfig):
        if f.name in ("data", "out", "resume", "progress"):
            continue
        flag = "--" + f.name.replace("_", "-")
        value = getattr(defaults, f.name)
        if isinstance(value, bool):
            parser.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=value, help=OPTION_HELP[f.name]
            )
        else:
            parser.add_argument(flag, type=type(value), default=value, help=OPTION_HELP[f.name])
    parser.add_argument("--resume", action="store_true", help="continue from <out>/last")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    values = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(EndToEndConfig)
        if hasattr(args, f.name)
    }
    try:
        best = end_to_end(EndToEndConfig(**{**values, "progress": not args.quiet}))
    except (CapsightError, OSError) as exc:
        print(f"end_to_end: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({"best": best, "best_dir": str(Path(args.out) / "best")}))
    return 0
