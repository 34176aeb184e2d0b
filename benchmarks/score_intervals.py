"""How far a caption score could move on other photos: bootstrap intervals, and paired comparisons.

    capsight eval ../shared/data/flickr8k --split test --json > shipped.json
    capsight eval ../shared/data/flickr8k --split test --model runs/pairC --json > pairC.json
    .venv/bin/python benchmarks/score_intervals.py shipped.json                  # intervals
    .venv/bin/python benchmarks/score_intervals.py shipped.json pairC.json       # is pairC better?
    .venv/bin/python benchmarks/score_intervals.py shipped.json --photos 125     # a smaller test set

Reads the captions of ``capsight eval --json`` results and the references of the dataset they
name, scores them with pycocoevalcap (Java tokenizer when present) and prints, per metric, the
score and its 95% interval over ``--rounds`` draws of the photos with replacement; with
``--photos N`` each round takes N different photos instead and scores CIDEr on them afresh
(their own document frequencies, as a test set of N photos would): where such a set could
land, and its mean (CIDEr runs higher on small sets; ~0.1 s per round for 125 photos). With a second result it prints a paired bootstrap instead: the
difference (second - first), its interval, and the share of draws in which the second won
(``capsight.training.confidence``).
"""

from __future__ import annotations

import argparse
import json
import sys

from capsight.errors import CapsightError
from capsight.training.confidence import (
    INTERVAL_METRICS,
    bootstrap_intervals,
    compare_captions,
    photo_stats,
)
from capsight.training.evaluation import check_inputs, tokenized
from capsight.training.readers import read_corpus


def read_result(path: str) -> dict:
    try:
        with open(path) as f:
            result = json.load(f)
        return {"captions": result["captions"], "dataset": result["dataset"],
                "split": result.get("split"), "captioner": result.get("captioner", path)}  # fmt: skip
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CapsightError(f"{path}: not a `capsight eval --json` result ({error})") from None


def result_references(result: dict) -> dict[str, list[str]]:
    corpus = read_corpus(result["dataset"], None)
    records = corpus.split(result["split"]) if result["split"] else corpus.images.values()
    return {r.key: list(r.captions) for r in records if r.key in result["captions"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+", help="one or two `capsight eval --json` outputs")
    parser.add_argument("--rounds", type=int, default=1000, help="bootstrap draws")
    parser.add_argument("--photos", type=int, default=None,
                        help="photos per draw (default: as many as were scored)")  # fmt: skip
    args = parser.parse_args(argv)
    if len(args.results) > 2:
        parser.error("give one result, or two to compare")
    try:
        first = read_result(args.results[0])
        references = result_references(first)
        check_inputs(references, first["captions"])
        if len(args.results) == 1:
            gts, res, java, _ = tokenized(references, first["captions"])
            stats = photo_stats(gts, res)
            intervals = bootstrap_intervals(stats, args.rounds, sample_size=args.photos)
            full = stats.overall()
            how = (f"{args.rounds} draws of {len(stats)} with replacement" if args.photos is None
                   else f"{args.rounds} subsets of {args.photos}, CIDEr scored on each subset")  # fmt: skip
            print(f"{first['captioner']}, {len(stats)} photos, {how}"
                  f"{'' if java else ' (Python tokenizer)'}")  # fmt: skip
            mean = "| mean over subsets " if args.photos else ""
            print(f"| metric | score, all photos {mean}| 95% interval |")
            print("|---|---:|" + ("---:|" if args.photos else "") + "---:|")
            for metric in INTERVAL_METRICS:
                low, high = intervals[metric]
                middle = f"| {intervals['means'][metric]:.4f} " if args.photos else ""
                print(f"| {metric} | {full[metric]:.4f} {middle}| {low:.4f} - {high:.4f} |")
            return 0
        second = read_result(args.results[1])
        result = compare_captions(references, first["captions"], second["captions"], args.rounds)
        print(f"{second['captioner']} against {first['captioner']}, {len(references)} photos, "
              f"{args.rounds} paired draws{' (' + result['fallback'] + ')' if 'fallback' in result else ''}")  # fmt: skip
        print("| metric | first | second | difference | 95% interval | second wins |")
        print("|---|---:|---:|---:|---:|---:|")
        for metric in INTERVAL_METRICS:
            row = result[metric]
            low, high = row["interval"]
            print(f"| {metric} | {row['baseline']:.4f} | {row['challenger']:.4f} | "
                  f"{row['difference']:+.4f} | {low:+.4f} - {high:+.4f} | {row['better']:.0%} |")  # fmt: skip
        return 0
    except CapsightError as error:
        print(f"score_intervals: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
