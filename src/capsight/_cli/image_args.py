"""The image arguments of ``capsight caption`` and ``classify``: files, and folders of photos.

    $ capsight caption photos/ > captions.txt     # every image under photos/, in name order

A folder stands for the image files under it (recursively, by suffix: JPEG, PNG, WebP, BMP,
GIF, TIFF; hidden files and folders skipped), sorted by path. A folder with none is reported
on its own line and the other arguments still run, as an unreadable file is.
"""

from __future__ import annotations

from pathlib import Path


def expand_image_args(args: list[str]) -> tuple[list[str], list[str]]:
    """(image paths to read, one-line problems): folders expanded, files kept as given."""
    from capsight.io.images import IMAGE_SUFFIXES

    paths, problems = [], []
    for arg in args:
        folder = Path(arg)
        if not folder.is_dir():
            paths.append(arg)  # a file, or a missing path that reading will report
            continue
        found = sorted(
            str(f) for f in folder.rglob("*")
            if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
            and not any(part.startswith(".") for part in f.relative_to(folder).parts)
        )  # fmt: skip
        if found:
            paths += found
        else:
            kinds = ", ".join(sorted(s.lstrip(".") for s in IMAGE_SUFFIXES))
            problems.append(f"{arg}: a folder with no images in it (looked for {kinds})")
    return paths, problems
