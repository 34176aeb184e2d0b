"""all-MiniLM-L6-v2 sentence embeddings on ONNX Runtime (``minilm`` without torch).

    >>> OrtMiniLM.load().embed(["a dog on a beach", "a cat"]).shape
    (2, 384)

The graph is the project's own BERT (``capsight.text.bert``) exported once; tokenising, mean
pooling over real tokens and L2 normalisation are ``capsight.text.embedders.MiniLMEmbedder``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from capsight.ort.store import open_graphs
from capsight.text.embedders import max_seq_length, mean_pooled, minilm_path, sentence_rows


def minilm_graphs(folder: Path) -> tuple[list[str], list[Path]]:
    """The graph names of MiniLM (in ``folder``) and the files they are exported from."""
    return ["minilm"], [folder / "model.safetensors", folder / "config.json"]


class OrtMiniLM:
    name = "minilm"
    dim = 384

    def __init__(self, folder: Path, graph_session) -> None:
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=max_seq_length(folder))
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self._session = graph_session

    @classmethod
    def load(cls, report: Callable[[str], None] | None = None) -> OrtMiniLM:
        folder = minilm_path()

        def build(paths: list[Path]) -> None:
            from capsight.ort.export import export_bert

            export_bert(folder, paths[0])

        return cls(folder, *open_graphs(*minilm_graphs(folder), build, report))

    def embed(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        out = []
        for i in range(0, len(texts), batch_size):
            encodings = self.tokenizer.encode_batch(texts[i : i + batch_size])
            ids = np.array([e.ids for e in encodings], np.int64)  # (B, T)
            mask = np.array([e.attention_mask for e in encodings], np.int64)  # (B, T)
            (hidden,) = self._session.run(None, {"ids": ids, "mask": mask})  # (B, T, 384)
            out.append(mean_pooled(hidden, mask))  # (B, 384)
        return sentence_rows(out, texts, self.dim)
