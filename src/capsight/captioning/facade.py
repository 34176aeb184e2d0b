"""Caption images in one call: load safely, encode once, caption in batches.

    >>> from capsight.captioning.facade import caption, describe_images
    >>> caption(["cat.jpg", "dog.png"])[0].text
    'a photo of an Egyptian cat'
    >>> d = describe_images(["cat.jpg"])[0]       # caption + top ImageNet labels + model name
    >>> d.caption.text, d.labels[0], d.model
    ('a photo of an Egyptian cat', ('Egyptian cat', 0.77), 'labels')

Images may be paths, raw bytes or PIL images. Every bad file raises a ``CapsightError`` subclass
(``InputNotFound``, ``ImageLoadError``) naming the file; ``model`` unknown raises ``ModelNotFound``.
Memory stays bounded: images are loaded, encoded and captioned ``batch_size`` at a time.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from capsight.errors import InvalidParameter

if TYPE_CHECKING:
    from PIL import Image

    from capsight.captioning.base import Captioner, CaptionResult, DecodingOptions
    from capsight.vision.encoder import ImageEncoder


@dataclass
class ImageDescription:
    """What capsight says about one image: the caption, the encoder's top classes, the model."""

    caption: CaptionResult
    labels: list[tuple[str, float]] = field(default_factory=list)  # (ImageNet name, probability)
    model: str = ""  # the captioner that wrote the caption ("default" resolved)


def caption(
    images: Sequence[str | os.PathLike | bytes | Image.Image],
    model: str = "default",
    decoding: DecodingOptions | None = None,
    batch_size: int = 32,
) -> list[CaptionResult]:
    """One ``CaptionResult`` per image, in input order."""
    return [d.caption for d in describe_images(images, model, decoding, batch_size)]


def describe_images(
    images: Sequence[str | os.PathLike | bytes | Image.Image],
    model: str = "default",
    decoding: DecodingOptions | None = None,
    batch_size: int = 32,
    num_labels: int = 3,
) -> list[ImageDescription]:
    """Caption each image and attach its ``num_labels`` most likely ImageNet classes."""
    if batch_size < 1:
        raise InvalidParameter(f"batch size must be >= 1, got {batch_size}")
    if isinstance(images, (str, bytes, os.PathLike)):
        images = [images]  # a single path is a common slip; treat it as a list of one
    captioner, model_name = resolve_captioner(model)
    decoding = decoding_for(captioner, decoding)
    encoder = cached_encoder(captioner.encoder_name)
    out: list[ImageDescription] = []
    for start in range(0, len(images), batch_size):
        pils = [as_rgb_image(x) for x in images[start : start + batch_size]]
        encoded = encoder.encode(pils, batch_size=batch_size)
        results = captioner.caption(encoded, decoding)
        labels = encoder.top_classes(encoded.probs, k=num_labels) if num_labels > 0 else None
        for i, result in enumerate(results):
            out.append(ImageDescription(result, labels[i] if labels else [], model_name))
    return out


def as_rgb_image(image: str | os.PathLike | bytes | Image.Image) -> Image.Image:
    """A path or bytes is loaded safely (EXIF, odd modes, bombs); a PIL image is made RGB."""
    from PIL import Image

    from capsight.io.images import load_image, to_rgb

    if isinstance(image, Image.Image):
        return to_rgb(image)
    if isinstance(image, (str, bytes, bytearray, os.PathLike)):
        return load_image(image)
    raise InvalidParameter(
        f"cannot caption a {type(image).__name__}; pass a path, bytes or a PIL image"
    )


def decoding_for(captioner: Captioner, decoding: DecodingOptions | None) -> DecodingOptions | None:
    """``decoding`` as ``captioner`` runs it: partial options (a flag or an API field set)
    completed from the captioner's own decoding. None stays None: the captioner's own."""
    if decoding is None:
        return None
    return decoding.over(getattr(captioner, "default_decoding", None))


def resolve_captioner(model: str = "default") -> tuple[Captioner, str]:
    """The captioner for ``model`` and its real name ("default" resolved)."""
    from capsight.captioning.base import default_captioner_name

    name = default_captioner_name() if model == "default" else model
    return _cached_captioner(name), name


@lru_cache(maxsize=8)
def _cached_captioner(name: str) -> Captioner:
    from capsight.captioning.base import create_captioner

    return create_captioner(name)


@lru_cache(maxsize=8)
def cached_encoder(name: str = "efficientnet-lite0", weights: str = "") -> ImageEncoder:
    """One encoder per name (and weights file) per process (building it loads weights), for
    captioning: in bfloat16 where the CPU computes it natively, as the captioners decode
    (``capsight.precision``). ``weights``: a captioner's own fine-tuned encoder."""
    from capsight.vision.encoder import ImageEncoder

    return ImageEncoder(name, reduced_precision=True, weights=weights)
