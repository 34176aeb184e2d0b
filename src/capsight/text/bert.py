"""A BERT encoder in plain PyTorch, for the all-MiniLM-L6-v2 weights (no ``transformers``).

    >>> tokenizer, model = load_bert(minilm_path(), max_length=256)
    >>> ids, mask = tokenize(tokenizer, ["a dog on a beach"])
    >>> model(ids, mask).shape                     # last hidden state
    torch.Size([1, 7, 384])

Importing ``transformers`` costs about two seconds before any work starts, more than capsight
spends captioning a 70-second video, so the text embedder runs this small BERT instead: the
same weights (``model.safetensors`` of the installed package), the same fast tokenizer
(``tokenizer.json``, Rust ``tokenizers``) and the same outputs as ``transformers.BertModel`` to
float rounding (tests/text/test_embedders.py checks it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class BertConfig:
    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float

    @classmethod
    def from_json(cls, path: Path) -> BertConfig:
        raw = json.loads(path.read_text("utf-8"))
        if raw.get("hidden_act", "gelu") != "gelu" or raw.get("model_type", "bert") != "bert":
            raise ValueError(f"{path}: not a BERT model with GELU activations")
        return cls(**{name: raw[name] for name in cls.__dataclass_fields__})


class _Layer(nn.Module):
    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        d = c.hidden_size
        self.heads = c.num_attention_heads
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.attention_out, self.attention_norm = nn.Linear(d, d), nn.LayerNorm(d, c.layer_norm_eps)
        self.intermediate = nn.Linear(d, c.intermediate_size)
        self.out, self.out_norm = (
            nn.Linear(c.intermediate_size, d),
            nn.LayerNorm(d, c.layer_norm_eps),
        )

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape

        def split(y: torch.Tensor) -> torch.Tensor:  # (B, T, D) -> (B, heads, T, D / heads)
            return y.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, heads, T, D / heads)
        x = self.attention_norm(x + self.attention_out(att.transpose(1, 2).reshape(b, t, d)))
        return self.out_norm(x + self.out(F.gelu(self.intermediate(x))))  # (B, T, D)


class Bert(nn.Module):
    """BERT's embeddings and encoder stack; returns the last hidden state (no pooler)."""

    def __init__(self, c: BertConfig) -> None:
        super().__init__()
        self.config = c
        self.word = nn.Embedding(c.vocab_size, c.hidden_size)
        self.position = nn.Embedding(c.max_position_embeddings, c.hidden_size)
        self.token_type = nn.Embedding(c.type_vocab_size, c.hidden_size)
        self.norm = nn.LayerNorm(c.hidden_size, c.layer_norm_eps)
        self.layers = nn.ModuleList(_Layer(c) for _ in range(c.num_hidden_layers))

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Token ids (B, T) and attention mask (B, T, 1 = real token) -> (B, T, hidden)."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.word(ids) + self.position(positions) + self.token_type(torch.zeros_like(ids))
        x = self.norm(x)  # (B, T, D)
        keep = mask.bool()[:, None, None, :]  # (B, 1, 1, T): which keys each query may attend to
        for layer in self.layers:
            x = layer(x, keep)
        return x


# Checkpoint key (after "encoder.layer.N.") -> this module's name.
_LAYER_KEYS = {
    "attention.self.query": "query",
    "attention.self.key": "key",
    "attention.self.value": "value",
    "attention.output.dense": "attention_out",
    "attention.output.LayerNorm": "attention_norm",
    "intermediate.dense": "intermediate",
    "output.dense": "out",
    "output.LayerNorm": "out_norm",
}
_EMBEDDING_KEYS = {
    "embeddings.word_embeddings": "word",
    "embeddings.position_embeddings": "position",
    "embeddings.token_type_embeddings": "token_type",
    "embeddings.LayerNorm": "norm",
}


def _rename(key: str) -> str | None:
    """A ``transformers`` BertModel state-dict key -> this module's key (None: not used)."""
    key = key.removeprefix("bert.")
    module, _, param = key.rpartition(".")
    if module in _EMBEDDING_KEYS:
        return f"{_EMBEDDING_KEYS[module]}.{param}"
    if module.startswith("encoder.layer."):
        index, _, rest = module.removeprefix("encoder.layer.").partition(".")
        if rest in _LAYER_KEYS:
            return f"layers.{index}.{_LAYER_KEYS[rest]}.{param}"
    return None  # pooler, position_ids


def load_bert(path: Path, max_length: int) -> tuple[object, Bert]:
    """(fast tokenizer, Bert in eval mode) from a sentence-transformers model folder.

    The tokenizer truncates to ``max_length`` tokens ([CLS] and [SEP] kept) and pads each batch
    to its longest row."""
    from safetensors.torch import load_file
    from tokenizers import Tokenizer

    model = Bert(BertConfig.from_json(path / "config.json"))
    weights = load_file(str(path / "model.safetensors"))
    state = {new: v for k, v in weights.items() if (new := _rename(k)) is not None}
    model.load_state_dict(state)  # strict: every parameter must come from the checkpoint
    tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    return tokenizer, model.eval().requires_grad_(False)


def tokenize(tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Texts -> (token ids (B, T), attention mask (B, T)): [CLS] text [SEP], padded with 0."""
    encodings = tokenizer.encode_batch(texts)
    ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
    mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
    return ids, mask
