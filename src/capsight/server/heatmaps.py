"""Where a model looked: attention weights or a class activation map laid over the photo.

    >>> overlay = heatmap_overlay(photo, weights, grid_size=(7, 7))   # weights: (49,)
    >>> overlay.size == photo.size
    True
    >>> cam = class_activation_map(encoded.grid[0], fc_weight, class_index=281)   # (49,)

A captioner with attention gives one weight per grid cell for every word it wrote. A captioner
without attention (``labels``) still has a spatial story: the class activation map (Zhou et al.,
2016) of its top ImageNet class, the classifier's weights dotted with every grid cell's features,
which is exact for a network ending in global average pooling and a linear layer, as
EfficientNet-Lite does.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


def class_activation_map(
    grid: torch.Tensor, fc_weight: torch.Tensor, class_index: int
) -> np.ndarray:
    """One image's grid (P, C) and the classifier weight (K, C) -> class evidence per cell (P,)."""
    cam = grid.float() @ fc_weight[class_index].float()  # (P,)
    return cam.numpy()


def heatmap_overlay(
    image: Image.Image,
    weights: np.ndarray | torch.Tensor,
    grid_size: tuple[int, int],
    alpha: float = 0.55,
    colormap: str = "inferno",
) -> Image.Image:
    """Blend ``weights`` (h*w,) as a smooth colour map over ``image`` (RGB, same size out)."""
    from matplotlib import colormaps

    h, w = grid_size
    values = np.asarray(weights, dtype=np.float32).reshape(h, w)  # (h, w)
    values = values - values.min()
    peak = float(values.max())
    values = values / peak if peak > 0 else values
    heat = Image.fromarray(values, mode="F").resize(image.size, Image.BICUBIC)
    heat_arr = np.clip(np.asarray(heat), 0.0, 1.0)  # (H, W) in [0, 1]
    coloured = colormaps[colormap](heat_arr)[..., :3]  # (H, W, 3) in [0, 1]
    base = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
    # Stronger evidence shows more colour; the rest of the photo stays readable.
    mix = alpha * heat_arr[..., None] ** 0.8  # (H, W, 1)
    out = base * (1 - mix) + coloured * mix
    return Image.fromarray((out * 255).round().astype(np.uint8))
