"""Score trained checkpoints on a dataset split straight from the feature cache (fast).

    python -m capsight.training.cached_eval ../shared/data/flickr8k runs/sat/best \\
        --split test --decoding greedy beam:3 beam:5 beam:3:lp0.5

    >>> scores = evaluate_on_cache(["runs/sat/best"], "../shared/data/flickr8k", "test",
    ...                            DecodingOptions(method="beam", beam_width=3))
    >>> scores["BLEU-4"], scores["CIDEr"]

The photos' encoder features come from the same cache training used, so this skips image
decoding and the encoder: it is for choosing models and decoding settings. ``capsight eval``
scores what users run, photos in, and is the one the README's table cites. Several checkpoint
paths are decoded as an ensemble. With ``--full`` the scores use pycocoevalcap's Java tokenizer
and METEOR when Java works.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from capsight.captioning.base import DecodingOptions
from capsight.captioning.trained import TrainedCaptioner
from capsight.errors import CapsightError
from capsight.training.batches import CaptionBatches
from capsight.training.features import (
    FeatureCache,
    build_encoder,
    default_cache_dir,
    refuse_own_encoder,
)
from capsight.training.readers import read_corpus
from capsight.training.train import caption_grid, score


def parse_decoding(text: str) -> DecodingOptions:
    """``greedy``, ``beam:W`` or ``beam:W:lpP`` -> DecodingOptions."""
    parts = text.split(":")
    if parts[0] == "greedy":
        return DecodingOptions(method="greedy")
    width = int(parts[1]) if len(parts) > 1 else 3
    penalty = float(parts[2][2:]) if len(parts) > 2 and parts[2].startswith("lp") else 0.0
    return DecodingOptions(method="beam", beam_width=width, length_penalty=penalty)


def evaluate_on_cache(
    paths: list[str], data: str, split: str, decoding: DecodingOptions,
    cache_dir: str | None = None, full: bool = False,
) -> dict:  # fmt: skip
    """BLEU/CIDEr (+ all metrics with ``full``) of a checkpoint or ensemble on ``split``."""
    cache_dir = str(default_cache_dir()) if cache_dir is None else cache_dir
    captioner = TrainedCaptioner("evaluated", ",".join(paths))
    if own := [weights for _, weights in captioner.member_inputs if weights]:
        refuse_own_encoder({"encoder_weights": own[0]}, Path(own[0]).parent)
    corpus = read_corpus(data)
    encoder = build_encoder(captioner.encoder_name, captioner.resolution)
    cache = FeatureCache.open(
        FeatureCache.folder_of(cache_dir, corpus, encoder.name, encoder.resolution)
    )
    images = corpus.split(split)
    batches = CaptionBatches.from_corpus(
        images,
        cache,
        captioner.vocab,
        None,
        max_length=10_000,
        features=captioner.model.feature_input,
    )
    references = [list(im.captions) for im in images]
    started = time.time()
    texts = caption_grid(captioner.model, captioner.vocab, batches.grid, decoding)
    seconds = time.time() - started
    scores = score(references, texts, full=full)
    return {**scores, "images": len(images), "decode_seconds": round(seconds, 1), "captions": texts}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="python -m capsight.training.cached_eval",
        description=__doc__.split("\n")[0],
    )
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


if __name__ == "__main__":
    main()
