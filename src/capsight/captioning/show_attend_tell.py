"""Show, Attend and Tell (Xu et al. 2015): an LSTM with soft attention over the image grid.

    >>> model = ShowAttendTell(ShowAttendTellConfig(vocab_size=3000))
    >>> logits, extras = model(grid, captions)     # grid (B, 49, 1280), captions (B*k, T)
    >>> extras["alphas"].shape                     # (B*k, T-1, 49) attention per word

With ``fine_tune_blocks=N`` the model owns a copy of the encoder's top stage, trains its last N
blocks, and ``start`` takes the encoder's hidden map (B, 192, 7, 7) instead of the grid.

At each word the decoder scores every grid position against its hidden state, takes the
attention-weighted mean of the (projected) features, scales it by a learned gate
``beta = sigmoid(f(h))``, and feeds it with the previous word's embedding to an LSTM cell. The
initial ``h, c`` come from the mean feature. The output is the paper's deep output layer
``L_o(L_h h + L_z z)`` with ``L_o`` tied to the word embedding (the paper's ``E y`` term is left
out: with tied weights it pushes every word to repeat itself). Training adds the doubly
stochastic regulariser ``lambda * sum_p (1 - sum_t alpha_tp)^2`` (see ``attention_penalty``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from capsight.captioning.encoder_top import EncoderTop
from capsight.captioning.model import CaptionModel, State, register_architecture, repeat_rows


@dataclass(frozen=True)
class ShowAttendTellConfig:
    vocab_size: int
    architecture: str = "show-attend-tell"
    feature_dim: int = 1280
    projected_dim: int = 512  # grid features are projected once per image to this width
    embed_dim: int = 512
    hidden_dim: int = 512
    attention_dim: int = 512
    dropout: float = 0.5
    embed_dropout: float = 0.1
    gate: bool = True
    encoder: str = "efficientnet-lite0"
    resolution: int = 224
    # > 0: the model carries its own copy of the encoder's top stage with its last N blocks
    # fine-tuned, and reads the encoder's hidden map instead of its grid (``encoder_top``).
    fine_tune_blocks: int = 0
    # A file in the checkpoint folder holding the captioner's own, wholly fine-tuned encoder
    # (``training.end_to_end``); photos are encoded with it. "" = the shared ImageNet encoder.
    encoder_weights: str = ""


@register_architecture("show-attend-tell", ShowAttendTellConfig)
class ShowAttendTell(CaptionModel):
    has_attention = True
    static_state_keys = ("feats", "keys")

    def __init__(self, config: ShowAttendTellConfig) -> None:
        super().__init__()
        self.config = c = config
        self.feature_proj = nn.Sequential(
            nn.LayerNorm(c.feature_dim), nn.Linear(c.feature_dim, c.projected_dim), nn.ReLU()
        )
        self.feature_dropout = nn.Dropout(c.dropout * 0.5)
        self.init_h = nn.Linear(c.projected_dim, c.hidden_dim)
        self.init_c = nn.Linear(c.projected_dim, c.hidden_dim)
        self.att_feat = nn.Linear(c.projected_dim, c.attention_dim)
        self.att_hidden = nn.Linear(c.hidden_dim, c.attention_dim)
        self.att_score = nn.Linear(c.attention_dim, 1)
        self.gate = nn.Linear(c.hidden_dim, 1) if c.gate else None
        self.embed = nn.Embedding(c.vocab_size, c.embed_dim)
        self.embed_dropout = nn.Dropout(c.embed_dropout)
        self.lstm = nn.LSTMCell(c.embed_dim + c.projected_dim, c.hidden_dim)
        self.out_hidden = nn.Linear(c.hidden_dim, c.embed_dim)
        self.out_context = nn.Linear(c.projected_dim, c.embed_dim, bias=False)
        self.out_dropout = nn.Dropout(c.dropout)
        self.out_bias = nn.Parameter(torch.zeros(c.vocab_size))
        nn.init.uniform_(self.embed.weight, -0.1, 0.1)
        self.encoder_top = None
        if c.fine_tune_blocks:
            self.encoder_top = EncoderTop(c.encoder, c.fine_tune_blocks)
            self.feature_input = "hidden"

    # -- image side ---------------------------------------------------------------------------
    def start(self, grid: torch.Tensor) -> State:
        if self.encoder_top is not None and grid.dim() == 4:
            grid = self.encoder_top(grid)  # hidden maps (B, C, h, w) -> (B, P, 1280)
        # (a 3-D input is the grid this model's encoder_top made already, as an ensemble passes)
        feats = self.feature_dropout(self.feature_proj(grid.float()))  # (B, P, F)
        keys = self.att_feat(feats)  # (B, P, A)
        mean = feats.mean(dim=1)  # (B, F)
        h = torch.tanh(self.init_h(mean))  # (B, H)
        c = torch.tanh(self.init_c(mean))  # (B, H)
        return {"feats": feats, "keys": keys, "h": h, "c": c}

    # -- one word -----------------------------------------------------------------------------
    def _attend(self, state: State) -> tuple[torch.Tensor, torch.Tensor]:
        query = self.att_hidden(state["h"]).unsqueeze(1)  # (B, 1, A)
        keys = state["keys"]
        if (
            torch.is_grad_enabled()
            or torch.jit.is_tracing()
            or keys.device.type != "cpu"
            or keys.dtype != torch.float32
        ):
            # training, an ONNX export, a GPU, or bfloat16 (where tanh is not the cost measured)
            scores = self.att_score(torch.tanh(keys + query)).squeeze(-1)  # (B, P)
        else:
            scores = attention_scores(keys, query, self.att_score)  # (B, P), the same
        alpha = scores.softmax(dim=-1)  # (B, P)
        context = torch.bmm(alpha.unsqueeze(1), state["feats"]).squeeze(1)  # (B, F)
        if self.gate is not None:
            context = torch.sigmoid(self.gate(state["h"])) * context  # (B, F)
        return context, alpha

    def _word(self, tokens: torch.Tensor, state: State) -> tuple[torch.Tensor, State, torch.Tensor]:
        emb = self.embed_dropout(self.embed(tokens))  # (B, E)
        context, alpha = self._attend(state)
        h, c = self.lstm(torch.cat([emb, context], dim=-1), (state["h"], state["c"]))  # (B, H)
        pre = self.out_hidden(self.out_dropout(h)) + self.out_context(context)  # (B, E)
        logits = F.linear(self.out_dropout(pre), self.embed.weight, self.out_bias)  # (B, V)
        return logits, {**state, "h": h, "c": c}, alpha

    def step(self, tokens: torch.Tensor, state: State):
        return self._word(tokens, state)

    # -- teacher forcing ----------------------------------------------------------------------
    def forward(self, grid: torch.Tensor, captions: torch.Tensor) -> tuple[torch.Tensor, dict]:
        per_image = captions.shape[0] // grid.shape[0]
        state = {k: repeat_rows(v, per_image) for k, v in self.start(grid).items()}  # (B*k, ...)
        logits, alphas = [], []
        for t in range(captions.shape[1] - 1):
            step_logits, state, alpha = self._word(captions[:, t], state)
            logits.append(step_logits)  # (B*k, V)
            alphas.append(alpha)  # (B*k, P)
        return torch.stack(logits, 1), {"alphas": torch.stack(alphas, 1)}  # (B*k, T-1, V)


# Rows of ``attention_scores``' working tensor at a time: 16 x 81 x 512 floats (2.6 MB) stay in
# cache; the fastest of 4-128 rows on this project's CPU.
_SCORE_ROWS = 16


def attention_scores(keys: torch.Tensor, query: torch.Tensor, score: nn.Linear) -> torch.Tensor:
    """``score(tanh(keys + query)).squeeze(-1)`` for float32 inference, about 3x faster on a CPU.

    keys (B, P, A), query (B, 1, A) -> (B, P). Uses ``tanh(x) = 2 sigmoid(2x) - 1``, so the
    scores are ``(2 w) . sigmoid(2 (keys + query)) + b - sum(w)``: torch's float32 sigmoid runs
    about 4x faster than its tanh on a CPU, and taking 16 rows at a time keeps the (B, P, A)
    working tensor in cache. Equal to the plain form within float32 rounding (~1e-6)."""
    weight = score.weight[0]  # (A,)
    offset = (score.bias - weight.sum()) if score.bias is not None else -weight.sum()  # (1,)
    doubled = 2 * weight
    parts = [(keys[i : i + _SCORE_ROWS] + query[i : i + _SCORE_ROWS]).mul_(2).sigmoid_() @ doubled
             for i in range(0, max(len(keys), 1), _SCORE_ROWS)]  # fmt: skip
    return torch.cat(parts) + offset  # (B, P)


def attention_penalty(alphas: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Doubly stochastic regulariser: each grid cell should receive ~1 attention over a sentence.

    alphas (B, T, P), mask (B, T) of real (non-pad) steps -> ``(1 - sum_t alpha_tp)^2`` averaged
    over cells and images (the paper sums over cells; the mean keeps lambda independent of P).
    """
    total = (alphas * mask.unsqueeze(-1)).sum(dim=1)  # (B, P)
    return ((1.0 - total) ** 2).mean()
