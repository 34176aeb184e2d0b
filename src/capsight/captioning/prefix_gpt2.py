"""Prefix captioning (ClipCap style): image features become the prefix of a GPT-2 decoder.

    >>> model = PrefixGPT2(PrefixGPT2Config(vocab_size=3000))         # trained from scratch
    >>> model, vocab = PrefixGPT2.from_pretrained("path/to/gpt2")      # GPT-2 weights + tokenizer

The image side is mapped to ``prefix_length`` embeddings (``prefix_from="pooled"``: an MLP on
the pooled vector, as ClipCap) or to one embedding per grid cell (``"grid"``: a linear map of
every cell plus a learned position, so the decoder can look at parts of the photo). The words
follow the prefix in a ``transformers.GPT2LMHeadModel``; the loss covers the words only.

Here it trains from scratch with the project's word vocabulary. ``from_pretrained`` loads a
GPT-2 checkpoint folder (or hub id, if the user has it cached) with its own tokenizer; nothing
is ever downloaded by capsight itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from capsight.captioning.model import CaptionModel, State, register_architecture, repeat_rows
from capsight.captioning.options import MAX_LENGTH
from capsight.captioning.vocabulary import BOS_ID, EOS_ID, PAD_ID, normalize_caption
from capsight.errors import InvalidParameter, ModelNotFound


@dataclass(frozen=True)
class PrefixGPT2Config:
    vocab_size: int
    architecture: str = "prefix-gpt2"
    feature_dim: int = 1280
    prefix_from: str = "grid"  # grid | pooled
    prefix_length: int = 10  # used with prefix_from="pooled"
    n_embd: int = 256
    n_layer: int = 4
    n_head: int = 4
    n_positions: int = 128
    dropout: float = 0.1
    bos_token_id: int = BOS_ID
    eos_token_id: int = EOS_ID
    pad_token_id: int = PAD_ID
    pretrained: str = ""  # where GPT-2 weights came from (provenance only; weights are saved)
    encoder: str = "efficientnet-lite0"
    resolution: int = 224

    def __post_init__(self) -> None:
        if self.prefix_from not in ("grid", "pooled"):
            raise InvalidParameter(f"prefix_from must be grid or pooled, not {self.prefix_from!r}")
        if self.n_head < 1 or self.n_embd % self.n_head:
            raise InvalidParameter(
                f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})"
            )


def _gpt2_config(c: PrefixGPT2Config):
    from transformers import GPT2Config

    return GPT2Config(
        vocab_size=c.vocab_size,
        n_positions=c.n_positions,
        n_embd=c.n_embd,
        n_layer=c.n_layer,
        n_head=c.n_head,
        resid_pdrop=c.dropout,
        embd_pdrop=c.dropout,
        attn_pdrop=c.dropout,
        bos_token_id=c.bos_token_id,
        eos_token_id=c.eos_token_id,
        pad_token_id=c.pad_token_id,
    )


@register_architecture("prefix-gpt2", PrefixGPT2Config)
class PrefixGPT2(CaptionModel):
    def __init__(self, config: PrefixGPT2Config, gpt=None) -> None:
        super().__init__()
        from transformers import GPT2LMHeadModel

        self.config = c = config
        self.bos_id, self.eos_id, self.pad_id = c.bos_token_id, c.eos_token_id, c.pad_token_id
        if c.pretrained:
            self.unk_id = None  # a GPT-2 tokenizer's ids are all real text
        self.gpt = gpt if gpt is not None else GPT2LMHeadModel(_gpt2_config(c))
        if c.prefix_from == "pooled":
            hidden = c.n_embd * c.prefix_length // 2
            self.mapper = nn.Sequential(
                nn.LayerNorm(c.feature_dim),
                nn.Linear(c.feature_dim, hidden),
                nn.Tanh(),
                nn.Linear(hidden, c.n_embd * c.prefix_length),
            )
        else:
            self.mapper = nn.Sequential(
                nn.LayerNorm(c.feature_dim), nn.Linear(c.feature_dim, c.n_embd)
            )
            self.cell_position = nn.Parameter(torch.zeros(1, 1, c.n_embd))
        layers = self.gpt.config.n_layer
        self.static_state_keys = tuple(f"p{kind}{i}" for i in range(layers) for kind in "kv")

    def get_input_embeddings(self) -> nn.Module:
        return self.gpt.get_input_embeddings()

    def prefix(self, grid: torch.Tensor) -> torch.Tensor:
        """grid (B, P, D) -> prefix embeddings (B, L, n_embd)."""
        c = self.config
        if c.prefix_from == "pooled":
            return self.mapper(grid.float().mean(dim=1)).reshape(
                grid.shape[0], c.prefix_length, c.n_embd
            )
        cells = self.mapper(grid.float())  # (B, P, n_embd)
        if self.cell_position.shape[1] != cells.shape[1]:
            self.cell_position = nn.Parameter(
                torch.zeros(1, cells.shape[1], c.n_embd, device=cells.device)
            )  # sized on first use: P depends on the encoder resolution
        return cells + self.cell_position

    def _logits(self, prefix: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        words = self.gpt.get_input_embeddings()(tokens)  # (B, T, n_embd)
        out = self.gpt(inputs_embeds=torch.cat([prefix, words], dim=1))
        return out.logits[:, prefix.shape[1] :]  # (B, T, V)

    # Decoding keeps each layer's keys and values (the "KV cache"): the prefix's, computed once
    # per photo (``pk{i}``/``pv{i}``, the same for every beam), and the words' so far
    # (``wk{i}``/``wv{i}``), so a step runs one position through the layers instead of the whole
    # sequence. The blocks are run here from the GPT-2 modules' own weights (``_blocks``), not
    # through transformers' Cache API, whose interface changes between releases; a test holds
    # the result to the full forward pass.
    def start(self, grid: torch.Tensor) -> State:
        prefix = self.prefix(grid)  # (B, L, n_embd)
        gpt = self.gpt.transformer
        positions = torch.arange(prefix.shape[1], device=prefix.device)
        _, kv = self._blocks(gpt.drop(prefix + gpt.wpe(positions)), None)
        state: State = {}
        for i, (k, v) in enumerate(kv):
            state[f"pk{i}"], state[f"pv{i}"] = k, v  # (B, H, L, d)
            state[f"wk{i}"], state[f"wv{i}"] = k[:, :, :0], v[:, :, :0]  # (B, H, 0, d)
        return state

    def longest_caption(self, grid: torch.Tensor) -> int | None:
        """GPT-2's positions left after the prefix: 128 - 49 grid cells = 79 steps (step 80 had
        no position, an IndexError, with options DecodingOptions allows)."""
        c = self.config
        prefix = grid.shape[1] if c.prefix_from == "grid" else c.prefix_length
        return max(1, c.n_positions - prefix)

    def step(self, tokens: torch.Tensor, state: State):
        gpt = self.gpt.transformer
        position = state["pk0"].shape[2] + state["wk0"].shape[2]
        x = gpt.wte(tokens)[:, None] + gpt.wpe.weight[position]  # (B, 1, n_embd)
        layers = len(gpt.h)
        past = [
            (torch.cat([state[f"pk{i}"], state[f"wk{i}"]], 2), torch.cat([state[f"pv{i}"], state[f"wv{i}"]], 2))
            for i in range(layers)
        ]  # fmt: skip
        x, kv = self._blocks(gpt.drop(x), past)
        new = {k: v for k, v in state.items() if k.startswith("p")}
        for i, (k, v) in enumerate(kv):
            new[f"wk{i}"] = torch.cat([state[f"wk{i}"], k], 2)
            new[f"wv{i}"] = torch.cat([state[f"wv{i}"], v], 2)
        return self.gpt.lm_head(x[:, -1]), new, None

    def _blocks(self, x: torch.Tensor, past: list | None) -> tuple[torch.Tensor, list]:
        """x (B, T, n_embd) through every GPT-2 block and the final norm -> (x, per-layer (k, v) of
        x's T positions, each (B, H, T, d)). Without ``past`` the T positions attend causally
        among themselves (the prefix pass); with it, one new position attends to all of ``past``
        and itself."""
        gpt = self.gpt.transformer
        kv = []
        for i, block in enumerate(gpt.h):
            attn = block.attn
            q, k, v = attn.c_attn(block.ln_1(x)).split(attn.split_size, dim=2)
            q, k, v = (
                z.unflatten(-1, (attn.num_heads, attn.head_dim)).transpose(1, 2) for z in (q, k, v)
            )
            kv.append((k, v))
            if past is not None:
                k, v = torch.cat([past[i][0], k], 2), torch.cat([past[i][1], v], 2)
            scale = attn.head_dim**-0.5 if attn.scale_attn_weights else 1.0
            if attn.scale_attn_by_inverse_layer_idx:
                scale /= i + 1
            out = nn.functional.scaled_dot_product_attention(
                q,
                k,
                v,
                is_causal=past is None,
                scale=scale,
                dropout_p=attn.attn_dropout.p if self.training else 0.0,
            )
            x = x + attn.resid_dropout(attn.c_proj(out.transpose(1, 2).flatten(2)))
            x = x + block.mlp(block.ln_2(x))
        return gpt.ln_f(x), kv

    def forward(self, grid: torch.Tensor, captions: torch.Tensor) -> tuple[torch.Tensor, dict]:
        per_image = captions.shape[0] // grid.shape[0]
        prefix = repeat_rows(self.prefix(grid), per_image)  # (B*k, L, n_embd)
        return self._logits(prefix, captions[:, :-1]), {}  # (B*k, T-1, V)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        position = state_dict.get("cell_position")
        if position is not None and hasattr(self, "cell_position"):
            self.cell_position = nn.Parameter(torch.zeros_like(position))
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    @classmethod
    def from_pretrained(
        cls, path_or_id: str | os.PathLike, prefix_from: str = "grid", prefix_length: int = 10,
        feature_dim: int = 1280, local_files_only: bool = True,
        encoder: str = "efficientnet-lite0", resolution: int = 224,
    ) -> tuple[PrefixGPT2, TokenizerVocabulary]:  # fmt: skip
        """GPT-2 weights and tokenizer from a folder (or a hub id already in the local cache),
        with a new image-to-prefix map for ``encoder``'s features at ``resolution`` px."""
        from transformers import AutoTokenizer, GPT2LMHeadModel

        from capsight.hub_cache import cached_folder

        # Offline, a hub id is read from its cached folder: given the id, transformers looks it
        # up online even with local_files_only.
        source = (
            (cached_folder(path_or_id) or str(path_or_id)) if local_files_only else str(path_or_id)
        )
        try:
            gpt = GPT2LMHeadModel.from_pretrained(source, local_files_only=local_files_only)
            tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_files_only)
        except (OSError, ValueError) as error:
            raise ModelNotFound(
                f"{path_or_id}: cannot load GPT-2 weights and tokenizer there ({error.__class__.__name__}); "
                "pass a folder made by save_pretrained"
            ) from None
        # transformers hands back an empty tokenizer for a folder without tokenizer files, and
        # training then learnt from nothing but padding (a NaN loss, said as "lower --lr").
        if len(tokenizer) < 2 or not tokenizer.encode(" a dog", add_special_tokens=False):
            raise ModelNotFound(f"{path_or_id}: no tokenizer there (tokenizer.json, or vocab.json "
                                "and merges.txt, as save_pretrained writes them)")  # fmt: skip
        vocab = TokenizerVocabulary(tokenizer)
        if PAD_ID in (vocab.eos_id, vocab.bos_id):
            # Training pads with id 0 and leaves it out of the loss: an end-of-text token of id 0
            # was never learnt, and every caption ran to the length limit.
            raise ModelNotFound(f"{path_or_id}: the tokenizer's end-of-text token has id 0, which "
                                "capsight trains as padding; GPT-2's own tokenizer has it last "
                                "(50256): give the special tokens ids after the others")  # fmt: skip
        g = gpt.config
        prefix = prefix_length if prefix_from == "pooled" else (-(-resolution // 32)) ** 2
        if g.n_positions < prefix + MAX_LENGTH + 1:
            raise ModelNotFound(f"{path_or_id}: its {g.n_positions} positions leave no room for "
                                f"the image prefix ({prefix}) and captions of up to {MAX_LENGTH} "
                                f"tokens; capsight needs at least {prefix + MAX_LENGTH + 1}")  # fmt: skip
        config = PrefixGPT2Config(
            vocab_size=g.vocab_size,
            feature_dim=feature_dim,
            prefix_from=prefix_from,
            prefix_length=prefix_length,
            n_embd=g.n_embd,
            n_layer=g.n_layer,
            n_head=g.n_head,
            n_positions=g.n_positions,
            dropout=g.resid_pdrop,
            bos_token_id=vocab.bos_id,
            eos_token_id=vocab.eos_id,
            pad_token_id=vocab.pad_id,
            pretrained=str(path_or_id),
            encoder=encoder,
            resolution=resolution,
        )
        return cls(config, gpt=gpt), vocab


def is_gpt2_folder(path_or_id: str | os.PathLike) -> bool:
    """Whether ``path_or_id`` holds Hugging Face GPT-2 weights (``save_pretrained``'s folder, or a
    hub id in the local cache) rather than a capsight checkpoint: both have a config.json."""
    return hugging_face_model_type(path_or_id) == "gpt2"


def hugging_face_model_type(path_or_id: str | os.PathLike) -> str | None:
    """The ``model_type`` of the Hugging Face model at ``path_or_id`` ("gpt2", "gpt_neo"), or
    None for a capsight checkpoint (whose config.json names an ``architecture``) or no model."""
    from capsight.hub_cache import cached_folder

    folder = cached_folder(path_or_id)
    if folder is None:
        return None
    try:
        data = json.loads((Path(folder) / "config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "architecture" in data:
        return None
    kind = data.get("model_type")
    return kind if isinstance(kind, str) and kind else None


class TokenizerVocabulary:
    """A Hugging Face tokenizer behind the ``Vocabulary`` interface (for pretrained GPT-2).

    Sentences start and end with the tokenizer's end-of-text token, as GPT-2 was trained. The
    padding id is the tokenizer's pad token, else id 0 (GPT-2's "!", which normalised captions
    never contain).
    """

    format = "hf-tokenizer/1"

    def __init__(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        eos = (
            tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.bos_token_id
        )
        if eos is None:
            raise ModelNotFound("the tokenizer has no end-of-text token; GPT-2 tokenizers do")
        self.eos_id = eos
        self.bos_id = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else eos
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    def __len__(self) -> int:
        return len(self.tokenizer)

    def encode(self, tokens: list[str], add_bos_eos: bool = False) -> list[int]:
        ids = self.tokenizer.encode(" " + " ".join(tokens), add_special_tokens=False)
        return [self.bos_id, *ids, self.eos_id] if add_bos_eos else ids

    def decode(self, ids) -> list[str]:
        kept = []
        for i in ids:
            if int(i) == self.eos_id and kept:
                break
            if int(i) not in (self.bos_id, self.eos_id, self.pad_id):
                kept.append(int(i))
        return normalize_caption(self.tokenizer.decode(kept)).split()

    def save(self, path: str | os.PathLike) -> None:
        folder = Path(path).parent / "tokenizer"
        self.tokenizer.save_pretrained(str(folder))
        Path(path).write_text(json.dumps({"format": self.format, "folder": "tokenizer"}) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> TokenizerVocabulary:
        from transformers import AutoTokenizer

        folder = Path(path).parent / json.loads(Path(path).read_text())["folder"]
        return cls(AutoTokenizer.from_pretrained(str(folder), local_files_only=True))
