"""Sanity check of the ImageNet encoder: top-1/top-5 on real photos, and encode throughput.

    nice -n 15 .venv/bin/python benchmarks/encoder_sanity.py            # Lite0, ../shared/data
    nice -n 15 .venv/bin/python benchmarks/encoder_sanity.py --encoder efficientnet-lite2

Photos: ``../shared/data/labelled`` (ImageNet photos of the 200 ILSVRC detection classes, 2 each).
150 of those classes are ImageNet-1k classes themselves (same WordNet id): "exact" scores them
strictly. The other 50 are broader (``dog``, ``car``, ``person``), so "all 200, loose" also counts
a prediction as right when one of its synonyms contains the label's head word ("domestic cat" ->
any ``... cat`` class). That rule is generous for some (``horse`` matches "river horse") and
misses others (``beagle`` is a dog), so read it as a rough figure, not an ImageNet accuracy.

Throughput: preprocessing (resize + normalise) and the forward pass for batches of 32 decoded
photos, on as many threads as torch uses (``torch.get_num_threads()``); disk decoding excluded.
The 1-minute load average is printed beside it: on a shared machine the figure falls with load.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import time
from pathlib import Path

import torch

from capsight.io.images import load_image
from capsight.vision.encoder import ImageEncoder
from capsight.vision.imagenet_classes import imagenet_synonyms, imagenet_wnids

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "labelled"


def head_words(class_name: str) -> list[str]:
    """'cup or mug' -> ['cup', 'mug']; 'domestic cat' -> ['cat']; 'hat with a wide brim' -> ['hat']."""
    heads = []
    for phrase in class_name.lower().split(" or "):
        words = phrase.split(" with ")[0].split()
        if words:
            heads.append(words[-1])
    return heads


def loose_match(class_index: int, wnid: str, class_name: str) -> bool:
    """Same WordNet id, or a synonym of the predicted class contains the label's head word."""
    if imagenet_wnids()[class_index] == wnid:
        return True
    synonyms = " | ".join(imagenet_synonyms()[class_index]).lower()
    return any(re.search(rf"\b{re.escape(w)}\b", synonyms) for w in head_words(class_name))


def accuracy_table(encoder: ImageEncoder, data: Path, batch_size: int) -> str:
    meta = json.loads((data / "labels.json").read_text("utf-8"))
    items = sorted(meta["images"].items())
    images = [load_image(data / rel) for rel, _ in items]
    probs = encoder.encode(images, batch_size=batch_size).probs  # (N, 1000)
    top5 = probs.topk(5, dim=-1).indices.tolist()  # (N, 5)
    known = set(imagenet_wnids())
    rows = {"exact": [0, 0, 0], "loose": [0, 0, 0]}  # photos, top-1 hits, top-5 hits
    for (_, info), ranked in zip(items, top5, strict=True):
        wnid, name = info["wnid"], info["class_name"]
        if wnid in known:
            hits = [imagenet_wnids()[i] == wnid for i in ranked]
            rows["exact"][0] += 1
            rows["exact"][1] += hits[0]
            rows["exact"][2] += any(hits)
        hits = [loose_match(i, wnid, name) for i in ranked]
        rows["loose"][0] += 1
        rows["loose"][1] += hits[0]
        rows["loose"][2] += any(hits)
    n_exact = len({info["wnid"] for _, info in items if info["wnid"] in known})
    n_all = len({info["wnid"] for _, info in items})
    labels = {
        "exact": f"exact ImageNet-1k class ({n_exact} classes)",
        "loose": f"all {n_all} classes, loose match",
    }
    lines = ["| subset | photos | top-1 | top-5 |", "|---|---:|---:|---:|"]
    for key, (n, t1, t5) in rows.items():
        lines.append(f"| {labels[key]} | {n} | {t1 / n:.1%} | {t5 / n:.1%} |")
    return "\n".join(lines)


def throughput(
    encoder: ImageEncoder, images: list, batch_size: int, repeats: int
) -> tuple[float, float, float]:
    """Images/s over ``repeats`` timed batches: (median, best, per CPU-second of this process).

    The best batch is the one least slowed by other processes; images per CPU-second hardly
    depends on them, so it compares machines with different load.
    """
    batch = images[:batch_size]
    encoder.encode(batch, batch_size=batch_size)  # warm-up
    rates = []
    cpu_start = time.process_time()
    for _ in range(repeats):
        start = time.perf_counter()
        encoder.encode(batch, batch_size=batch_size)
        rates.append(len(batch) / (time.perf_counter() - start))
    per_cpu_second = repeats * len(batch) / (time.process_time() - cpu_start)
    return statistics.median(rates), max(rates), per_cpu_second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--encoder", default="efficientnet-lite0")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5, help="timed batches for throughput")
    parser.add_argument("--skip-accuracy", action="store_true", help="throughput only")
    args = parser.parse_args()
    if not (args.data / "labels.json").is_file():
        raise SystemExit(f"{args.data}/labels.json not found; pass --data")

    encoder = ImageEncoder(args.encoder)
    table = "" if args.skip_accuracy else accuracy_table(encoder, args.data, args.batch_size)
    photos = [load_image(p) for p in sorted(args.data.glob("*/*.jpg"))[: args.batch_size]]
    median, best, per_cpu = throughput(encoder, photos, args.batch_size, args.repeats)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Encoder `{args.encoder}` on `{args.data.name}/`\n")
    if table:
        print(table + "\n")
    print(
        "| encoder | batch | torch threads | images/s (median) | images/s (best) "
        "| images per CPU-second | load avg |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    print(
        f"| {args.encoder} | {args.batch_size} | {torch.get_num_threads()} "
        f"| {median:.1f} | {best:.1f} | {per_cpu:.1f} | {load:.1f} |"
    )


if __name__ == "__main__":
    main()
