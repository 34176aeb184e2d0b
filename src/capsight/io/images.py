"""Safe image loading: every odd-but-valid image becomes RGB, every bad file a clear error.

    >>> img = load_image("photo.jpg")  # PIL.Image in RGB, EXIF orientation applied

Handles grey, palette, alpha (composited on white), CMYK, 16-bit and EXIF-rotated images, and
refuses decompression-bomb sized images instead of exhausting memory.
"""

from __future__ import annotations

import io
import os
import struct
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from capsight.errors import CapsightError, ImageLoadError, InputNotFound, quoted

# Pillow warns above its MAX_IMAGE_PIXELS and raises above twice that; capsight refuses above
# its own, lower limit with one clear line, so Pillow's warning would only add noise to it (it
# is silenced in open_image only: Pillow's settings are the caller's, and left alone).
MAX_IMAGE_PIXELS = 64_000_000
# A large JPEG is decoded straight at a smaller scale with at least this many pixels a side:
# every model reads 288 px or less, and an 8000x6000 photo decoded whole took 144 MB (a batch
# of 32 of them, 6.8 GB).
DECODE_SIDE = 1024
# Pillow's names for a JPEG file: "MPO" is one with more pictures after the first (many phones'
# photos, an Ultra HDR gain map), which decodes and drafts as a JPEG does.
JPEG_FORMATS = ("JPEG", "MPO")
FULL_SIZE = "capsight_full_size"  # the key in a loaded image's info of its size as stored
ANIMATED = "capsight_animated"  # the key, set to its format ("GIF"), of an animation's first frame
# The photo kinds Pillow reads that a folder is searched for (named, any file Pillow reads is).
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".webp", ".bmp", ".dib", ".gif",
                  ".tif", ".tiff", ".avif", ".jp2", ".j2k", ".tga", ".ppm", ".pgm", ".pnm", ".qoi"}  # fmt: skip
# capsight caption / classify also take a phone's HEIC photos from a folder, which Pillow cannot
# read: each is refused in one line rather than passed over without a word.
IMAGE_SUFFIXES = PHOTO_SUFFIXES | {".heic", ".heif"}
PHOTO_KINDS = "JPEG, PNG, WebP, AVIF, BMP, GIF, TIFF, ..."  # PHOTO_SUFFIXES, for a message
# Names that say "video": an image command given one says where videos go.
VIDEO_SUFFIXES = {
    ".mp4",
    ".mov",
    ".m4v",
    ".mkv",
    ".webm",
    ".avi",
    ".ts",
    ".mpg",
    ".mpeg",
    ".flv",
    ".wmv",
    ".ogv",
    ".mts",  # AVCHD camcorders
    ".m2ts",
    ".3gp",  # older phones
    ".3g2",
    ".mxf",  # broadcast cameras
    ".vob",  # DVDs
}

# What Pillow's decoders raise on malformed files besides OSError (bad EXIF, broken chunks, ...).
DECODE_ERRORS = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    struct.error,
    MemoryError,
    RuntimeError,  # libavif's "Failed to decode image: ..." (a corrupt AVIF)
)


def _usual_suffix(folder: Path) -> str:
    """The commonest image or video suffix among the first files of ``folder`` (a folder of
    videos got a hint to glob '*.jpg'), ".jpg" when it has none."""
    import itertools
    from collections import Counter

    known = IMAGE_SUFFIXES | VIDEO_SUFFIXES
    try:
        with os.scandir(folder) as entries:
            found = Counter(Path(e.name).suffix.lower() for e in itertools.islice(entries, 1000)
                            if Path(e.name).suffix.lower() in known and not e.name.startswith("."))  # fmt: skip
    except OSError:
        return ".jpg"
    return found.most_common(1)[0][0] if found else ".jpg"


def no_such_file(name: str | os.PathLike) -> str:
    """The one line for a name that names no file; a URL is said to be one (Path had folded
    its "//" into "https:/example.com/a.jpg: no such file")."""
    if isinstance(name, str) and name.lower().startswith(("http://", "https://", "ftp://")):
        return f"{name}: a URL; capsight reads local files (it downloads nothing): save it first"
    try:
        link = os.path.islink(name)
    except (OSError, ValueError):
        link = False
    if link:  # (a link to itself had been "no such file", beside a file named so)
        return f"{Path(name)}: a link to nothing (its target is gone, or it leads back to itself)"
    return f"{Path(name)}: no such file"


def check_input_file(path: str | os.PathLike, empty: type[CapsightError] = InputNotFound) -> Path:
    """Return ``path`` as a Path if it is an existing, non-empty regular file; raise otherwise
    (an empty file as ``empty``: an image's is an ``ImageLoadError``, as empty bytes are)."""
    if isinstance(path, str) and not path.strip():  # Path("") is ".": "is a directory" said nothing
        raise InputNotFound("an empty file name; name a file")
    p = Path(path)
    try:
        exists = p.exists()
    # a name over the system's 255-byte limit, a folder that cannot be entered
    except OSError as exc:
        raise InputNotFound(f"{quoted(str(p))}: cannot be read ({exc.strerror})") from None
    if not exists:
        raise InputNotFound(no_such_file(path))
    if p.is_dir():
        # (the CLI takes a folder for the files in it; a Python caller names the files)
        raise InputNotFound(f"{p}: is a directory, expected a file; name the files in it, "
                            f"e.g. sorted(Path({str(p)!r}).glob('*{_usual_suffix(p)}'))")  # fmt: skip
    if not p.is_file():  # a FIFO, a socket, /dev/zero: reading could block or never end
        raise InputNotFound(f"{p}: not a regular file (a device, pipe or socket); name a file")
    if p.stat().st_size == 0:
        raise empty(f"{p}: file is empty")
    return p


def check_pixel_count(img: Image.Image, label: str, stored: tuple[int, int] | None = None) -> None:
    """ImageLoadError for an image over ``MAX_IMAGE_PIXELS`` (its header is enough to tell);
    ``stored``: the size to name, when ``img`` is a JPEG's reduced draft."""
    if img.width * img.height > MAX_IMAGE_PIXELS:
        width, height = stored or img.size
        raise ImageLoadError(
            f"{label}: {width}x{height} is too large "
            f"(over {MAX_IMAGE_PIXELS // 1_000_000} megapixels); downscale it first"
        )


_WARNINGS = threading.Lock()  # warnings.catch_warnings swaps a process-wide list


def open_image(fp: str | os.PathLike | io.BytesIO) -> Image.Image:
    """``Image.open(fp)`` without Pillow's DecompressionBombWarning (capsight refuses such an
    image itself, in one line) or its warnings about damaged EXIF data (a JPEG opening reads
    its EXIF resolution; the photo itself is fine, and the warning would name no file), leaving
    the process's warning filters as they were."""
    with _WARNINGS, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.filterwarnings("ignore", category=UserWarning, module="PIL.TiffImagePlugin")
        return Image.open(fp)


_TURNS = {  # EXIF orientation -> the transpose that sets the photo upright (as exif_transpose)
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def upright(img: Image.Image) -> Image.Image:
    """``img`` itself, or the photo turned as its EXIF orientation says, without Pillow's
    nameless warnings about damaged EXIF data. Only the EXIF parse runs under the process-wide
    warnings lock (PNG and WebP parse theirs here, JPEG in ``open_image``); the turn runs
    outside. (Not ``ImageOps.exif_transpose``: it parses the turned copy's EXIF again, outside
    any filter, and its warning reached the terminal.)"""
    with _WARNINGS, warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning, module="PIL.TiffImagePlugin")
        orientation = img.getexif().get(ExifTags.Base.Orientation, 1)
    turn = _TURNS.get(orientation) if isinstance(orientation, int) else None
    return img.transpose(turn) if turn is not None else img


def load_image(source: str | os.PathLike | bytes, name: str | None = None) -> Image.Image:
    """Load a path or raw bytes as an RGB PIL image; raise ImageLoadError for anything unusable."""
    if isinstance(source, (bytes, bytearray)):
        label = name or "image"
        if not source:
            raise ImageLoadError(f"{label}: file is empty")
        fp: object = io.BytesIO(source)
    else:
        label = name or str(source)
        fp = check_input_file(source, empty=ImageLoadError)
    try:
        with open_image(fp) as img:
            stored = img.size
            if img.format in JPEG_FORMATS:  # decoded at 1/2, 1/4 or 1/8 size where that still
                img.draft(None, (DECODE_SIDE, DECODE_SIDE))  # leaves DECODE_SIDE px on each side
            elif img.format == "JPEG2000":  # the same, by the resolution levels it stores: a flat
                # 64-megapixel one (3.7 KB) took 5 s and 0.7 GB to decode whole
                img.reduce = min(_halvings(img.size), _stored_halvings(img))
            # (after the draft: a 108-megapixel phone JPEG, decoded at 1/8 size, costs what a
            # 2-megapixel one does, and had been refused)
            check_pixel_count(img, label, stored)
            img.load()
            decoded = img.size
            rgb = to_rgb(upright(img), from_file=True)
            turned = rgb.size != decoded  # a quarter turn swaps the sides
            out = _reduced(rgb)
            # The photo's own size, upright, for callers that report it: the pixels may be a
            # draft's, or reduced.
            out.info[FULL_SIZE] = stored[::-1] if turned else stored
            # GIF, WebP, APNG, a multi-page TIFF; not a phone's JPEG with a second image in it
            # (MPO: a gain map, a depth map), which Pillow calls animated too
            if getattr(img, "is_animated", False) and img.format not in JPEG_FORMATS:
                out.info[ANIMATED] = img.format  # (capsight video reads a GIF's frames)
            return out
    except ImageLoadError:
        raise
    except UnidentifiedImageError:
        what = _what_it_is(source, fp)
        # By its bytes, or by its name where they say nothing else (a text file named
        # notes.mp4 was "a video")
        named_video = Path(label).suffix.lower() in VIDEO_SUFFIXES and what.startswith(
            "binary data"
        )
        if what == "a video" or named_video:
            raise ImageLoadError(
                f"{label}: is a video, not an image; use `capsight video` for videos"
            ) from None
        if what.endswith(" image"):  # its signature, but Pillow cannot read the rest
            raise ImageLoadError(f"{label}: starts like {what} but cannot be read (corrupt, or a "
                                 "kind Pillow does not decode); re-export it as JPEG or PNG") from None  # fmt: skip
        raise ImageLoadError(
            f"{label}: not an image file, or a format capsight cannot read (it looks like "
            f"{what}); convert it to JPEG or PNG"
        ) from None
    except Image.DecompressionBombError:  # Pillow's own bound, before capsight sees a size
        bound = round(2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6)
        raise ImageLoadError(
            f"{label}: image is too large (over {bound} megapixels as stored, Pillow's limit); "
            "downscale it first"
        ) from None
    except PermissionError:
        raise ImageLoadError(f"{label}: permission denied; make the file readable") from None
    except DECODE_ERRORS as exc:
        if "ghostscript" in str(exc).lower():  # an EPS: Pillow reads it through Ghostscript
            raise ImageLoadError(f"{label}: an EPS file, which needs Ghostscript to be read "
                                 "(apt-get install ghostscript); or convert it to PNG") from None  # fmt: skip
        if "MAX_TEXT_CHUNK" in str(exc) or "MAX_TEXT_MEMORY" in str(exc):
            # a PNG whose text metadata unpacks past Pillow's guard (1 MB a chunk): the pixels
            # may be fine, but it had read "corrupt or truncated"
            raise ImageLoadError(f"{label}: a PNG whose text metadata is too large to read (over "
                                 "Pillow's 1 MB guard); save it again without the metadata") from None  # fmt: skip
        if "truncated" in str(exc).lower():  # Pillow's "(34 bytes not processed)" of half a file
            raise ImageLoadError(f"{label}: truncated image (the file ends before its pixels do); "
                                 "re-export or re-download it") from None  # fmt: skip
        raise ImageLoadError(
            f"{label}: corrupt or truncated image ({exc or type(exc).__name__}); "
            "re-export or re-download it"
        ) from None


def _halvings(size: tuple[int, int]) -> int:
    """How many times a photo of ``size`` may be halved and keep ``DECODE_SIDE`` px on its
    shorter side (JPEG 2000 stores its resolution levels: decoding at one is ~4x less work per
    halving)."""
    halvings = 0
    while min(size) >> (halvings + 1) >= DECODE_SIDE:
        halvings += 1
    return halvings


def _stored_halvings(img: Image.Image) -> int:
    """The decomposition levels a JPEG 2000 file stores (its COD marker's), so the halvings it
    can be decoded at; 0 where they cannot be read (it is decoded whole, as before: a file of
    one level asked for a halving fails to decode)."""
    try:
        at = img.fp.tell()
        img.fp.seek(0)
        head = img.fp.read(1 << 16)
        img.fp.seek(at)
    except (AttributeError, OSError, ValueError):
        return 0
    start = head.find(b"\xff\x4f\xff\x51")  # the codestream: SOC, then SIZ
    if start < 0:
        return 0
    at, levels = start + 2, 0
    while at + 4 <= len(head) and head[at] == 0xFF:  # the main header's marker segments
        marker, length = head[at + 1], int.from_bytes(head[at + 2 : at + 4], "big")
        if marker == 0x90:  # SOT: the first tile; the main header is over
            break
        if marker == 0x52 and at + 9 < len(head):  # COD: Lcod (2), Scod (1), SGcod (4), levels
            levels = head[at + 9]
        elif marker == 0x53:  # COC: a component with levels of its own; decoded whole, safely
            return 0
        at += 2 + length
    return levels


def _reduced(img: Image.Image) -> Image.Image:
    """A photo of another kind than JPEG (which is drafted as it decodes) over twice
    ``DECODE_SIDE`` on both sides, reduced by a whole factor that leaves ``DECODE_SIDE`` px a
    side: every model reads 288 px or less, and a server kept sixteen 64-megapixel PNGs of a
    request whole (192 MB each) until it answered."""
    factor = min(img.size) // DECODE_SIDE
    # (Image.reduce by name: a JPEG 2000 image's own `reduce` is the levels it was decoded at)
    return Image.Image.reduce(img, factor) if factor >= 2 else img


def full_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) of the photo ``img`` was loaded from, upright: a large JPEG's pixels are
    decoded at a smaller scale (``DECODE_SIDE``)."""
    return tuple(img.info.get(FULL_SIZE, img.size))


def to_rgb(img: Image.Image, from_file: bool = False) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is composited onto white. A grey or
    RGB image's colour key (a PNG's tRNS) counts only ``from_file``, as decoded: Pillow keeps
    the key on an image converted to RGB, whose pixels of that colour its maker made opaque."""
    keyed = img.mode == "P" or (img.mode in ("L", "RGB", "1") and from_file)
    if keyed and "transparency" in img.info:  # a palette's, or a PNG's colour key (tRNS)
        img = img.convert("RGBA")
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _grey_to_rgb(img)
    if img.mode == "La":  # (premultiplied: Pillow converts it to LA only)
        img = img.convert("LA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _grey_to_rgb(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer or float grey -> RGB.

    Values in the format's usual range keep their meaning (0..65535 for integers, 0..1 for
    floats), so a flat dark 16-bit image stays dark; anything outside it is stretched to 0..255.
    Integer values that fill a narrower range (0..4095, 0..1023, ...: reaching its upper half,
    spanning a quarter of it) are read as the 10-, 12- or 14-bit data that cameras and scanners
    store in 16-bit files, not as a photo 16 times too dark to see.
    """
    # float32, in place: a 64-megapixel 16-bit photo took 1.7 GB in float64 copies
    arr = np.asarray(img, dtype=np.float32).copy()  # (H, W)
    np.nan_to_num(arr, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = (float(arr.min()), float(arr.max())) if arr.size else (0.0, 0.0)
    full = 1.0 if img.mode == "F" else integer_range(lo, hi)
    if 0.0 <= lo and hi <= full:
        arr *= 255.0 / full
    elif hi > lo:
        arr -= lo
        arr *= 255.0 / (hi - lo)
    else:
        arr[:] = 0.0
    np.rint(arr, out=arr)
    np.clip(arr, 0, 255, out=arr)
    grey = arr.astype(np.uint8)  # (H, W)
    return Image.fromarray(grey).convert("RGB")  # uint8 (H, W) -> "L"


def integer_range(lo: float, hi: float) -> float:
    """The full scale of integer grey values from ``lo`` to ``hi``: the top of the narrowest 8-
    to 14-bit range that they reach the upper half of and span a quarter of, else 65535. (PNG's
    sBIT chunk would say the depth, but Pillow does not read it.)"""
    for bits in (8, 10, 12, 14):
        top = float(2**bits - 1)
        if 0.0 <= lo and hi <= top:
            return top if hi > top / 2 and hi - lo >= top / 4 else 65535.0
    return 65535.0


def _what_it_is(source: str | os.PathLike | bytes, fp: object) -> str:
    """A short guess of what an unreadable file is ("text", "a PDF"), from its first bytes."""
    from capsight.io.sniff import SNIFF_BYTES, describe_content

    try:
        if isinstance(source, (bytes, bytearray)):
            head = bytes(source[:SNIFF_BYTES])
        else:
            with open(fp, "rb") as f:  # type: ignore[arg-type]
                head = f.read(SNIFF_BYTES)
    except OSError:
        return "something unreadable"
    return describe_content(head)
