"""Show and Tell (Vinyals et al. 2015): the pooled image vector starts a recurrent language model.

    >>> model = ShowAndTell(ShowAndTellConfig(vocab_size=3000, cell="gru", num_layers=2))
    >>> logits, _ = model(grid, captions)          # grid (B, P, 1280) is mean-pooled first

The pooled feature is projected to the word-embedding width and fed as the first input of the
LSTM (or GRU), as in the paper; the words follow. No attention: every word sees the image only
through the recurrent state, which is why this baseline loses to Show, Attend and Tell.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from capsight.captioning.model import CaptionModel, State, register_architecture, repeat_rows
from capsight.errors import InvalidParameter


@dataclass(frozen=True)
class ShowAndTellConfig:
    vocab_size: int
    architecture: str = "show-and-tell"
    feature_dim: int = 1280
    embed_dim: int = 512
    hidden_dim: int = 512
    cell: str = "lstm"  # lstm | gru
    num_layers: int = 1
    dropout: float = 0.5
    embed_dropout: float = 0.1
    encoder: str = "efficientnet-lite0"
    resolution: int = 224

    def __post_init__(self) -> None:
        if self.cell not in ("lstm", "gru"):
            raise InvalidParameter(f"unknown recurrent cell {self.cell!r}; use lstm or gru")
        if self.num_layers < 1:
            raise InvalidParameter("the number of recurrent layers must be >= 1")


@register_architecture("show-and-tell", ShowAndTellConfig)
class ShowAndTell(CaptionModel):
    def __init__(self, config: ShowAndTellConfig) -> None:
        super().__init__()
        self.config = c = config
        self.image_proj = nn.Sequential(
            nn.LayerNorm(c.feature_dim),
            nn.Dropout(c.dropout * 0.5),
            nn.Linear(c.feature_dim, c.embed_dim),
        )
        self.embed = nn.Embedding(c.vocab_size, c.embed_dim)
        self.embed_dropout = nn.Dropout(c.embed_dropout)
        rnn = nn.LSTM if c.cell == "lstm" else nn.GRU
        inner_dropout = c.dropout if c.num_layers > 1 else 0.0
        self.rnn = rnn(
            c.embed_dim, c.hidden_dim, c.num_layers, batch_first=True, dropout=inner_dropout
        )
        self.out_dropout = nn.Dropout(c.dropout)
        self.out = nn.Linear(c.hidden_dim, c.embed_dim)
        self.out_bias = nn.Parameter(torch.zeros(c.vocab_size))
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)

    def _logits(self, h: torch.Tensor) -> torch.Tensor:
        pre = self.out(self.out_dropout(h))  # (..., E)
        return F.linear(pre, self.embed.weight, self.out_bias)  # (..., V), tied to the embedding

    def _pack(self, hidden) -> State:
        if isinstance(hidden, tuple):  # LSTM: (h, c), each (L, B, H) -> batch first
            return {"h": hidden[0].transpose(0, 1), "c": hidden[1].transpose(0, 1)}
        return {"h": hidden.transpose(0, 1)}

    def _unpack(self, state: State):
        h = state["h"].transpose(0, 1).contiguous()  # (L, B, H)
        return (h, state["c"].transpose(0, 1).contiguous()) if "c" in state else h

    def start(self, grid: torch.Tensor) -> State:
        image = self.image_proj(grid.float().mean(dim=1)).unsqueeze(1)  # (B, 1, E)
        _, hidden = self.rnn(image)
        return self._pack(hidden)

    def step(self, tokens: torch.Tensor, state: State):
        emb = self.embed_dropout(self.embed(tokens)).unsqueeze(1)  # (B, 1, E)
        out, hidden = self.rnn(emb, self._unpack(state))  # (B, 1, H)
        return self._logits(out.squeeze(1)), self._pack(hidden), None

    def forward(self, grid: torch.Tensor, captions: torch.Tensor) -> tuple[torch.Tensor, dict]:
        per_image = captions.shape[0] // grid.shape[0]
        image = self.image_proj(grid.float().mean(dim=1))  # (B, E)
        image = repeat_rows(image, per_image).unsqueeze(1)  # (B*k, 1, E)
        words = self.embed_dropout(self.embed(captions[:, :-1]))  # (B*k, T-1, E)
        out, _ = self.rnn(torch.cat([image, words], dim=1))  # (B*k, T, H)
        return self._logits(out[:, 1:]), {}  # (B*k, T-1, V)
