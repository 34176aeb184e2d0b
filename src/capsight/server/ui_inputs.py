"""What the web page's handlers receive from an upload box, checked into one-line messages.

The page's photo boxes hand their handlers Gradio's raw upload (``preprocess=False``), so that
a file that is not a photo is refused here in the API's words ("notes.jpg: not an image (it
looks like text); ...") instead of by Gradio's decoder, whose error names its own temp paths.

    >>> image = photo_from_upload({"path": "/tmp/gradio/…/cat.jpg", "orig_name": "cat.jpg"})
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr

from capsight.errors import CapsightError
from capsight.io.sniff import SNIFF_BYTES
from capsight.server.uploads import display_name, upload_refusal

if TYPE_CHECKING:
    from PIL import Image


def user_error(message: str, duration: float | None = 10) -> gr.Error:
    """A message for the page's toast; the server log gets no traceback for a user's mistake.

    ``duration=None`` keeps the toast until it is closed: for a failure the user may not be
    watching for (a video job that ran for minutes), which a 10 s toast would hide for good.
    """
    return gr.Error(message, duration=duration, print_exception=False)


def upload_path_and_name(upload, fallback: str) -> tuple[str, str]:
    """(server path, the name the user knows) of a Gradio upload: a raw payload or a path.

    A payload (what a browser sends) must name a file in Gradio's upload folder: a client
    naming any other path on the server is refused, never read. A plain path comes from Python
    callers (tests), not from the page.
    """
    if isinstance(upload, dict):
        path = str(upload.get("path") or "")
        name = display_name(upload.get("orig_name") or Path(path).name, fallback)
        if not _in_upload_folder(path):
            raise user_error(f"{name}: not an upload from this page; upload the file again")
        return path, name
    return str(upload), display_name(Path(str(upload)).name, fallback)


def _in_upload_folder(path: str) -> bool:
    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder()).resolve()
    return bool(path) and Path(path).resolve().is_relative_to(folder)


def checked_upload(upload, wanted: str, missing: str) -> tuple[str, str, bytes]:
    """(path, name, first bytes) of an upload that looks like a ``wanted`` ("image"/"video")."""
    if not upload:
        raise user_error(missing)
    path, name = upload_path_and_name(upload, wanted)
    try:
        with open(path, "rb") as f:
            head = f.read(SNIFF_BYTES)
    except OSError:
        raise user_error(f"{name}: the upload could not be read; upload it again") from None
    refusal = upload_refusal(name, head, wanted)
    if refusal:
        raise user_error(refusal)
    return path, name, head


# What a page's <img> shows; Pillow reads more (TIFF, PPM, JPEG 2000, ...), which the photo
# boxes would show as a broken image.
BROWSER_FORMATS = {"JPEG", "MPO", "PNG", "GIF", "WEBP", "BMP", "ICO"}


def browser_copy(upload) -> str | None:
    """A PNG copy, beside it, of an uploaded photo a browser cannot show, for the photo box to
    show (and to be described: the same pixels), or None. A file that is not a photo is left to
    the checks that name what is wrong with it."""
    from PIL import Image, UnidentifiedImageError

    from capsight.io.images import open_image

    path, _ = upload_path_and_name(upload, "image")
    try:
        with open_image(path) as img:
            if img.format in BROWSER_FORMATS:
                return None
    except (OSError, UnidentifiedImageError, Image.DecompressionBombError):
        return None
    copy = Path(path).with_suffix(".png")  # in Gradio's own folder for this upload
    partial = copy.with_name(f".{copy.name}.{os.getpid()}.{threading.get_ident()}")
    photo_from_upload(upload).save(partial, format="PNG", compress_level=1)
    os.replace(partial, copy)  # whole: two users uploading the same file share its folder
    return str(copy)


def slider_value(value, bounds: tuple[float, float], what: str, whole: bool = False) -> float | int:
    """A slider's value, checked against its ``bounds`` (an int when ``whole``): the page
    clamps a typed number to the slider's range (``static/ui.js``), but an API client sends
    what it likes, so "Temperature must be between 0.2 and 2, got 5"."""
    low, high = bounds
    span = f"{'a whole number ' if whole else ''}between {low:g} and {high:g}"
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise user_error(f"{what} must be {span}; type one or use the slider") from None
    if not (math.isfinite(number) and low <= number <= high) or (whole and not number.is_integer()):
        raise user_error(f"{what} must be {span}, got {number:g}")
    return int(number) if whole else number


def photo_from_upload(upload) -> Image.Image:
    """The uploaded photo as RGB; every way it can be unusable becomes a one-line gr.Error."""
    from capsight.io.images import load_image

    path, name, _ = checked_upload(upload, "image", "Upload or paste a photo first.")
    try:
        return load_image(Path(path).read_bytes(), name=name)
    except (CapsightError, OSError) as exc:
        raise user_error(str(exc)) from None
