"""Training and decoding throughput of the caption decoders on this machine's CPU.

    .venv/bin/python benchmarks/train_throughput.py            # prints a markdown table
    .venv/bin/python benchmarks/train_throughput.py --steps 3  # quicker

Cross-entropy training runs on random encoder grids (B=32 images x 5 captions of 13 tokens,
the Flickr8k shape), so the figure is decoder-only: the encoder runs once per photo into the
feature cache, not per step. Decoding is measured the same way (greedy, beam 3, beam 5, 32
images per batch); add the encoder's own images/s (docs/speed.md, docs/captioning_benchmarks.md) for end to end.
Models have the shipped sizes (512 wide, prefix-gpt2 256; vocabulary 2,575).
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from capsight.captioning.base import DecodingOptions
from capsight.captioning.decoding import decode
from capsight.captioning.model import build_model
from capsight.training.train import TrainConfig, caption_loss

VOCAB = 2575
ARCHITECTURES = {
    "show-attend-tell": {},
    "show-and-tell": {},
    "prefix-gpt2": {"n_embd": 256, "n_layer": 4, "n_head": 4},
}


def measure(architecture: str, options: dict, steps: int) -> dict:
    torch.manual_seed(0)
    model = build_model({"architecture": architecture, "vocab_size": VOCAB, **options})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    config = TrainConfig(data="", out="")
    grid = torch.randn(32, 49, 1280)  # (B, P, D)
    captions = torch.randint(4, VOCAB, (160, 14))  # (B*5, T)
    captions[:, 0] = 1
    model.train()
    caption_loss(model, grid, captions, config).backward()  # warm-up
    started = time.perf_counter()
    for _ in range(steps):
        optimizer.zero_grad()
        caption_loss(model, grid, captions, config).backward()
        optimizer.step()
    train_rate = steps * 32 / (time.perf_counter() - started)
    row = {"model": architecture, "params (M)": sum(p.numel() for p in model.parameters()) / 1e6,
           "train images/s": train_rate}  # fmt: skip
    for name, dec in (("greedy", DecodingOptions(method="greedy")), ("beam 3", DecodingOptions(beam_width=3)),
                      ("beam 5", DecodingOptions(beam_width=5))):  # fmt: skip
        decode(model, grid[:4], dec)
        started = time.perf_counter()
        decode(model, grid, dec)
        row[f"decode {name} images/s"] = 32 / (time.perf_counter() - started)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    rows = [measure(a, o, args.steps) for a, o in ARCHITECTURES.items()]
    print(
        f"CPU: {platform.processor() or platform.machine()}, torch threads {torch.get_num_threads()}\n"
    )
    keys = list(rows[0])
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        print(
            "| " + " | ".join(v if isinstance(v, str) else f"{v:.1f}" for v in row.values()) + " |"
        )


if __name__ == "__main__":
    main()
