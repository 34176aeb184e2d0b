"""How many photos per network run the image encoder should take on a CPU (``CPU_CHUNK``).

    .venv/bin/python benchmarks/encoder_chunks.py                  # Lite0, and Lite2 if installed
    .venv/bin/python benchmarks/encoder_chunks.py --photos 64 --repeats 3 --threads 2

Encodes the first ``--photos`` Flickr8k photos (preprocessed once, outside the timing) with
``ImageEncoder.encode_tensor`` while ``capsight.vision.encoder.CPU_CHUNK`` takes each value, and
prints milliseconds per photo, the best of ``--repeats`` runs (other work on the machine only
ever makes a run slower), for EfficientNet-Lite0, ImageNet Lite2 when the ``lite12`` extra is
installed, and the photo default's own Lite2 encoder (its second member's), in float32: the only
precision that runs in chunks (on a CPU with native bfloat16 the captioners' encoders run whole
batches in bfloat16, as before the chunks).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from PIL import Image

import capsight.vision.encoder as encoder_module
from capsight.captioning import MODELS_DIR
from capsight.vision.encoder import ImageEncoder, available_encoders

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_description  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "flickr8k" / "images"
CHUNKS = (1, 2, 3, 4, 6, 8, 16, 32)
PAIR_ENCODER = MODELS_DIR / "show-attend-tell-pair" / "m1" / "encoder.safetensors"


def encoders() -> list[tuple[str, ImageEncoder]]:
    found = [("efficientnet-lite0", ImageEncoder("efficientnet-lite0"))]
    if "efficientnet-lite2" in available_encoders():
        found.append(("efficientnet-lite2 (ImageNet)", ImageEncoder("efficientnet-lite2")))
    if PAIR_ENCODER.is_file():
        found.append(("efficientnet-lite2 (the pair's m1)",
                      ImageEncoder("efficientnet-lite2", weights=str(PAIR_ENCODER))))  # fmt: skip
    return found


def ms_per_photo(encoder: ImageEncoder, batch: torch.Tensor, chunk: int, repeats: int) -> float:
    encoder_module.CPU_CHUNK = chunk
    encoder.encode_tensor(batch[:chunk])  # warm-up at this shape
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        encoder.encode_tensor(batch)
        best = min(best, time.perf_counter() - start)
    return best / len(batch) * 1e3


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=64, help="photos per timed run (one batch)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    paths = sorted(DATA.glob("*.jpg"))[: args.photos]
    if not paths:
        raise SystemExit(f"no photos in {DATA}")
    photos = [Image.open(p).convert("RGB") for p in paths]
    default = encoder_module.CPU_CHUNK
    rows = []
    for name, encoder in encoders():
        batch = encoder.preprocess(photos)
        rows.append((name, [ms_per_photo(encoder, batch, chunk, args.repeats) for chunk in CHUNKS]))
    encoder_module.CPU_CHUNK = default
    print(f"ms per photo, batch of {len(photos)}, {args.threads} threads, best of {args.repeats}; "
          f"{cpu_description()}, torch {torch.__version__}; shipped CPU_CHUNK = {default}")  # fmt: skip
    print("| encoder | " + " | ".join(f"{c} at a time" for c in CHUNKS) + " |")
    print("|---|" + "---:|" * len(CHUNKS))
    for name, times in rows:
        print(f"| {name} | " + " | ".join(f"{t:.1f}" for t in times) + " |")


if __name__ == "__main__":
    main()
