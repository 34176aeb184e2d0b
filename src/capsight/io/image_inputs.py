"""What a caller may pass as an image, checked and made RGB: paths (``str`` or
``pathlib.Path``), bytes, open binary files, PIL images or NumPy arrays (``(H, W)`` grey or
``(H, W, 3|4)``: uint8, uint16 or floats in [0, 1]), one alone or in a list. Captioning and
classification take the same.

    >>> images = image_list(["cat.jpg", pil_image], verb="classify")  # checked before models load
    >>> rgb_images(images)                                             # [PIL.Image (RGB), ...]
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, BinaryIO

from capsight.errors import ImageLoadError, InvalidParameter

if TYPE_CHECKING:
    import numpy as np
    from PIL import Image

    ImageInput = str | os.PathLike | bytes | memoryview | BinaryIO | Image.Image | np.ndarray


def _a(noun: str) -> str:
    """ "a set", "an int", "a uint8": the article for a type's name."""
    vowel = noun[:1].lower() in "aeiou" and not noun.lower().startswith(("uint", "uni", "use"))
    return f"{'an' if vowel else 'a'} {noun}"


def image_list(
    images: Sequence[ImageInput] | ImageInput, verb: str = "caption"
) -> Sequence[ImageInput]:
    """``images`` as a sequence, each item checked for its type (and a path for its file) before
    any model loads; one image alone (a common slip) becomes a list of one. ``verb`` names what
    is done with them in messages ("cannot classify a set")."""
    from PIL import Image

    one_image = (str, bytes, bytearray, memoryview, os.PathLike, Image.Image)

    if isinstance(images, one_image) or is_array(images) or is_file(images):
        return [images]
    if _is_tensor(images):  # (iterated, it had been "images[0]: cannot caption a Tensor")
        raise InvalidParameter(f"cannot {verb} a torch tensor; {TENSOR_ADVICE}")
    if not isinstance(images, Iterable):
        raise InvalidParameter(
            f"cannot {verb} {_a(type(images).__name__)}; pass a list of paths, bytes, PIL images "
            "or NumPy arrays"
        )
    if isinstance(images, (set, frozenset, dict)):  # results come back in input order: no order
        raise InvalidParameter(
            f"cannot {verb} {_a(type(images).__name__)}: it has no order to give the results in; "
            "pass a list (e.g. sorted(...))"
        )
    from capsight.io.images import check_input_file

    images = images if isinstance(images, Sequence) else list(images)
    for i, image in enumerate(images):  # before any model loads: a slip is found in no time
        where = f"images[{i}]: " if len(images) > 1 else ""
        if _is_tensor(image):
            raise InvalidParameter(f"{where}cannot {verb} a torch tensor; {TENSOR_ADVICE}")
        if not (isinstance(image, one_image) or is_array(image) or is_file(image)):
            raise InvalidParameter(
                f"{where}cannot {verb} {_a(type(image).__name__)}; pass a path, bytes, an open "
                "binary file, a PIL image or a NumPy array"
            )
        if isinstance(image, (str, os.PathLike)):
            # Missing, empty or a folder: said now, not after the photos before it are captioned.
            check_input_file(image, empty=ImageLoadError)
    return images


TENSOR_ADVICE = ("pass it as a NumPy array (H, W, 3), e.g. tensor.permute(1, 2, 0).numpy() for "
                 "one shaped (3, H, W) with values in [0, 1]")  # fmt: skip


def _is_tensor(value: object) -> bool:
    # As is_array: no import for the question. A module another thread is still importing has
    # no Tensor yet (two threads' first calls had raised AttributeError), and holds none then.
    tensor = getattr(sys.modules.get("torch"), "Tensor", None)
    return tensor is not None and isinstance(value, tensor)


def is_array(value: object) -> bool:
    # an array means NumPy is loaded; no import otherwise (nor a half-imported module's name)
    ndarray = getattr(sys.modules.get("numpy"), "ndarray", None)
    return ndarray is not None and isinstance(value, ndarray)


def rgb_images(
    images: Sequence[ImageInput], start: int = 0, size: int | None = None
) -> list[Image.Image]:
    """``images[start:start + size]`` (all from ``start`` when ``size`` is None) as RGB; an
    unusable one without a name of its own (bytes, an array, a PIL image) is named by its place
    in the list."""
    from capsight.errors import CapsightError

    out = []
    for i, image in enumerate(images[start : None if size is None else start + size], start):
        try:
            out.append(as_rgb_image(image))
        except CapsightError as exc:
            if len(images) > 1 and not isinstance(image, (str, os.PathLike)):
                message = str(exc).removeprefix("image: ")  # the generic label: its place instead
                raise type(exc)(f"images[{i}]: {message}") from None
            raise
    return out


def as_rgb_image(image: ImageInput) -> Image.Image:
    """A path, bytes or an open binary file is loaded safely (EXIF, odd modes, bombs); a PIL
    image (turned upright by its EXIF orientation when opened from a file; one made or changed
    in memory, ``.convert("RGB")`` included, has no format and is taken as it is) or a NumPy
    array (``(H, W)`` or ``(H, W, 3|4)``: uint8, uint16 or floats in [0, 1]) is made RGB,
    within the same 64-megapixel limit."""
    from PIL import Image

    from capsight.errors import ImageLoadError
    from capsight.io.images import (
        ANIMATED,
        DECODE_ERRORS,
        JPEG_FORMATS,
        check_pixel_count,
        load_image,
        to_rgb,
        upright,
    )

    if is_array(image):
        image = Image.fromarray(_pil_ready(image))
    if isinstance(image, Image.Image):
        if image.width == 0 or image.height == 0:
            raise InvalidParameter(f"cannot read an image of {image.width}x{image.height} pixels")
        # Opened straight from a file (its format known), it is turned upright as a path would
        # be; an image made or turned in memory (format None) is taken as it is.
        if getattr(image, "tile", None) and getattr(image, "fp", True) is None:  # (Pillow asserts:
            # an image used after its `with Image.open(...)` block raised a bare AssertionError)
            raise ImageLoadError("image: this PIL image cannot be read (its file was closed before "
                                 "it was read); re-open or re-export it")  # fmt: skip
        if _large_unread_jpeg(image):  # read from its file as a path is: drafted, not whole,
            return load_image(image.filename)  # and held to the limit at that size
        label = getattr(image, "filename", None) or "image"  # (its file's name, when opened)
        check_pixel_count(image, label)
        try:  # a lazily opened file is read only now: cut short, a mode Pillow cannot convert
            image.load()  # (here, where a file cut short is said to be one)
            if not image.format:  # made or turned in memory: taken as it is
                return to_rgb(image)
            rgb = to_rgb(upright(image), from_file=True)
        except DECODE_ERRORS as exc:
            raise ImageLoadError(f"{label}: this PIL image cannot be read "
                                 f"({exc or type(exc).__name__}); re-open or re-export it") from None  # fmt: skip
        if getattr(image, "is_animated", False) and image.format not in JPEG_FORMATS:
            rgb = rgb.copy() if rgb is image else rgb  # (the note is on ours, not the caller's)
            # its current frame is described, as a file's first is
            rgb.info[ANIMATED] = image.format
        return rgb
    if isinstance(image, memoryview):
        image = image.tobytes()
    if is_file(image):
        name = getattr(image, "name", None)
        label = str(name) if isinstance(name, (str, os.PathLike)) else None
        if isinstance(image, io.TextIOBase) or "b" not in getattr(image, "mode", "b"):
            raise InvalidParameter(f"{label or 'file'}: open it in binary mode ('rb'), not as text")
        try:
            if getattr(image, "seekable", lambda: False)():  # from its start, as Image.open reads
                image.seek(0)  # (one read before, or passed twice, had been "file is empty")
            data = image.read()
        except (OSError, ValueError) as exc:  # closed, or not readable
            raise InvalidParameter(f"{label or 'file'}: cannot read it ({exc})") from None
        if not isinstance(data, (bytes, bytearray)):
            raise InvalidParameter(f"{label or 'file'}: open it in binary mode ('rb'), not as text")
        return load_image(bytes(data), name=label)
    if isinstance(image, (str, bytes, bytearray, os.PathLike)):
        return load_image(image)
    raise InvalidParameter(
        f"cannot read {_a(type(image).__name__)} as an image; pass a path, bytes, an open binary "
        "file, a PIL image or a NumPy array"
    )


def _pil_ready(array: np.ndarray) -> np.ndarray:
    """An (H, W) or (H, W, 3|4) array as ``Image.fromarray`` takes it: uint8 as it is, uint16
    (either byte order) read from its own range as a 16-bit file is (12-bit data is not dark;
    grey later, colour here), floats in [0, 1] (as skimage and torchvision make them) scaled by
    255; anything else is refused."""
    import numpy as np

    from capsight.io.images import integer_range

    shaped = array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))
    hint = ""
    if shaped and array.dtype == np.uint8:
        return array
    if shaped and array.dtype.kind == "u" and array.dtype.itemsize == 2:  # either byte order
        array = array.astype(np.uint16)  # (">u2", as FITS and some TIFF readers give, refused)
        if array.ndim == 2:
            return array
        # colour as grey is: 8- to 14-bit data in 16 bits read from its own range (0-255 in a
        # uint16 array had been divided by 257 into "a blank image")
        low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
        return (
            (array.astype(np.float32) * (255.0 / integer_range(low, high))).round().astype(np.uint8)
        )
    if shaped and array.dtype.kind == "f" and array.size:
        if not np.isfinite(array).all():
            hint = "; it holds NaN or infinite values"
        elif 0.0 <= float(array.min()) and float(array.max()) <= 1.0:
            return (array.astype(np.float32) * 255.0).round().astype(np.uint8)
        else:
            low, high = float(array.min()), float(array.max())
            hint = (f"; its values run from {low:g} to {high:g}, where floats must be in [0, 1]"
                    + (" (for 0-255, cast to uint8)" if 0 <= low and high <= 255 else ""))  # fmt: skip
    raise InvalidParameter(
        f"cannot read {_a(str(array.dtype))} array of shape {array.shape} as an image; pass pixels "
        f"shaped (H, W) or (H, W, 3) or (H, W, 4): uint8, uint16 or floats in [0, 1]{hint}"
    )


def is_file(value: object) -> bool:
    """An open file or file-like object (``io.BytesIO``, ``open(path, "rb")``): it has read()."""
    return callable(getattr(value, "read", None)) and not isinstance(value, (str, bytes, bytearray))


def _large_unread_jpeg(image) -> bool:
    """A JPEG opened from a named file with ``Image.open`` and not read yet, over twice
    ``DECODE_SIDE`` on both sides: read from its file, it decodes at a fraction of its size (an
    8000x6000 photo read whole took 144 MB), and the caller's image stays unread, its size as
    it was (``Image.draft`` would have shrunk it in place)."""
    from capsight.io.images import DECODE_SIDE, JPEG_FORMATS

    return (
        getattr(image, "format", None) in JPEG_FORMATS
        and bool(getattr(image, "tile", None))
        and getattr(image, "fp", None) is not None
        and isinstance(getattr(image, "filename", None), str)
        and os.path.isfile(image.filename)
        and min(image.size) > 2 * DECODE_SIDE
    )
