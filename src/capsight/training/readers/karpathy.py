"""Karpathy split files: ``dataset_coco.json``, ``dataset_flickr8k.json``, ``dataset_flickr30k.json``.

    >>> corpus = read_karpathy_split("dataset_flickr8k.json", "Flicker8k_Dataset")
    >>> {name: len(keys) for name, keys in corpus.splits.items()}
    {'train': 6000, 'val': 1000, 'test': 1000}
    >>> coco = read_karpathy_split("dataset_coco.json", "coco")   # coco/train2014, coco/val2014
    >>> len(coco.split("train"))                                   # train + restval
    113287

Each entry of ``images`` has ``filename``, optionally ``filepath`` (COCO's ``train2014`` /
``val2014``), ``split`` (``train``, ``val``, ``test`` or COCO's ``restval``) and ``sentences``
whose ``raw`` text becomes the captions. ``restval`` joins ``train`` unless told otherwise, as
in the papers that report on the Karpathy split. Photos may sit in ``images_dir/filepath/`` or
directly in ``images_dir``; the first photo decides which.
"""

from __future__ import annotations

import os
from pathlib import Path

from capsight.errors import DatasetError
from capsight.training.datasets import CaptionCorpus, CaptionedImage, counted
from capsight.training.readers.json_files import load_json


def read_karpathy_split(
    path: str | os.PathLike, images_dir: str | os.PathLike | None = None, restval: str = "train"
) -> CaptionCorpus:
    """Read a Karpathy split JSON; photos under ``images_dir`` (default: the JSON's folder)."""
    path = Path(path)
    data = load_json(path)
    entries = data.get("images") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise DatasetError(f"{path}: not a Karpathy split file (no 'images' list of objects)")
    root = Path(images_dir) if images_dir is not None else path.parent
    use_subfolders = _uses_subfolders(root, entries)
    images: dict[str, CaptionedImage] = {}
    splits: dict[str, list[str]] = {}
    listed: dict[Path, int] = {}  # photo -> its entry's number
    uncaptioned = unsplit = 0
    for n, entry in enumerate(entries):
        filename = entry.get("filename")
        if not isinstance(filename, str) or not filename:
            raise DatasetError(f"{path}: image #{n} has no 'filename'")
        sentences = entry.get("sentences", [])
        captions = (
            tuple(c for c in (_sentence_text(path, s) for s in sentences) if c)
            if isinstance(sentences, list)
            else ()
        )
        if not captions:
            uncaptioned += 1
            continue
        subfolder = entry.get("filepath") or ""
        if not isinstance(subfolder, str):  # (2014: a TypeError joining it to a path)
            raise DatasetError(
                f"{path}: image #{n} ({filename}) has a 'filepath' that is not a folder name ({subfolder!r})"
            )
        image_path = root / subfolder / filename if use_subfolders else root / filename
        if "split" not in entry:
            unsplit += 1
        split = entry.get("split", "train")
        if not isinstance(split, str) or not split.strip():  # (null, 3, ["test"]: tracebacks)
            raise DatasetError(
                f"{path}: image #{n} ({filename}) has a 'split' that is not a name ({split!r})"
            )
        split = restval if split == "restval" else split
        if image_path in listed:  # the same photo again, not a namesake in another folder
            shown = f"{subfolder}/{filename}" if subfolder and use_subfolders else filename
            raise DatasetError(f"{path}: image #{n} ({shown}) is listed twice (as image "
                               f"#{listed[image_path]} too); fix or re-download the file")  # fmt: skip
        listed[image_path] = n
        key = filename if filename not in images else f"{subfolder}/{filename}"
        images[key] = CaptionedImage(key, image_path, captions)
        splits.setdefault(split, []).append(key)
    if not images:
        raise DatasetError(f"{path}: no image has any caption")
    name = data.get("dataset") if isinstance(data.get("dataset"), str) else None
    name = name or path.stem.removeprefix("dataset_")
    notes = [f"{counted(uncaptioned, 'image')} without a caption left out"] if uncaptioned else []
    if unsplit:  # (the test photos of a file with its splits lost would be trained on)
        notes.append(f"{unsplit} images name no 'split' and are taken as 'train'")
    return CaptionCorpus(str(name), images, splits, notes)


def _sentence_text(path: Path, sentence: object) -> str:
    """A sentence's ``raw`` text, else its ``tokens`` joined; "" when it has neither. A plain
    string is taken as the sentence (it had been dropped: "no image has any caption")."""
    if isinstance(sentence, str):
        return sentence.strip()
    if not isinstance(sentence, dict):
        return ""
    raw, tokens = sentence.get("raw"), sentence.get("tokens", [])
    if raw is not None and not isinstance(raw, str):
        raise DatasetError(f"{path}: a sentence's 'raw' should be text, got {raw!r}")
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise DatasetError(f"{path}: a sentence's 'tokens' should be a list of words")
    return (raw or " ".join(tokens)).strip()


LAYOUT_PROBES = 100  # photos looked for before the layout is taken from the first entry alone


def _uses_subfolders(root: Path, entries: list[dict]) -> bool:
    """The layout, decided once: photos in their COCO subfolders (``filepath``: val2014/...),
    or all in one folder. By the first photo found either way among the first entries that
    name a subfolder: the first alone had decided it, so with it missing, 23 photos of 24 in
    one folder were looked for in a subfolder that does not exist."""
    named = [e for e in entries if isinstance(e.get("filepath"), str) and e["filepath"]
             and isinstance(e.get("filename"), str) and e["filename"]]  # fmt: skip
    for entry in named[:LAYOUT_PROBES]:
        if (root / entry["filepath"] / entry["filename"]).exists():
            return True
        if (root / entry["filename"]).exists():
            return False
    return bool(named) and named[0] is entries[0]  # none found: as the first entry says
