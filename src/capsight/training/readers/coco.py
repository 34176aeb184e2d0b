"""COCO's official caption annotations (``captions_train2017.json``) with their image folder.

    >>> corpus = read_coco_captions("coco/annotations/captions_val2017.json")  # photos: coco/val2017
    >>> len(corpus.split("val")), len(corpus.split("val")[0].captions)
    (5000, 5)

``images`` gives each photo's ``id`` and ``file_name``, ``annotations`` one ``caption`` per
entry with its ``image_id``. The split is named after the file (``captions_val2017.json`` ->
``val``) unless given. The photos default to the folder COCO's archives create next to
``annotations/`` (``../val2017``). Photos without any caption (the test set) are left out.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from capsight.errors import DatasetError, InputNotFound
from capsight.training.datasets import CaptionCorpus, CaptionedImage, counted
from capsight.training.readers.json_files import load_json

_FILE_NAME = re.compile(r"captions_(?P<split>[a-z]+?)(?P<year>\d{4})?$")


def _default_images_dir(path: Path, stem_match: re.Match | None) -> Path:
    if stem_match is not None:
        folder = stem_match["split"] + (stem_match["year"] or "")
        for candidate in (path.parent.parent / folder, path.parent / folder):
            if candidate.is_dir():
                return candidate
    raise InputNotFound(
        f"{path}: cannot find the photo folder beside it; name the folder of the photos with "
        "--images (e.g. --images coco/val2017; images_dir in Python)"
    )


def read_coco_captions(
    path: str | os.PathLike, images_dir: str | os.PathLike | None = None, split: str | None = None
) -> CaptionCorpus:
    """Read COCO caption annotations; every photo goes to ``split`` (default: from the name)."""
    path = Path(path)
    data = load_json(path)
    if not (
        isinstance(data, dict)
        and isinstance(data.get("images"), list)
        and isinstance(data.get("annotations"), list)
    ):
        raise DatasetError(f"{path}: not a COCO caption file (needs 'images' and 'annotations')")
    first = data["annotations"][0] if data["annotations"] else None
    if (
        isinstance(first, dict)
        and "caption" not in first
        and {"bbox", "keypoints", "segmentation"} & set(first)
    ):
        raise DatasetError(f"{path}: COCO object annotations (boxes, not captions); give the "
                           "captions file, captions_*.json, from the same download")  # fmt: skip
    match = _FILE_NAME.match(path.stem)
    split = split or (match["split"] if match else "train")
    try:
        file_names = {img["id"]: img["file_name"] for img in data["images"]}
        for image_id, name in file_names.items():  # (139 or null: a TypeError when sorted)
            if not isinstance(name, str) or not name.strip():
                raise DatasetError(
                    f"{path}: image id {image_id} has a 'file_name' that is not a file name ({name!r})"
                )
        named = {}
        for image_id, name in file_names.items():  # one photo's captions would go to another
            if named.setdefault(name, image_id) != image_id:
                raise DatasetError(f"{path}: file_name {name} is listed for image ids {named[name]} and "
                                   f"{image_id}; re-download it")  # fmt: skip
        captions: dict[object, list[str]] = {}
        blank = repeated = 0
        seen: set[tuple] = set()  # (id, image id, text): an annotation given twice
        for ann in data["annotations"]:
            if not isinstance(ann["caption"], str):
                raise DatasetError(f"{path}: annotation {ann.get('id')} has no caption text "
                                   f"({ann['caption']!r})")  # fmt: skip
            text = " ".join(ann["caption"].split())  # some captions hold newlines
            if (ann.get("id"), ann["image_id"], text) in seen:  # (counted twice by CIDEr)
                repeated += 1
                continue
            seen.add((ann.get("id"), ann["image_id"], text))
            if text:
                captions.setdefault(ann["image_id"], []).append(text)
            else:
                blank += 1
        if len(file_names) < len(data["images"]):
            raise DatasetError(f"{path}: an image id is listed twice in 'images'; re-download it")
    except KeyError as exc:
        raise DatasetError(
            f"{path}: malformed COCO entry (missing {exc}); re-download it"
        ) from None
    except TypeError:  # a list where an id belongs, a string where an entry does, ...
        raise DatasetError(
            f"{path}: malformed COCO entry (a value of the wrong type); re-download it"
        ) from None
    # Captions of images the file does not list (its 'images' trimmed to make a subset, say)
    # are left out and said; one such caption had refused the whole file.
    unknown = sorted((i for i in captions if i not in file_names),  # ids in number order
                     key=lambda i: (0, i, "") if isinstance(i, int) else (1, 0, str(i)))  # fmt: skip
    orphans = sum(len(captions.pop(i)) for i in unknown)
    if unknown and not captions:
        raise DatasetError(f"{path}: its captions all refer to image ids not in 'images' "
                           f"(first: {unknown[0]}); re-download it")  # fmt: skip
    if not captions:
        raise DatasetError(f"{path}: no photo has a caption (a test-set info file?)")
    # Looked for once the file is known to be well formed: a damaged file is said as such, not
    # as a missing folder first and then, with the folder given, as damaged.
    root = Path(images_dir) if images_dir is not None else _default_images_dir(path, match)
    images = {
        file_names[i]: CaptionedImage(file_names[i], root / file_names[i], tuple(caps))
        for i, caps in sorted(captions.items(), key=lambda item: file_names[item[0]])
    }
    notes = []  # said, as the other readers say what they leave out
    if unknown:
        notes.append(f"{counted(orphans, 'caption')} of {counted(len(unknown), 'image id')} not in "
                     f"'images' left out (first: {unknown[0]})")  # fmt: skip
    if blank:
        notes.append(f"{counted(blank, 'blank caption')} left out")
    if repeated:
        notes.append(
            f"{counted(repeated, 'annotation')} given twice (the same id and caption) left out"
        )
    if len(file_names) > len(images):
        notes.append(
            f"{counted(len(file_names) - len(images), 'image')} without a caption left out"
        )
    return CaptionCorpus(
        path.stem.removeprefix("captions_") or "coco", images, {split: list(images)}, notes
    )
