"""The command line of ``python -m capsight.training.export``
(the library module hands over to it, and parses no argv itself)."""

from __future__ import annotations

import capsight.training.export as library
from capsight._cli.tools import tool_parser
from capsight.errors import CapsightError
from capsight.training.export import export_model


def main(argv: list[str] | None = None) -> None:
    from capsight.training.cached_eval import parse_decoding

    parser = tool_parser(library.__name__, library.__doc__)
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--to", required=True)
    parser.add_argument("--decoding", default="beam:3")
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        help="an exported model (folder relative to --to) to lead the ensemble",
    )
    args = parser.parse_args(argv)
    try:
        print(
            export_model(args.checkpoints, args.to, parse_decoding(args.decoding), also=args.also)
        )
    except (CapsightError, OSError) as exc:
        raise SystemExit(f"export: error: {exc}") from None
