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

import time
from pathlib import Path

from capsight.captioning.base import DecodingOptions
from capsight.captioning.trained import TrainedCaptioner
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


if __name__ == "__main__":  # the tool itself lives in capsight._cli.tools.cached_eval
    from capsight._cli.tools.cached_eval import main

    raise SystemExit(main())
