"""torch -> ONNX: the graphs the ONNX Runtime path runs, written from capsight's own models.

    >>> export_encoder("efficientnet-lite0", Path("lite0.onnx"))
    >>> export_show_attend_tell(Path("src/capsight/models/show-attend-tell"), Path("sat"))
    >>> export_bert(minilm_path(), Path("minilm.onnx"))

Run once per model and cached (``capsight.ort.store``); this is the only module of the package
that imports torch. Each graph is traced from the same module the torch path runs (the encoder
with BatchNorm folded in, the captioner in eval mode, the project's own BERT), so the graphs
compute what those modules compute in float32 (tests/ort compares them; the torch path decodes
captions in bfloat16 where the CPU has it).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from capsight.model_loading import keeps_random_state

OPSET = 17


@contextmanager
def _quiet():
    """The tracer warns about Python arithmetic on shapes (SAME padding); those shapes are fixed
    by the model's input resolution, so the warnings say nothing a user can act on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _export(module: nn.Module, args: tuple, path: Path, inputs: list[str], outputs: list[str],
            dynamic: dict[str, dict[int, str]]) -> None:  # fmt: skip
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            module.eval(),
            args,
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
        )


class _EncoderGraph(nn.Module):
    """Normalised pixels (B, 3, R, R) -> pooled (B, 1280), grid (B, P, 1280), probs (B, 1000)."""

    def __init__(self, net) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor):
        fmap = self.net.features(x)  # (B, 1280, h, w)
        grid = fmap.flatten(2).transpose(1, 2)  # (B, P, 1280)
        pooled = grid.mean(dim=1)  # (B, 1280)
        return pooled, grid, self.net._fc(pooled).softmax(dim=-1)


@keeps_random_state  # (the modules built to export draw initial weights)
def export_encoder(name: str, path: Path) -> None:
    from capsight.vision.efficientnet_lite import VARIANTS, fused_for_inference
    from capsight.vision.encoder import load_efficientnet_lite

    net = fused_for_inference(load_efficientnet_lite(name, "cpu"))
    r = VARIANTS[name].resolution
    _export(_EncoderGraph(net), (torch.zeros(2, 3, r, r),), path, ["pixels"],
            ["pooled", "grid", "probs"], {"pixels": {0: "batch"}, "pooled": {0: "batch"},
                                          "grid": {0: "batch"}, "probs": {0: "batch"}})  # fmt: skip


class _StartGraph(nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, grid: torch.Tensor):
        s = self.model.start(grid)
        return s["feats"], s["keys"], s["h"], s["c"]


class _StepGraph(nn.Module):
    def __init__(self, model) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens, h, c, feats, keys):
        logits, state, alpha = self.model.step(
            tokens, {"feats": feats, "keys": keys, "h": h, "c": c}
        )
        return logits.log_softmax(dim=-1), state["h"], state["c"], alpha


@keeps_random_state
def export_show_attend_tell(checkpoint: Path, start_path: Path, step_path: Path) -> None:
    """The decoder's ``start`` (grid -> state) and ``step`` (word, state -> log-probabilities,
    state, attention) as two graphs; beam search runs between them (``capsight.ort.captioner``)."""
    from capsight.captioning.checkpoint import load_checkpoint

    model, _, raw = load_checkpoint(checkpoint)
    p = (-(-int(raw.get("resolution") or 224) // 32)) ** 2
    grid = torch.zeros(2, p, model.config.feature_dim)
    _export(_StartGraph(model), (grid,), start_path, ["grid"], ["feats", "keys", "h", "c"],
            {n: {0: "batch"} for n in ("grid", "feats", "keys", "h", "c")})  # fmt: skip
    c = model.config
    args = (
        torch.zeros(2, dtype=torch.long),  # (N,)
        torch.zeros(2, c.hidden_dim),
        torch.zeros(2, c.hidden_dim),  # (N, H) each
        torch.zeros(2, p, c.projected_dim),
        torch.zeros(2, p, c.attention_dim),  # (N, P, F|A)
    )
    names = ["tokens", "h", "c", "feats", "keys"], ["logp", "h_next", "c_next", "alpha"]
    _export(_StepGraph(model), args, step_path, *names,
            {n: {0: "rows"} for n in names[0] + names[1]})  # fmt: skip


@keeps_random_state
def export_bert(folder: Path, path: Path) -> None:
    """all-MiniLM-L6-v2's BERT: ids (B, T), mask (B, T) -> last hidden state (B, T, 384)."""
    from capsight.text.bert import load_bert

    _, model = load_bert(folder, max_length=256)
    ids = torch.ones(2, 5, dtype=torch.long)
    _export(model, (ids, torch.ones_like(ids)), path, ["ids", "mask"], ["hidden"],
            {"ids": {0: "batch", 1: "tokens"}, "mask": {0: "batch", 1: "tokens"},
             "hidden": {0: "batch", 1: "tokens"}})  # fmt: skip
