"""Consensus re-ranking (Devlin et al. 2015) of the shipped captioner's beam candidates.

    .venv/bin/python benchmarks/consensus_rerank.py                     # val split, beam 5
    .venv/bin/python benchmarks/consensus_rerank.py --split test --neighbours 40 --weights 3
    .venv/bin/python benchmarks/consensus_rerank.py --self --width 8     # no training captions

Each candidate of a beam search is re-scored by its mean word log-probability plus ``weight``
times its CIDEr-D against the captions of the ``k`` training photos nearest in pooled encoder
features (cosine). A measurement, not a shipped feature: it needs the training captions at run
time, and capsight ships only what it trains (docs/MODEL_CARD.md, "What was tried"). The photos'
features come from the training feature cache (``capsight train`` builds it); scores use
pycocoevalcap's Python tokenizer, so they match training's validation figures, not the Java
ones of the README. Prints one row per (k, weight) with the CIDEr of each half of the split.

``--self`` measures minimum-Bayes-risk selection instead: each candidate's consensus is its mean
CIDEr-D against the other candidates of the same beam (document frequencies from the training
captions), which would need nothing shipped but the model.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from capsight.captioning.base import DecodingOptions
from capsight.captioning.decoding import beam_candidates
from capsight.captioning.trained import TrainedCaptioner
from capsight.captioning.vocabulary import tokenize
from capsight.errors import CapsightError
from capsight.training.cider import CiderD
from capsight.training.datasets import load_corpus
from capsight.training.features import FeatureCache, default_cache_dir
from capsight.training.train import score

ROOT = Path(__file__).resolve().parents[1]  # (defaults from here, not the folder it runs in)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "flickr8k"),
                        help="the Flickr8k folder (default: ../shared/data/flickr8k)")  # fmt: skip
    parser.add_argument("--checkpoint", default=str(ROOT / "src/capsight/models/show-attend-tell"),
                        help="the captioner to re-rank (default: the shipped show-attend-tell)")  # fmt: skip
    parser.add_argument("--split", default="val")
    parser.add_argument("--width", type=int, default=5, help="beam width (candidates per photo)")
    parser.add_argument("--neighbours", type=int, nargs="+", default=[10, 20, 40])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.3, 1.0, 3.0])
    parser.add_argument(
        "--self",
        dest="self_consensus",
        action="store_true",
        help="consensus among the beam's own candidates (MBR), not neighbours",
    )
    args = parser.parse_args()
    try:
        captioner = TrainedCaptioner("measured", args.checkpoint)
        corpus = load_corpus(args.data)
        folder = FeatureCache.folder_of(
            default_cache_dir(), corpus, captioner.encoder_name, captioner.resolution or 224
        )
        cache = FeatureCache.open(folder)
    except CapsightError as exc:
        sys.exit(f"consensus_rerank: {exc}")
    train, photos = corpus.split("train"), corpus.split(args.split)

    def unit_pooled(images) -> torch.Tensor:
        rows = cache.rows([im.key for im in images])
        pooled = torch.from_numpy(np.asarray(cache.pooled[rows], dtype=np.float32))
        return torch.nn.functional.normalize(pooled, dim=1)

    train_captions = [[" ".join(tokenize(c)) for c in im.captions] for im in train]
    references = [[" ".join(tokenize(c)) for c in im.captions] for im in photos]
    nearest = (unit_pooled(photos) @ unit_pooled(train).T).topk(max(args.neighbours), dim=1).indices
    grid = torch.from_numpy(np.ascontiguousarray(cache.grid[cache.rows([im.key for im in photos])]))

    started = time.perf_counter()
    options = DecodingOptions(method="beam", beam_width=args.width)
    texts, log_probs = [], []  # per photo: candidate captions, their mean word log-probability
    with torch.no_grad():
        for start in range(0, len(photos), 100):
            for beams in beam_candidates(
                captioner.model, grid[start : start + 100].float(), options
            ):
                texts.append([" ".join(captioner.vocab.decode(d.tokens)) for d in beams])
                log_probs.append([d.score for d in beams])
    print(f"# {len(photos)} {args.split} photos decoded (beam {args.width}) in "
          f"{time.perf_counter() - started:.0f} s", file=sys.stderr)  # fmt: skip

    cider = CiderD(train_captions)
    halves = (slice(0, None, 2), slice(1, None, 2))

    def row(label: str, picked: list[str]) -> str:
        whole = score(references, picked)
        half = [score(references[h], picked[h])["CIDEr"] for h in halves]
        return (f"| {label} | {whole['BLEU-4']:.3f} | {whole['CIDEr']:.3f} | "
                f"{half[0]:.3f} | {half[1]:.3f} |")  # fmt: skip

    print(f"| ranking ({args.split}, beam {args.width}) | BLEU-4 | CIDEr | CIDEr, even half | "
          "CIDEr, odd half |")  # fmt: skip
    print("|---|---:|---:|---:|---:|")
    print(row("beam search's best (summed log-probability)", [t[0] for t in texts]), flush=True)

    def rerank(label: str, consensus: list[list[float]]) -> None:
        for weight in args.weights:
            picked = [
                cs[int(np.argmax(np.array(log_probs[i]) + weight * np.array(consensus[i])))]
                for i, cs in enumerate(texts)
            ]
            print(row(f"{label}, weight {weight:g}", picked), flush=True)

    if args.self_consensus:
        rerank("MBR among the beam's candidates", [
            [float(np.mean([cider.score(c, [o]) for j, o in enumerate(cs) if j != i] or [0.0]))
             for i, c in enumerate(cs)]
            for cs in texts
        ])  # fmt: skip
        return
    for k in args.neighbours:
        started = time.perf_counter()
        consensus = [
            [cider.score(c, [r for j in nearest[i, :k].tolist() for r in train_captions[j]]) for c in cs]
            for i, cs in enumerate(texts)
        ]  # fmt: skip
        seconds = time.perf_counter() - started
        print(
            f"# consensus of {k} neighbours: {len(photos) / seconds:.0f} photos/s", file=sys.stderr
        )
        rerank(f"{k} neighbours", consensus)


if __name__ == "__main__":
    main()
