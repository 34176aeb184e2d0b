"""EfficientNet-Lite on ONNX Runtime: photos -> pooled vector, grid and class probabilities.

    >>> enc = OrtImageEncoder.load("efficientnet-lite0")     # exports the graph the first time
    >>> out = enc.encode(images)
    >>> out.pooled.shape, out.grid.shape, out.probs.shape     # NumPy arrays
    ((B, 1280), (B, 49, 1280), (B, 1000))

The same preprocessing (``capsight.vision.pixels``) and network as
``capsight.vision.encoder.ImageEncoder`` (BatchNorm folded in), in float32.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from capsight.ort.store import open_graphs
from capsight.vision.imagenet_classes import imagenet_class_names
from capsight.vision.pixels import normalised_pixels

# EfficientNet-Lite's input side per variant (capsight.vision.efficientnet_lite.VARIANTS, which
# imports torch).
RESOLUTIONS = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260}
# Images per run: on one core, small batches keep the feature maps in cache (11-12 ms per photo
# at 1-4, 13-16 ms at 16-32, on this project's 2-core machine).
_CHUNK = 4


@dataclass
class ArrayEncoding:
    """``EncodedImages``' fields as NumPy arrays, for B images."""

    pooled: np.ndarray  # (B, 1280)
    grid: np.ndarray  # (B, P, 1280)
    probs: np.ndarray  # (B, 1000)

    def __len__(self) -> int:
        return len(self.pooled)


def encoder_weights(name: str) -> Path:
    """The weights file of the installed package (raises ModelNotFound without it)."""
    from capsight.vision.weights import efficientnet_weights_path

    return Path(efficientnet_weights_path(name))


def encoder_graphs(name: str) -> tuple[list[str], list[Path]]:
    """The graph names of encoder ``name`` and the files they are exported from."""
    return [name], [encoder_weights(name)]


class OrtImageEncoder:
    def __init__(self, name: str, graph_session) -> None:
        self.name = name
        self.resolution = RESOLUTIONS[name]
        self._session = graph_session

    @classmethod
    def load(cls, name: str, report: Callable[[str], None] | None = None) -> OrtImageEncoder:
        def build(paths: list[Path]) -> None:
            from capsight.ort.export import export_encoder

            export_encoder(name, paths[0])

        return cls(name, *open_graphs(*encoder_graphs(name), build, report))

    def encode(self, images: list[Image.Image]) -> ArrayEncoding:
        parts = [self._session.run(None, {"pixels": normalised_pixels(images[i : i + _CHUNK], self.resolution)})
                 for i in range(0, len(images), _CHUNK)]  # fmt: skip
        if not parts:
            return ArrayEncoding(*(np.zeros((0, *shape), np.float32) for shape in self._shapes()))
        return ArrayEncoding(*(np.concatenate(outputs) for outputs in zip(*parts, strict=True)))

    def _shapes(self) -> list[tuple[int, ...]]:
        side = -(-self.resolution // 32)  # five stride-2 stages with SAME padding
        return [(1280,), (side * side, 1280), (1000,)]

    @staticmethod
    def top_classes(probs: np.ndarray, k: int = 5) -> list[list[tuple[str, float]]]:
        """(B, 1000) probabilities -> for each image, the k most likely (readable name, prob)."""
        names = imagenet_class_names()
        order = np.argsort(-probs, axis=-1, kind="stable")[:, :k]  # (B, k)
        return [
            [(names[i], round(float(p[i]), 4)) for i in row]
            for p, row in zip(probs, order, strict=True)
        ]
