"""Validation scores of two captioners on different encoders, alone and decoding as one.

    .venv/bin/python benchmarks/pair_validation.py src/capsight/models/show-attend-tell runs/sat-lite2-eos/best
    .venv/bin/python benchmarks/pair_validation.py A B --split test

How the shipped ``show-attend-tell-pair`` was chosen: from the cached features of the Flickr8k
photos (``~/.cache/capsight/features``, written by ``capsight train``), each member decodes the
1,000 validation photos with beam 3 and the pair decodes them with the members' word
probabilities averaged, each member reading its own encoder's grid. Scores are BLEU and CIDEr
with the Python tokenizer, as training's validation (``capsight.training.train.score``).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from capsight.captioning.base import DecodingOptions
from capsight.captioning.checkpoint import load_checkpoint
from capsight.captioning.ensemble import CaptionEnsemble
from capsight.captioning.trained import member_encoders
from capsight.training.batches import CaptionBatches
from capsight.training.datasets import load_corpus
from capsight.training.features import DEFAULT_CACHE_DIR, FeatureCache
from capsight.training.train import caption_grid, score

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "flickr8k"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("first", help="checkpoint folder of the first member (its encoder leads)")
    parser.add_argument("second", help="checkpoint folder of the second member")
    parser.add_argument("--data", default=str(DATA), help="the Flickr8k dataset folder")
    parser.add_argument("--split", default="val")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE_DIR))
    args = parser.parse_args(argv)

    corpus = load_corpus(args.data)
    photos = corpus.split(args.split)
    loaded = [load_checkpoint(folder) for folder in (args.first, args.second)]
    vocab = loaded[0][1]
    grids = []
    for (name, resolution) in member_encoders([raw for _, _, raw in loaded]):
        cache = FeatureCache.open(FeatureCache.folder_for(args.cache_dir, corpus.name, name, resolution))
        grids.append(CaptionBatches.from_corpus(photos, cache, vocab, None, 22, "grid"))
    references = grids[0].references
    pair = CaptionEnsemble([m for m, _, _ in loaded], [g.grid.shape[1] for g in grids]).eval()
    runs = [("first", loaded[0][0], grids[0].grid), ("second", loaded[1][0], grids[1].grid),
            ("pair", pair, torch.cat([g.grid for g in grids], dim=1))]  # fmt: skip
    print(f"| {args.split} ({len(photos)} photos), beam 3 | BLEU-1 | BLEU-4 | CIDEr | seconds |")
    print("|---|---:|---:|---:|---:|")
    for label, model, grid in runs:
        started = time.perf_counter()
        with torch.inference_mode():
            texts = caption_grid(model, vocab, grid, DecodingOptions(method="beam", beam_width=3))
        s = score(references, texts)
        print(f"| {label} | {s['BLEU-1']:.4f} | {s['BLEU-4']:.4f} | {s['CIDEr']:.4f} | "
              f"{time.perf_counter() - started:.0f} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
