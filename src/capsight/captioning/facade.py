"""Caption images in one call: load safely, encode once, caption in batches.

    >>> from capsight.captioning.facade import caption, describe_images
    >>> caption(["cat.jpg", "dog.png"])[0].text                  # the photo default
    'a little girl is playing on a bed'
    >>> caption(["cat.jpg"], model="labels")[0].text
    'a photo of an Egyptian cat'
    >>> d = describe_images(["cat.jpg"])[0]       # caption + top ImageNet labels + model name
    >>> d.caption.text, d.labels[0], d.model
    ('a little girl is playing on a bed', ('Egyptian cat', 0.8105), 'show-attend-tell-pair')
    >>> encode_images(["cat.jpg"]).grid.shape      # what the captioner reads: (B, 49, 1280)
    >>> word_vectors(d.caption.tokens).shape       # the captioner's word vectors: (T, 512)

Images may be paths (``str`` or ``pathlib.Path``), raw bytes, PIL images or NumPy arrays
(``(H, W)`` grey or ``(H, W, 3|4)`` RGB(A): uint8, uint16 or floats in [0, 1]), as a list or
one alone (``capsight.io.image_inputs``). Every bad input raises a ``CapsightError``
subclass: ``InputNotFound`` or ``ImageLoadError`` naming the file, ``InvalidParameter`` for an
argument of the wrong type or range, ``ModelNotFound`` for an unknown ``model``. Memory stays bounded: images are loaded, encoded and captioned ``batch_size`` at a
time. Nothing is printed; ``decoding`` given to ``labels`` (which decodes nothing) is a
``DecodingIgnored`` warning.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from capsight.errors import DecodingIgnored, InvalidParameter, check_count
from capsight.io.image_inputs import image_list, rgb_images
from capsight.model_loading import loaded_once
from capsight.warning_origin import callers_level

if TYPE_CHECKING:
    import torch

    from capsight.captioning.base import Captioner, CaptionResult, DecodingOptions
    from capsight.io.image_inputs import ImageInput
    from capsight.vision.encoder import EncodedImages, ImageEncoder


@dataclass
class ImageDescription:
    """What capsight says about one image: the caption, the encoder's top classes, the model."""

    caption: CaptionResult
    labels: list[tuple[str, float]] = field(default_factory=list)  # (ImageNet name, probability)
    model: str = ""  # the captioner that wrote the caption ("default" resolved)
    blank: bool = False  # one flat colour: captioned "a blank image" (capsight.vision.blank)
    note: str | None = None  # why the caption is a guess (an image too small: small_image_note)

    def to_dict(self) -> dict:
        """Plain JSON types (``json.dumps`` takes it as it is)."""
        return {"caption": self.caption.to_dict(), "labels": [list(pair) for pair in self.labels],
                "model": self.model, "blank": self.blank, "note": self.note}  # fmt: skip


TINY_SIDE = 32  # px: below this on a side, an image is too small to show what a caption says


def small_image_note(width: int, height: int) -> str | None:
    """The note for an image with a side under ``TINY_SIDE`` px (an icon, a strip): the
    encoder reads it stretched to 224 px, so its caption is a guess. None for any other."""
    size = tiny_size(width, height)
    if size is None:
        return None
    return f"{size} (under {TINY_SIDE}): too small to show what the caption says; it is a guess"


def tiny_size(width: int, height: int) -> str | None:
    """ "only 20x20 px", "4000x10 px, only 10 on its short side" for a picture with a side under
    ``TINY_SIDE`` px (what makes its caption a guess); None for any other."""
    if min(width, height) >= TINY_SIDE:
        return None
    if width == height:
        return f"only {width}x{height} px"
    return (
        f"{width}x{height} px, only {min(width, height)} on its short side"  # (not "only 4000x10")
    )


FIRST_FRAME_NOTE = "an animation (or a file of several pages): only its first frame is described"
GIF_FRAMES = "; capsight video reads every frame of a GIF"  # (not a WebP's, an APNG's or a TIFF's)


def _caption_note(pil, blank: bool) -> str | None:
    """Why the caption may not say what is in the image: too small to show it, or only the
    first frame of an animation (a GIF that fades in was "a blank image" without a word)."""
    from capsight.io.images import ANIMATED

    notes = [] if blank else [small_image_note(*pil.size)]
    animated = pil.info.get(ANIMATED)
    notes.append(FIRST_FRAME_NOTE + GIF_FRAMES * (animated == "GIF") if animated else None)
    return "; ".join(n for n in notes if n) or None


def caption(
    images: Sequence[ImageInput] | ImageInput,
    model: str | os.PathLike = "default",
    decoding: DecodingOptions | None = None,
    batch_size: int = 32,
) -> list[CaptionResult]:
    """Caption ``images``: one ``CaptionResult`` per image, in input order.

    ``images``: paths, bytes, PIL images or NumPy arrays (one alone counts as a list of one).
    A PIL image as ``Image.open`` gives it is turned upright by its EXIF orientation, as a path
    is; one made or changed in memory (``.convert("RGB")``, ``.resize``) is taken as it is, as
    Pillow no longer marks it as a file's: pass the path, or ``ImageOps.exif_transpose(img)``.
    ``model``: a name from ``capsight models`` ("default": the best installed) or a checkpoint
    folder. ``decoding``: ``DecodingOptions`` (beam width, sampling with ``temperature``,
    ``top_k``, ``top_p``, ``num_captions``, ``seed``); None uses the captioner's own. A seeded
    sample gives an image the same captions on every call, whatever shares its batch.
    Each result has ``text``, ``score`` (mean log-probability per word, None for ``labels``),
    ``tokens``, ``attention`` ((len(tokens), 49) for Show, Attend and Tell, else None) and
    ``alternatives`` (the other distinct captions when ``num_captions > 1``). A blank image (one
    flat colour) gets ``"a blank image"``, no score, attention, alternatives or labels.
    ``batch_size``: images loaded, encoded and captioned at a time (memory stays bounded).
    Raises ``InputNotFound``, ``ImageLoadError``, ``InvalidParameter`` or ``ModelNotFound``.
    """
    return [d.caption for d in describe_images(images, model, decoding, batch_size)]


def describe_images(
    images: Sequence[ImageInput] | ImageInput,
    model: str | os.PathLike = "default",
    decoding: DecodingOptions | None = None,
    batch_size: int = 32,
    num_labels: int = 3,
) -> list[ImageDescription]:
    """Caption each image (as ``caption``, same arguments) and name its ImageNet classes: one
    ``ImageDescription`` per image, in input order, with ``caption`` (a ``CaptionResult``),
    ``labels`` (the ``num_labels`` most likely classes as ``(name, probability)``, most likely
    first; all 1,000 at most, none for 0) and ``model`` (the captioner's name, "default"
    resolved). A blank image (one flat colour: ``vision.blank``) is captioned ``"a blank image"``
    with no score, whatever the captioner would have invented. ``note`` says when the caption
    is a guess (an image under 32 px on a side), else None. Raises as ``caption`` does."""
    from capsight.vision.blank import is_blank

    batch_size = check_count("batch size", batch_size, 1)
    num_labels = check_count("num_labels", num_labels, 0)
    images = image_list(images)
    check_decoding(decoding)  # wrong types are refused before any model loads
    captioner, model_name = resolve_captioner(model)
    if decoding is not None and not captioner.decodes:  # labels ("default" if nothing is trained)
        warnings.warn(f"the {model_name} model ignores decoding options (beam, sampling, "
                      "num_captions, ...): it names the encoder's top ImageNet classes",
                      DecodingIgnored, callers_level())  # fmt: skip
    decoding = decoding_for(captioner, decoding)
    encoder = cached_encoder(captioner.encoder_name)
    out: list[ImageDescription] = []
    for start in range(0, len(images), batch_size):
        pils = rgb_images(images, start, batch_size)
        encoded = encoder.encode(pils, batch_size=batch_size)
        results = captioner.caption(encoded, decoding)  # blank ones too: one batch, warm kernels
        k = min(num_labels, encoded.probs.shape[-1])  # (B, 1000): no more than every class
        labels = encoder.top_classes(encoded.probs, k=k) if k > 0 else None
        for i, (pil, result) in enumerate(zip(pils, results, strict=True)):
            blank = is_blank(pil)
            result = _blank_result() if blank else result
            # (a flat colour's ImageNet classes are noise: hook 0.013, kite 0.012)
            note = _caption_note(pil, blank)
            out.append(ImageDescription(result, labels[i] if labels and not blank else [],
                                        model_name, blank, note))  # fmt: skip
    return out


def _blank_result() -> CaptionResult:
    from capsight.captioning.base import CaptionResult
    from capsight.vision.blank import BLANK_CAPTION

    return CaptionResult(BLANK_CAPTION, tokens=BLANK_CAPTION.split())


def encode_images(
    images: Sequence[ImageInput] | ImageInput,
    model: str | os.PathLike = "default",
    batch_size: int = 32,
) -> EncodedImages:
    """The CNN features of ``images`` from the shared encoder that ``model`` reads
    (EfficientNet-Lite0 for the shipped captioners): ``pooled`` (B, 1280), ``grid`` (B, P, 1280)
    (P = 49: the 7x7 grid; 81 for Lite2), ``probs`` (B, 1000) ImageNet probabilities,
    ``grid_size``. Values are after ReLU6, so in [0, 6], computed in bfloat16 where the CPU has
    it. A captioner with encoder weights of its own reads other features, made inside from these
    (the pair's first member, its last blocks fine-tuned) or from its own encoder (the second,
    on Lite2): these are what a single captioner on the shared encoder reads.
    Images are loaded and encoded ``batch_size`` at a time; the result keeps no images."""
    batch_size = check_count("batch size", batch_size, 1)
    images = image_list(images, "encode")
    captioner, _ = resolve_captioner(model)
    encoder = cached_encoder(captioner.encoder_name)
    if not images:  # as caption([]) is []: no rows, the shapes of the rest kept
        return encoder.encode([])
    parts = []
    for start in range(0, len(images), batch_size):
        pils = rgb_images(images, start, batch_size)
        parts.append(encoder.encode(pils, batch_size=batch_size))
    return _joined(parts)


def _joined(parts: list[EncodedImages]) -> EncodedImages:
    import torch

    from capsight.vision.encoder import EncodedImages

    hidden = [p.hidden for p in parts]
    return EncodedImages(
        pooled=torch.cat([p.pooled for p in parts]),
        grid=torch.cat([p.grid for p in parts]),
        probs=torch.cat([p.probs for p in parts]),
        grid_size=parts[0].grid_size,
        hidden=torch.cat(hidden) if all(h is not None for h in hidden) else None,
    )


def check_decoding(decoding: object) -> None:
    """InvalidParameter unless ``decoding`` is None or a DecodingOptions (a dict was an
    AttributeError deep in decoding)."""
    from capsight.captioning.options import DecodingOptions

    if decoding is not None and not isinstance(decoding, DecodingOptions):
        raise InvalidParameter(
            f"decoding must be a DecodingOptions, not {type(decoding).__name__!r}; "
            'e.g. DecodingOptions(method="sample", temperature=0.8, seed=1)'
        )


def word_vectors(words: Iterable[str], model: str | os.PathLike = "default") -> torch.Tensor:
    """The captioner's own input vector of each word, (len(words), E) (E = 512 for the shipped
    Show, Attend and Tell and Show and Tell, 256 for ``prefix-gpt2``; an ensemble gives its
    first member's); a word outside its vocabulary gets
    ``<unk>``'s. Pass a caption's ``tokens``; words are lower-cased first, as the training
    captions were ("Dog" is "dog"). ``labels`` has no word vectors. (The HTTP API's
    ``embedded_words`` are another thing: the caption's MiniLM word pieces.)"""
    if not isinstance(words, str | bytes) and isinstance(words, Iterable):
        words = list(words)  # (a generator, as caption and encode_images take one)
    if (
        isinstance(words, str | bytes)
        or not isinstance(words, list)
        or not all(isinstance(w, str) for w in words)
    ):
        raise InvalidParameter("word vectors need a list of words, e.g. a caption's tokens")
    captioner, name = resolve_captioner(model)
    if not hasattr(captioner, "word_vectors"):
        raise InvalidParameter(f"captioner {name!r} has no word vectors; use a trained captioner")
    return captioner.word_vectors(list(words))


def decoding_for(captioner: Captioner, decoding: DecodingOptions | None) -> DecodingOptions | None:
    """``decoding`` as ``captioner`` runs it: the fields its caller named (a flag or an API
    field set) laid on the captioner's own decoding. None stays None: the captioner's own, and
    None for a captioner that decodes nothing (``labels``)."""
    check_decoding(decoding)
    if decoding is None or not captioner.decodes:
        return None
    resolved = decoding.over(getattr(captioner, "default_decoding", None))
    if unread := decoding.unread(resolved):  # as the CLI and the HTTP API refuse them
        # Only the options given are explained: an HTTP caller had read of a length_penalty
        # its endpoint does not take.
        readers = "; ".join(f"{name}: {READ_BY.get(name, '?')}" for name in unread)
        raise InvalidParameter(
            f"{METHOD_NAMES[resolved.method]} does not use {' or '.join(unread)}; leave "
            f"{'it' if len(unread) == 1 else 'them'} out, or choose a method that does "
            f"({readers})"
        )
    return resolved


METHOD_NAMES = {"greedy": "greedy decoding", "beam": "beam search", "sample": "sampling",
                "narrowing": "the narrowing schedule"}  # fmt: skip
# The methods that read each option (DecodingOptions.in_force).
READ_BY = {"temperature": "method='sample'", "top_p": "method='sample'",
           "top_k": "method='sample' or 'narrowing'", "seed": "method='sample' or 'narrowing'",
           "beam_width": "method='beam'", "length_penalty": "method='beam'"}  # fmt: skip


def resolve_captioner(model: str | os.PathLike = "default") -> tuple[Captioner, str]:
    """The captioner for ``model`` (a name or a checkpoint folder) and its real name
    ("default" resolved)."""
    from capsight.captioning.base import default_captioner_name

    if isinstance(model, os.PathLike):
        model = os.fspath(model)
    if not isinstance(model, str):
        raise InvalidParameter(
            f"model must be a captioner name or a folder, not {type(model).__name__!r}"
        )
    name = default_captioner_name() if model == "default" else model
    return _cached_captioner(name), name


@loaded_once(maxsize=8)
def _cached_captioner(name: str) -> Captioner:
    from capsight.captioning.base import create_captioner

    return create_captioner(name)


@loaded_once(maxsize=8)
def cached_encoder(
    name: str = "efficientnet-lite0", weights: str = "", reduced_precision: bool = True
) -> ImageEncoder:
    """One encoder per name (and weights file) per process (building it loads weights), for
    captioning: in bfloat16 where the CPU computes it natively, as the captioners decode
    (``capsight.precision``). ``weights``: a captioner's own fine-tuned encoder;
    ``reduced_precision=False``: float32, as a video analysis's novelty encoder runs."""
    from capsight.vision.encoder import ImageEncoder

    return ImageEncoder(name, reduced_precision=reduced_precision, weights=weights)
