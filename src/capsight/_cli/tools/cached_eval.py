"""The command line of ``python -m capsight.training.cached_eval``
(the library module hands over to it, and parses no argv itself)."""

from __future__ import annotations

import json

import capsight.training.cached_eval as library
from capsight._cli.tools import tool_parser
from capsight.errors import CapsightError
from capsight.training.cached_eval import evaluate_on_cache, parse_decoding
from capsight.training.features import default_cache_dir


def main(argv: list[str] | None = None) -> None:
    parser = tool_parser(library.__name__, library.__doc__)
    parser.add_argument("data")
    parser.add_argument("checkpoints", nargs="+", help="checkpoint folders; several = ensemble")
    parser.add_argument("--split", default="test")
    parser.add_argument("--decoding", nargs="+", default=["greedy", "beam:3"])
    parser.add_argument("--cache-dir", default=str(default_cache_dir()))
    parser.add_argument("--full", action="store_true", help="PTB tokenizer and METEOR (Java)")
    parser.add_argument("--json", help="also write the scores (and captions) to this file")
    args = parser.parse_args(argv)
    rows = []
    print("| decoding | BLEU-1 | BLEU-4 | CIDEr | METEOR | ROUGE-L |")
    print("|---|---|---|---|---|---|")
    for text in args.decoding:
        try:
            result = evaluate_on_cache(args.checkpoints, args.data, args.split, parse_decoding(text),
                                       args.cache_dir, args.full)  # fmt: skip
        except (CapsightError, OSError) as exc:  # a checkpoint or cache a user named: one line
            raise SystemExit(f"cached_eval: error: {exc}") from None
        rows.append({"decoding": text, **result})
        cells = [
            f"{result[m]:.3f}" if m in result else "-"
            for m in ("BLEU-1", "BLEU-4", "CIDEr", "METEOR", "ROUGE-L")
        ]
        print(f"| {text} | " + " | ".join(cells) + " |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {"checkpoints": args.checkpoints, "split": args.split, "rows": rows}, f, indent=1
            )
