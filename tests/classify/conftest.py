"""Fixtures for the classify tests: a private embedding cache, a fake text embedder, tiny CLIP."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Every test writes embedding caches under its own temp folder, never ~/.cache."""
    monkeypatch.setenv("CAPSIGHT_CACHE", str(tmp_path_factory.mktemp("cache")))


def _fake_vector(text: str) -> np.ndarray:
    """A deterministic unit vector per text; texts sharing words get similar vectors."""
    vec = np.zeros(384, np.float32)
    for word in text.lower().replace(".", " ").split():
        seed = int(hashlib.md5(word.encode()).hexdigest()[:8], 16)
        vec += np.random.default_rng(seed).standard_normal(384).astype(np.float32)
    return vec / (np.linalg.norm(vec) or 1.0)


@pytest.fixture
def fake_text_embedder(monkeypatch):
    """Replace MiniLM (seconds to load) with a bag-of-words fake; returns the texts it saw."""
    seen: list[str] = []

    def embed_texts(texts, progress=None):
        seen.extend(texts)
        return np.stack([_fake_vector(t) for t in texts]) if texts else np.zeros((0, 384))

    import capsight.classify.text_cache as text_cache

    monkeypatch.setattr(text_cache, "embed_texts", embed_texts)
    text_cache.imagenet_prompt_embeddings.cache_clear()
    monkeypatch.setattr(
        text_cache,
        "imagenet_prompt_embeddings",
        lambda templates: text_cache.embed_synonym_prompts(_synonyms(), templates),
    )
    return seen


def _synonyms():
    from capsight.vision.imagenet_classes import imagenet_synonyms

    return imagenet_synonyms()


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> Path:
    """A random-weight CLIP (32 px images, 16-d embeddings) and a letter tokenizer on disk."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    out = tmp_path_factory.mktemp("tiny-clip")
    torch.manual_seed(0)
    config = transformers.CLIPConfig(
        text_config=dict(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=32,
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
        ),
        vision_config=dict(
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            image_size=32,
            patch_size=8,
        ),
        projection_dim=16,
    )
    transformers.CLIPModel(config).save_pretrained(out)
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz.,":
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab))
    (out / "merges.txt").write_text("#version: 0.2\n")
    (out / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "CLIPTokenizer", "model_max_length": 32})
    )
    return out


class TinyClassifier(torch.nn.Module):
    """Stands in for a built classifier (same interface, no encoder): exports in a moment."""

    resolution = 16

    def __init__(self) -> None:
        super().__init__()
        self.labels, self.engine = ["a", "b"], "offline"
        self.linear = torch.nn.Linear(3, 2)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = torch.nn.functional.interpolate(images, size=[16, 16], mode="bilinear")  # (N,3,16,16)
        return self.linear(x.clamp(0, 1).mean(dim=(2, 3))).softmax(dim=-1)  # (N, 2)


@pytest.fixture
def tiny_classifier() -> TinyClassifier:
    return TinyClassifier()
