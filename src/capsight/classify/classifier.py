"""The classifier every engine builds: an ``nn.Module`` from pixels to class probabilities.

    >>> clf = create_engine("offline").build(parse_classes("cat,dog,car"))
    >>> probs = clf(images)                # images (N, 3, H, W) RGB in [0, 1], any H and W
    >>> probs.shape, clf.labels            # (N, 3), ['cat', 'dog', 'car']; rows sum to 1
    >>> top_labels(clf, [load_image("cat.jpg")], k=2)[0]
    [('cat', 0.995), ('dog', 0.003)]

The module resizes inside itself, so the exported file (TorchScript or ``torch.export``) takes
photos of any size and needs only ``torch``. capsight classifies through the very same module,
which is why an exported classifier gives the same scores as ``capsight classify``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from capsight.errors import InvalidParameter, check_count

if TYPE_CHECKING:
    from capsight.io.image_inputs import ImageInput


def resize_images(images: torch.Tensor, size: int, mode: str) -> torch.Tensor:
    """(N, 3, H, W) -> (N, 3, size, size): the whole frame, squashed (no crop), antialiased; a
    float16 or bfloat16 batch is resized in float32 (torch's antialiased resize has neither on
    the CPU, so a classifier cast with ``.half()`` or ``.bfloat16()`` had failed there)."""
    reduced = images.dtype == torch.float16 or images.dtype == torch.bfloat16
    source = images.float() if reduced else images
    out = F.interpolate(source, size=[size, size], mode=mode, antialias=True, align_corners=False)
    return out.to(images.dtype) if reduced else out


class ImageClassifier(nn.Module):
    """Base for built classifiers: ``forward(images (N,3,H,W) in [0,1]) -> (N, C) probabilities``.

    Every classifier an engine builds borrows the engine's image network (one copy in memory,
    however many class lists), named in ``borrowed``. ``.train()`` leaves a borrowed network in
    eval mode (its BatchNorm statistics would change every other classifier's scores), and a
    ``.to()``, ``.half()``, ``.double()`` ... that changes it gives this classifier a copy of its
    own first (a cast had changed every classifier and broken ``capsight.classify_images``).
    Other changes to the network's weights in place (``load_state_dict``, an optimizer step)
    reach every classifier that borrows it: ``copy.deepcopy`` a classifier to own it all."""

    labels: list[str]
    engine: str

    def __init__(self, labels: list[str], engine: str, borrowed: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.labels = list(labels)
        self.engine = engine
        self.borrowed = borrowed

    def describe(self) -> dict:
        return {"engine": self.engine, "classes": len(self.labels)}

    def _lent(self) -> list[str]:
        """The borrowed networks this classifier still shares (a deep copy owns its own)."""
        lenders = getattr(self, "_lenders", None)
        if lenders is None:  # set once the networks are attributes (after __init__)
            import weakref

            lenders = {name: weakref.ref(getattr(self, name)) for name in self.borrowed}
            object.__setattr__(self, "_lenders", lenders)
        return [name for name, ref in lenders.items() if getattr(self, name) is ref()]

    def train(self, mode: bool = True) -> ImageClassifier:
        super().train(mode)
        for name in self._lent():
            getattr(self, name).eval()
        return self

    def _apply(self, fn, recurse: bool = True):  # noqa: ANN001 (nn.Module's signature)
        import copy

        for name in self._lent():
            network = getattr(self, name)
            probe = next(network.parameters(), None)
            if probe is not None and fn(probe) is probe:  # .to("cpu") on the CPU: no change
                continue
            setattr(self, name, copy.deepcopy(network))
        return super()._apply(fn, recurse)


def image_to_tensor(image: Image.Image) -> torch.Tensor:
    """RGB PIL image -> (1, 3, H, W) float in [0, 1], at its own size."""
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()  # (1, 3, H, W)


@torch.no_grad()
def predict(classifier: nn.Module, images: Sequence[ImageInput] | ImageInput) -> torch.Tensor:
    """Class probabilities (N, C) for images of any sizes (forwards of 16, 8, 4, 2 or 1 photos
    of one size):
    paths, bytes, PIL images or NumPy arrays, as ``capsight.caption`` takes them."""
    from capsight.io.image_inputs import image_list, rgb_images

    images = rgb_images(image_list(images, "classify"))
    # A classifier its user moved or cast (.to("cuda"), .double()) takes photos where it is.
    weight = next((p for p in classifier.parameters() if p.is_floating_point()), None)
    out: list[torch.Tensor | None] = [None] * len(images)
    by_size: dict[tuple[int, int], list[int]] = {}
    for i, image in enumerate(images):
        by_size.setdefault(image.size, []).append(i)
    # Batches of 16, 8, 4, 2 or 1 photos of one size: five batch lengths in all. Every length
    # from 1 to 16 (the remainders of a folder's many photo sizes) had grown the heap with each
    # one, as glibc could not reuse the blocks freed: 400 ImageNet photos, 2.3 GB, and rising.
    batches = []
    for indices in by_size.values():
        start = 0
        for length in (16, 8, 4, 2, 1):
            while len(indices) - start >= length:
                batches.append(indices[start : start + length])
                start += length
    for chunk in batches:
        batch = torch.cat([image_to_tensor(images[i]) for i in chunk])  # (B, 3, H, W)
        if weight is not None:
            batch = batch.to(weight.device, weight.dtype)
        probs = classifier(batch).float().cpu()  # (B, C)
        for i, row in zip(chunk, probs, strict=False):
            out[i] = row
    if not images:
        return torch.zeros(0, len(classifier.labels))
    return torch.stack(out)  # type: ignore[arg-type]


@dataclass
class Prediction:
    """One image's result: the top classes with scores (all scores sum to 1 over the classes)."""

    image: str
    top: list[tuple[str, float]]
    scores: list[float] = field(default_factory=list, repr=False)  # one per class, in labels' order
    labels: list[str] = field(default_factory=list, repr=False)  # the classes, in scores' order
    # why the scores may say little (a blank image, an icon, an animation's first frame)
    note: str | None = None

    def score_of(self, label: str) -> float:
        """The score of class ``label`` (as ``classes`` named it); InvalidParameter for another."""
        try:
            return self.scores[self.labels.index(label)]
        except ValueError:
            raise InvalidParameter(f"{label!r} is not one of the classes ({len(self.labels)} of "
                                   "them, in .labels)") from None  # fmt: skip

    @property
    def stands_out(self) -> bool:
        """Whether the top class is a clear winner (``capsight.classify.standout``): the scores
        are shares of the classes asked about, so a photo of none of them still has a top one."""
        from capsight.classify.standout import stands_out

        return stands_out(self.scores or [score for _, score in self.top])

    def to_dict(self) -> dict:
        """JSON-ready: the image, its top classes as ``{"label", "score"}``, ``stands_out``,
        and ``note`` where there is one."""
        out = {
            "image": self.image,
            "top": [{"label": label, "score": round(score, 6)} for label, score in self.top],
            "stands_out": self.stands_out,
        }
        return {**out, "note": self.note} if self.note else out


def top_k(probs: torch.Tensor, labels: list[str], k: int) -> list[list[tuple[str, float]]]:
    k = min(k, len(labels))
    # A stable sort: tied classes in the order they were listed (topk keeps no order for ties)
    values, indices = torch.sort(probs, dim=-1, descending=True, stable=True)
    values, indices = values[:, :k], indices[:, :k]  # (N, k)
    return [
        [(labels[i], float(v)) for v, i in zip(vs.tolist(), ix.tolist(), strict=False)]
        for vs, ix in zip(values, indices, strict=False)
    ]


def top_labels(
    classifier: nn.Module, images: list[Image.Image], k: int = 5
) -> list[list[tuple[str, float]]]:
    """Each image's ``k`` likeliest classes as (name, probability), likeliest first."""
    k = check_count("k", k, 1)  # 0 gave empty lists, -1 torch's "selected index k out of range"
    return top_k(predict(classifier, images), list(classifier.labels), k)
