"""Tiny caption models with random weights, for decoding and checkpoint tests (milliseconds)."""

from __future__ import annotations

import pytest
import torch

from capsight.captioning.model import build_model
from capsight.captioning.vocabulary import Vocabulary

TINY = {
    "show-attend-tell": {
        "projected_dim": 16,
        "embed_dim": 16,
        "hidden_dim": 16,
        "attention_dim": 16,
    },
    "show-and-tell": {"embed_dim": 16, "hidden_dim": 16},
    "prefix-gpt2": {"n_embd": 16, "n_layer": 1, "n_head": 2},
}


@pytest.fixture
def vocab() -> Vocabulary:
    return Vocabulary([f"w{i}" for i in range(26)])  # 30 ids with the 4 specials


@pytest.fixture
def grid() -> torch.Tensor:
    return torch.randn(3, 49, 1280, generator=torch.Generator().manual_seed(0))  # (B, P, D)


def _tiny_model(architecture: str, vocab_size: int = 30, **options):
    torch.manual_seed(0)
    config = {
        "architecture": architecture,
        "vocab_size": vocab_size,
        **TINY[architecture],
        **options,
    }
    return build_model(config).eval()


@pytest.fixture
def tiny_model():
    """tiny_model(architecture, **options) -> a random-weight model over a 30-word vocabulary."""
    return _tiny_model
