"""The image arguments of ``capsight caption`` and ``classify``: files, and folders of photos.

    $ capsight caption photos/ > captions.txt     # every image under photos/, in name order

``-`` reads one image from standard input (``cat photo.jpg | capsight caption -``). A folder
stands for the image files under it, sorted by path: recursively, by suffix
(``IMAGE_SUFFIXES``: JPEG, PNG, WebP, AVIF, BMP, GIF, TIFF and a few more, and HEIC, which is
refused in one line; a file of no suffix by its first bytes), hidden files and folders skipped,
links to folders followed (each folder read once: a link back up, or a second link to a folder
already read, is passed over). A folder with none, a sub-folder that cannot be read, or a path that does not exist is reported on its
own line before any work, and the other arguments still run, as an unreadable file is.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

from capsight.io.images import IMAGE_SUFFIXES, PHOTO_KINDS, no_such_file


def names_a_folder(arg: str) -> bool:
    """True for an existing folder; False for anything else, a name too long to be a path too."""
    try:
        return Path(arg).is_dir()
    except OSError:  # e.g. inside a folder that cannot be entered, or a 300-character name
        return False


STDIN = "-"  # an image piped in: cat photo.jpg | capsight caption -
STDIN_NAME = "standard input"
MAX_STDIN_BYTES = 256 * 2**20


def expand_image_args(args: list[str]) -> tuple[list[str], list[str]]:
    """(image paths to read, one-line problems): folders expanded, files kept as given, and
    ``-`` (where no file has that name) for an image piped in (``image_from_arg`` reads it)."""
    paths, problems = [], []
    for arg in args:
        if not arg.strip():  # Path("") is ".": an unset shell variable captioned the folder
            problems.append(
                f"{arg!r}: an empty image name; name a file or a folder (. for this one)"
            )
            continue
        if arg == STDIN and not os.path.lexists(arg):
            if sys.stdin is None or sys.stdin.isatty():
                problems.append(f"-: {STDIN_NAME} is a terminal; pipe an image in "
                                "(cat photo.jpg | capsight caption -)")  # fmt: skip
            else:
                paths.append(STDIN)  # (named twice: read once, as any image)
            continue
        if not names_a_folder(arg):  # (one that cannot be entered: reading will say so)
            try:
                missing = not Path(arg).exists()
            except OSError:
                missing = False  # reading will say why
            if missing:  # said now, before any photo is read or model loaded
                problems.append(no_such_file(arg))
            else:
                paths.append(arg)
            continue
        before = len(problems)
        found = images_under(Path(arg), problems)
        if found:
            paths += found
        elif len(problems) == before:  # nothing unreadable: simply no images there
            problems.append(
                f"{arg}: a folder with no images in it (looked for {PHOTO_KINDS} files)"
            )
    return _once_each(paths), problems


def _once_each(paths: list[str]) -> list[str]:
    """An image named twice (itself and in its folder, or as ``a/../a/x.jpg``) is read once,
    where it first came; ``-`` too. Links stay apart: a folder of links to one photo reads it
    under each name."""
    seen, out = set(), []
    for path in paths:
        try:
            key = os.path.normpath(os.path.abspath(path)) if path != STDIN else STDIN
        except (OSError, ValueError):
            key = path
        if key not in seen:
            seen.add(key)
            out.append(path)
    return out


def images_under(folder: Path, problems: list[str]) -> list[str]:
    """The image files under ``folder``, sorted; a sub-folder that cannot be read is one line
    in ``problems`` (a link to a folder is followed, once: no loop is possible)."""
    return files_under(folder, IMAGE_SUFFIXES, problems, _photo_without_suffix)


def files_under(
    folder: Path,
    suffixes: set[str],
    problems: list[str],
    sniff: Callable[[bytes], str | None] | None = None,
) -> list[str]:
    """The files under ``folder`` whose suffix is one of ``suffixes``, sorted (as images_under),
    and, given ``sniff``, the files of no suffix whose first bytes it knows (a photo saved as
    ``IMG_0001``: it had been left out without a word)."""

    def unreadable(error: OSError) -> None:
        problems.append(f"{error.filename}: cannot read this folder ({error.strerror}); skipped")

    found = []
    # An album linked in (photos/2019 -> /mnt/old/2019) had been passed over without a word.
    # Each folder is entered once, by its device and inode, and a link to a folder that holds
    # this one (`up -> ..`) is not followed: it would read everything beside the folder asked.
    entered: set[tuple[int, int]] = set()
    top = os.path.realpath(folder)
    for root, dirs, files in os.walk(folder, onerror=unreadable, followlinks=True):
        try:
            seen = os.stat(root)
        except OSError:  # gone since it was listed: nothing to read
            dirs[:] = []
            continue
        if (seen.st_dev, seen.st_ino) in entered:
            dirs[:] = []
            continue
        entered.add((seen.st_dev, seen.st_ino))
        here = os.path.realpath(root)
        dirs[:] = [d for d in sorted(dirs) if not d.startswith(".")  # hidden: not entered
                   and not _links_up(os.path.join(root, d), here, top)]  # fmt: skip
        for name in files:
            path = Path(root, name)
            if name.startswith("."):
                continue
            if path.suffix.lower() not in suffixes and not (
                sniff is not None and not path.suffix and _starts_like(path, sniff)
            ):
                continue
            try:
                if path.is_file():
                    found.append(str(path))
                elif path.is_symlink() and not path.exists():
                    problems.append(f"{path}: a link to nothing (its target is gone); skipped")
            except OSError as exc:  # a folder that can be listed but not entered
                problems.append(f"{path}: cannot read it ({exc.strerror}); skipped")
    return sorted(found)


def _holds(outer: str, inner: str) -> bool:
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


def _links_up(path: str, here: str, top: str) -> bool:
    """Whether ``path`` is a link to a folder that holds ``here`` or ``top`` (real paths)."""
    if not os.path.islink(path):
        return False
    target = os.path.realpath(path)
    return _holds(target, here) or _holds(target, top)


# What a file of no suffix must start as to count as a photo: the kinds whose signature is long
# enough not to be text by chance ("BM" or "P1" begin many a plain-text file).
_SUFFIXLESS_KINDS = {"jpeg", "png", "gif", "webp", "tiff", "heif"}


def _photo_without_suffix(head: bytes) -> str | None:
    from capsight.io.sniff import sniff_image

    kind = sniff_image(head)
    return kind if kind in _SUFFIXLESS_KINDS else None


def _starts_like(path: Path, sniff: Callable[[bytes], str | None]) -> bool:
    """Whether a regular file's first bytes are what ``sniff`` knows (a named pipe or a device
    is never opened: reading one would wait forever)."""
    try:
        if not path.is_file():
            return False
        with open(path, "rb") as f:
            return sniff(f.read(64)) is not None
    except OSError:  # unreadable: left out, as a file of another kind is
        return False


def image_from_arg(path: str):
    """The RGB image an argument names (``as_rgb_image``), ``-`` read from standard input."""
    from capsight.errors import ImageLoadError
    from capsight.io.image_inputs import as_rgb_image
    from capsight.io.images import load_image

    if path != STDIN or os.path.lexists(path):
        return as_rgb_image(path)
    data = sys.stdin.buffer.read(MAX_STDIN_BYTES + 1)
    if len(data) > MAX_STDIN_BYTES:
        raise ImageLoadError(f"{STDIN_NAME}: over {MAX_STDIN_BYTES // 2**20} MB; save the image to "
                             "a file and name it")  # fmt: skip
    return load_image(data, STDIN_NAME)


def read_images(paths: list[str]) -> tuple[list[str], list, dict[str, str]]:
    """(the names of the paths that could be read, their images, the error of each that could
    not): a batch's photos as ``caption`` and ``classify`` read them, each failure said on
    stderr at once, one line."""
    from capsight._cli.main import error_line
    from capsight.errors import CapsightError

    names, images, failed = [], [], {}
    for path in paths:
        try:
            images.append(image_from_arg(path))
            names.append(path)
        except CapsightError as exc:
            print(error_line(str(exc)), file=sys.stderr)
            failed[path] = str(exc)
    return names, images, failed
