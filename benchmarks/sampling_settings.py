"""Sampled captions: how good and how varied they are at each temperature and top-p.

    .venv/bin/python benchmarks/sampling_settings.py                     # 200 validation photos
    .venv/bin/python benchmarks/sampling_settings.py --photos 500 --model show-attend-tell

`capsight caption --sample --num 5` (and the web page's "Diverse captions") draws several
captions per photo. This decodes the Flickr8k validation photos (never trained on, not the test
split) with the captioner's own beam search as a reference row, then draws 5 samples per photo
(seed 1) at each setting, and prints a table:

- *CIDEr*: each of the 5 draws scored alone against the photos' references (CIDEr-D's form,
  pycocoevalcap with the Python tokenizer), averaged over the 5: how good a typical sample is;
- *distinct*: distinct sentences among a photo's 5 draws, averaged over the photos;
- *distinct 2-grams*: distinct word pairs / all word pairs in a photo's 5 draws, averaged;
- *broken*: share of draws that end on a word a caption rarely ends with (`a`, `the`, `of`,
  `with`, ...) or repeat a word twice in a row: the loose sentences sampling is prone to.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

from capsight.captioning.base import DecodingOptions, create_captioner
from capsight.io.images import load_image
from capsight.training.evaluate import encoder_for
from capsight.training.evaluation import score_captions
from capsight.training.readers import read_corpus

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "flickr8k"
SETTINGS = [  # (temperature, top_p)
    (1.0, 1.0), (0.8, 1.0), (0.7, 1.0), (0.5, 1.0), (1.0, 0.9), (0.8, 0.9), (0.7, 0.9), (1.0, 0.8),
]  # fmt: skip
DRAWS = 5
DANGLING = {
    "a",
    "an",
    "the",
    "of",
    "with",
    "in",
    "on",
    "and",
    "at",
    "to",
    "his",
    "her",
    "their",
    "its",
}


def broken(text: str) -> bool:
    words = text.split()
    return (
        not words
        or words[-1] in DANGLING
        or any(a == b for a, b in zip(words, words[1:], strict=False))
    )


def distinct_bigrams(texts: list[str]) -> float:
    pairs = [tuple(p) for t in texts for p in zip(t.split(), t.split()[1:], strict=False)]
    return len(set(pairs)) / len(pairs) if pairs else 0.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DATA), help="a dataset folder with a val split")
    parser.add_argument("--photos", type=int, default=200, help="validation photos (default 200)")
    parser.add_argument("--model", default="default", help="captioner (default: the photo default)")
    args = parser.parse_args(argv)
    if not Path(args.data).exists():
        print(f"no data at {args.data}", file=sys.stderr)
        return 1
    photos = read_corpus(args.data).split("val")[: args.photos]
    references = {p.key: list(p.captions) for p in photos}
    captioner = create_captioner(args.model)
    started = time.perf_counter()
    encoded = encoder_for(captioner).encode([load_image(p.path) for p in photos], batch_size=32)
    print(f"{captioner.name}: {len(photos)} validation photos encoded in "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)  # fmt: skip

    def cider(texts: dict[str, str]) -> float:
        return float(score_captions(references, texts, use_java=False, metrics=["CIDEr"])["CIDEr"])

    keys = [p.key for p in photos]
    rows = []
    beam = [r.text for r in captioner.caption(encoded)]
    rows.append(("its own beam search (one caption)", cider(dict(zip(keys, beam, strict=True))),
                 1.0, None, statistics.mean(map(broken, beam))))  # fmt: skip
    for temperature, top_p in SETTINGS:
        # One draw per seed (1..5), so a repeated sentence counts in every column; what
        # num_captions returns is the distinct ones only.
        draws = [
            [r.text for r in captioner.caption(encoded, DecodingOptions(
                method="sample", temperature=temperature, top_p=top_p, seed=seed))]
            for seed in range(1, DRAWS + 1)
        ]  # fmt: skip
        per_photo = [list(texts) for texts in zip(*draws, strict=True)]
        rows.append(
            (
                f"sample, T {temperature:g}, top-p {top_p:g}",
                statistics.mean(cider(dict(zip(keys, column, strict=True))) for column in draws),
                statistics.mean(len(set(texts)) for texts in per_photo),
                statistics.mean(distinct_bigrams(texts) for texts in per_photo),
                statistics.mean(broken(t) for column in draws for t in column),
            )
        )
        print(f"  {rows[-1][0]}: done", file=sys.stderr)
    print(f"\n{captioner.name}, {len(photos)} Flickr8k validation photos, {DRAWS} draws each\n")
    print("| decoding | CIDEr (mean of draws) | distinct of 5 | distinct 2-grams | broken |")
    print("|---|---:|---:|---:|---:|")
    for name, score, distinct, bigrams, bad in rows:
        bigram_text = "" if bigrams is None else f"{bigrams:.2f}"
        print(f"| {name} | {score:.3f} | {distinct:.2f} | {bigram_text} | {bad:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
