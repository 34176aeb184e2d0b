"""How a captioner does on the Flickr8k photos that reached us as originals, against chance.

    capsight eval ../shared/data/flickr8k --split val --json > val.json
    .venv/bin/python benchmarks/originals_gap.py val.json

The 125 Flickr8k test photos held back for independent evaluation sort, by file name, among the
first 1,000 Flickr8k names: the range our 875 originals (aspect ratio kept, not squashed) come
from, and in which no test photo here falls (docs/MODEL_CARD.md, "Data"). The scored photos
whose names sort before the dataset's first test photo are the nearest stand-in for them. This
scores CIDEr on those photos as a set of their own (their own document frequencies, as a test
set of that size would), then on ``--rounds`` sets of as many photos drawn from the others, and
prints where the range's score falls among the draws. Also BLEU-4 the same way.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from capsight.errors import CapsightError  # noqa: E402
from capsight.training.confidence import photo_stats  # noqa: E402
from capsight.training.evaluation import check_inputs, tokenized  # noqa: E402
from capsight.training.readers import read_corpus  # noqa: E402
from score_intervals import read_result, result_references  # noqa: E402


def first_test_name(dataset: str) -> str:
    corpus = read_corpus(dataset, None)
    if "test" not in corpus.splits:
        raise CapsightError(f"{dataset}: no test split to take the range from")
    return min(record.key for record in corpus.split("test"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "result", help="a `capsight eval --json` output (the validation photos, say)"
    )
    parser.add_argument("--rounds", type=int, default=200, help="sets drawn from the other photos")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        result = read_result(args.result)
        references = result_references(result)
        check_inputs(references, result["captions"])
        boundary = first_test_name(result["dataset"])
        gts, res, java, _ = tokenized(references, result["captions"])
        stats = photo_stats(gts, res)
        keys = list(stats.res)
        in_range = np.array([key < boundary for key in keys], dtype=float)
        size = int(in_range.sum())
        if not 2 <= size <= len(keys) - size:
            raise CapsightError(
                f"{size} of {len(keys)} photos sort before {boundary}: nothing to compare"
            )
        rng = np.random.default_rng(args.seed)
        others = np.flatnonzero(in_range == 0)
        draws = np.zeros((args.rounds, len(keys)))
        for row in draws:
            row[rng.choice(others, size, replace=False)] = 1.0
        print(f"{result['captioner']}: {size} of {len(keys)} photos sort before {boundary}; "
              f"{args.rounds} sets of {size} drawn from the other {len(others)}"
              f"{'' if java else ' (Python tokenizer)'}")  # fmt: skip
        print(
            "| metric | the range's photos | drawn sets: mean | 5% - 95% | draws below the range |"
        )
        print("|---|---:|---:|---:|---:|")
        rows = {"BLEU-4": (stats.scores(in_range[None])["BLEU-4"], stats.scores(draws)["BLEU-4"]),
                "CIDEr": (stats.subset_cider(in_range[None]), stats.subset_cider(draws))}  # fmt: skip
        for metric, (own, drawn) in rows.items():
            low, high = np.percentile(drawn, [5, 95])
            print(f"| {metric} | {own[0]:.4f} | {drawn.mean():.4f} | {low:.4f} - {high:.4f} | "
                  f"{(drawn < own[0]).mean():.0%} |")  # fmt: skip
        return 0
    except CapsightError as error:
        print(f"originals_gap: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
