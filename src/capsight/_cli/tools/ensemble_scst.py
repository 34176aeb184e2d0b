"""The command line of ``python -m capsight.training.ensemble_scst``
(the library module hands over to it, and parses no argv itself)."""

from __future__ import annotations

import sys

import capsight.training.ensemble_scst as library
from capsight._cli.tools import tool_parser
from capsight.errors import CapsightError
from capsight.training.ensemble_scst import OPTION_HELP, EnsembleScstConfig, train_ensemble


def main(argv: list[str] | None = None) -> int:
    parser = tool_parser(library.__name__, library.__doc__)
    parser.add_argument(
        "data",
        help="the caption dataset the members were trained on (any format capsight train reads; no --images)",
    )
    parser.add_argument("members", nargs="+", help="checkpoint folders, two or more")
    parser.add_argument(
        "--out", required=True, help="run folder: metrics.jsonl, best/m<i>, last/m<i>"
    )
    defaults = EnsembleScstConfig("", [], "")
    for name, text in OPTION_HELP.items():
        value = getattr(defaults, name)
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value,
                            help=f"{text} (default: {value})")  # fmt: skip
    parser.add_argument(
        "--frozen",
        type=int,
        nargs="+",
        default=[],
        metavar="I",
        help="members, by position from 0, that decode with the others but keep their weights",
    )
    parser.add_argument(
        "--no-end-token", action="store_true", help="score sampled captions without their end word"
    )
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if len(args.members) < 2:
        parser.error("name two or more checkpoint folders")
    if args.epochs < 0 or args.batch_images < 1 or args.samples < 2 or args.lr <= 0:
        parser.error("--epochs must be >= 0, --batch-images >= 1, --samples >= 2 (each is scored "
                     "against the others) and --lr > 0")  # fmt: skip
    if not set(args.frozen) < set(range(len(args.members))):
        parser.error(
            f"--frozen takes member positions 0-{len(args.members) - 1}, and leaves one to train"
        )
    options = {
        k: v for k, v in vars(args).items() if k not in ("no_end_token", "no_progress", "frozen")
    }
    config = EnsembleScstConfig(**options, frozen=tuple(args.frozen), end_token=not args.no_end_token,
                                progress=not args.no_progress)  # fmt: skip
    try:
        best = train_ensemble(config)
    except (CapsightError, OSError) as error:  # a missing cache or checkpoint, a taken --out
        print(f"ensemble_scst: {error}", file=sys.stderr)
        return 2
    print(f"best: epoch {best['epoch']}, validation CIDEr {best['val_CIDEr']}")
    return 0
