"""``classify.classifier.predict``: how photos of many sizes are batched."""

from __future__ import annotations

import torch
from PIL import Image
from torch import nn

from capsight.classify.classifier import predict


class _Recording(nn.Module):
    """Scores each photo by its width; records each forward's batch length."""

    labels = ["narrow", "wide"]

    def __init__(self) -> None:
        super().__init__()
        self.lengths: list[int] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.lengths.append(len(images))
        wide = torch.full((len(images),), float(images.shape[-1] > 40))
        return torch.stack([1 - wide, wide], dim=1)


def test_photos_of_many_sizes_go_in_five_batch_lengths_and_come_back_in_order():
    """Every batch length from 1 to 16 (the remainders of a folder's many photo sizes) had
    grown the heap with each new one: 400 ImageNet photos, 2.3 GB and rising."""
    sizes = [(64, 30)] * 20 + [(30, 30)] * 7 + [(50, 31)]
    order = [
        sizes[i] for i in torch.randperm(len(sizes), generator=torch.Generator().manual_seed(0))
    ]
    classifier = _Recording()
    probs = predict(classifier, [Image.new("RGB", size) for size in order])
    assert sorted(classifier.lengths, reverse=True) == [16, 4, 4, 2, 1, 1]  # 20, 7 and 1
    assert probs[:, 1].tolist() == [float(w > 40) for w, _ in order]
