"""Validation scores of captioners on different encoders, alone and decoding as one.

    .venv/bin/python benchmarks/pair_validation.py src/capsight/models/show-attend-tell runs/sat-lite2-eos/best
    .venv/bin/python benchmarks/pair_validation.py A B C --split test

How the members of ``show-attend-tell-pair`` were chosen: from the cached features of the Flickr8k
photos (``~/.cache/capsight/features``, written by ``capsight train`` or
``python -m capsight.training.features DATA --encoder NAME``), each member decodes the 1,000
validation photos with beam 3 (`--beam N` for another width), then all of them decode the photos as one, their word
probabilities averaged, each member reading its own encoder's grid (members on the same encoder
share it; a member with fine-tuned encoder blocks reads the grid its own blocks make of the
cached hidden maps). Scores are BLEU and CIDEr with the Python tokenizer, as training's validation
(``capsight.training.train.score``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from capsight.captioning.base import DecodingOptions
from capsight.captioning.checkpoint import load_checkpoint
from capsight.captioning.ensemble import CaptionEnsemble
from capsight.captioning.trained import member_encoder_weights, member_encoders
from capsight.errors import CapsightError
from capsight.training.batches import CaptionBatches
from capsight.training.datasets import load_corpus
from capsight.training.features import default_cache_dir, member_cache
from capsight.training.train import caption_grid, score

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "flickr8k"


def load_members(members: list[str], data: str, split: str, cache_dir: str):
    """The checkpoints in ``members``, their vocabulary (the first one's), what each reads of the
    ``split`` photos' cached features, the photos' reference captions and the photos."""
    corpus = load_corpus(data)
    photos = corpus.split(split)
    loaded = [load_checkpoint(folder) for folder in members]
    vocab = loaded[0][1]
    by_input: dict[tuple[str, int, str, str], CaptionBatches] = {}
    grids = []  # what each member reads: its encoder's grid, or a fine-tuned member's own grid
    raws = [raw for _, _, raw in loaded]
    weights = member_encoder_weights([Path(m) for m in members], raws)
    for (model, _, _), encoder, own in zip(loaded, member_encoders(raws), weights, strict=True):
        key = (*encoder, own, model.feature_input)
        if key not in by_input:
            name, resolution = encoder
            cache = member_cache(cache_dir, corpus, data, name, resolution, own)
            by_input[key] = CaptionBatches.from_corpus(
                photos, cache, vocab, None, 22, model.feature_input
            )
        features = by_input[key].grid
        if model.feature_input == "hidden":
            with torch.inference_mode():
                features = torch.cat([CaptionEnsemble.member_grid(model.eval(), None, part.float())
                                      for part in features.split(64)])  # fmt: skip
        grids.append(features)
    references = next(iter(by_input.values())).references
    return loaded, vocab, grids, references, photos


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "members", nargs="+", help="checkpoint folders, two or more (the first one's encoder leads)"
    )
    parser.add_argument("--data", default=str(DATA), help="the Flickr8k dataset folder")
    parser.add_argument("--split", default="val")
    parser.add_argument("--cache-dir", default=str(default_cache_dir()))
    parser.add_argument(
        "--together-only", action="store_true", help="skip scoring each member alone"
    )
    parser.add_argument("--beam", type=int, default=3, help="beam width")
    args = parser.parse_args(argv)
    if len(args.members) < 2:
        parser.error("name two or more checkpoint folders")

    try:
        loaded, vocab, grids, references, photos = load_members(
            args.members, args.data, args.split, args.cache_dir
        )
    except CapsightError as exc:
        sys.exit(f"pair_validation: {exc}")
    together = CaptionEnsemble([m for m, _, _ in loaded], [g.shape[1] for g in grids]).eval()
    runs = [] if args.together_only else [
        (f"{i + 1}: {folder}", model, grid)
        for i, (folder, (model, _, _), grid) in enumerate(zip(args.members, loaded, grids, strict=True))
    ]  # fmt: skip
    runs.append(("all together", together, torch.cat(grids, dim=1)))
    print(
        f"| {args.split} ({len(photos)} photos), beam {args.beam} | BLEU-1 | BLEU-4 | CIDEr | seconds |"
    )
    print("|---|---:|---:|---:|---:|")
    for label, model, grid in runs:
        started = time.perf_counter()
        with torch.inference_mode():
            texts = caption_grid(
                model, vocab, grid, DecodingOptions(method="beam", beam_width=args.beam)
            )
        s = score(references, texts)
        print(f"| {label} | {s['BLEU-1']:.4f} | {s['BLEU-4']:.4f} | {s['CIDEr']:.4f} | "
              f"{time.perf_counter() - started:.0f} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
