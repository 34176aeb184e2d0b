"""Caption datasets in their public formats, each read into a ``CaptionCorpus``.

    >>> corpus = read_corpus("../shared/data/flickr8k")                       # folder layout
    >>> corpus = read_corpus("dataset_flickr8k.json", "Flicker8k_Dataset")    # Karpathy split
    >>> corpus = read_corpus("annotations/captions_val2017.json")             # COCO official
    >>> corpus = read_corpus("Flickr8k_text/Flickr8k.token.txt")              # Flickr8k text files
    >>> corpus = read_corpus("Validation_GCC-1.1.0-Validation.tsv", "cache/cc")  # Conceptual Captions
    >>> corpus.split("test")[0]
    CaptionedImage(key='...jpg', path=PosixPath('...'), captions=('A dog ...', ...))

``read_corpus`` tells the format from the file: a folder or ``captions.json`` (file -> captions,
with an optional ``splits.json``), ``Flickr8k.token.txt``, a Karpathy ``dataset_*.json``, COCO
caption annotations, or a Conceptual Captions ``.tsv`` (photos from the fetch cache). The plain
folder and Flickr8k text readers live in :mod:`capsight.training.datasets`; the record types
``CaptionedImage`` / ``CaptionCorpus`` too.
"""

from __future__ import annotations

import os
import unicodedata
from dataclasses import replace
from pathlib import Path

from capsight.errors import DatasetError, InputNotFound
from capsight.training.datasets import (
    EMPTY_CAPTIONS,
    CaptionCorpus,
    CaptionedImage,
    caption_strings,
    counted,
    draw_splits,
    has_file,
    load_corpus,
    read_caption_folder,
    read_flickr8k_text,
)
from capsight.training.readers.coco import read_coco_captions
from capsight.training.readers.json_files import load_json
from capsight.training.readers.karpathy import read_karpathy_split

__all__ = [
    "CaptionCorpus",
    "CaptionedImage",
    "FetchReport",
    "fetch_conceptual_captions",
    "read_coco_captions",
    "read_conceptual_captions",
    "read_corpus",
    "read_karpathy_split",
]

# The Conceptual Captions names load on first use, so that `python -m
# capsight.training.readers.conceptual_captions` (the fetcher) runs without runpy warning that
# the package had imported the module already.
_CONCEPTUAL = ("FetchReport", "fetch_conceptual_captions", "read_conceptual_captions")


def __getattr__(name: str):
    if name in _CONCEPTUAL:
        from capsight.training.readers import conceptual_captions

        return getattr(conceptual_captions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _in_folder(corpus: CaptionCorpus, images_dir: Path, dataset_dir: Path) -> CaptionCorpus:
    if images_dir.resolve() == dataset_dir.resolve():
        # The dataset folder itself: its layout already finds the photos (in images/ or beside).
        return corpus
    images = {k: replace(img, path=images_dir / k) for k, img in corpus.images.items()}
    return CaptionCorpus(corpus.name, images, corpus.splits, corpus.notes)


def _caption_mapping(path: Path, data: dict, images_dir: Path | None) -> CaptionCorpus:
    # A file -> captions mapping not named captions.json: no splits file goes with it.
    root = images_dir or path.parent
    images = {}
    for key, value in sorted(data.items()):
        captions = caption_strings(path, key, value)
        if captions:
            images[key] = CaptionedImage(key, root / key, captions)
    # Split by a hash of each name, as a folder's captions.json without splits.json is (eval
    # finds a test split).
    return draw_splits(CaptionCorpus(path.stem, images, {}))


def read_corpus(
    path: str | os.PathLike, images_dir: str | os.PathLike | None = None
) -> CaptionCorpus:
    """Read a caption dataset, telling its format from ``path``; photos in ``images_dir``.
    Captions without a word the tokeniser keeps are left out, in every format alike
    (``with_words_only``)."""
    return with_unicode_twins(with_words_only(_read_corpus(Path(path), images_dir), Path(path)))


def with_unicode_twins(corpus: CaptionCorpus) -> CaptionCorpus:
    """``corpus`` with each photo whose file is not found under its name found under the other
    Unicode form of it: "café.jpg" composed (NFC, as most captions files write it) against
    decomposed (NFD, as macOS names files), which look alike and had been "no such file"."""
    moved = {}
    for key, image in corpus.images.items():
        name = image.path.name
        if name.isascii() or has_file(image.path):
            continue
        for form in ("NFC", "NFD"):
            twin = image.path.with_name(unicodedata.normalize(form, name))
            if twin.name != name and has_file(twin):
                moved[key] = replace(image, path=twin)
                break
    if not moved:
        return corpus
    return CaptionCorpus(corpus.name, {**corpus.images, **moved}, corpus.splits, corpus.notes)


def with_words_only(corpus: CaptionCorpus, source: Path) -> CaptionCorpus:
    """``corpus`` without the captions that tokenise to nothing (blank, emoji or punctuation
    only, or in a script the tokeniser drops: it keeps a-z and 0-9, accents stripped), and
    without the photos left with none; the notes say how many went. Kept, they trained as empty
    sentences and, as the only references of a photo, crashed the CIDEr scorer."""
    from capsight.captioning.vocabulary import tokenize

    images, dropped, bare = {}, 0, []
    for key, image in corpus.images.items():
        kept = tuple(c for c in image.captions if tokenize(c))
        dropped += len(image.captions) - len(kept)
        if kept:
            images[key] = (
                image if len(kept) == len(image.captions) else replace(image, captions=kept)
            )
        else:
            bare.append(key)
    if not dropped:
        return corpus
    if not images:
        raise DatasetError(
            f"{source}: no caption has a word capsight's tokeniser keeps (a-z and 0-9, accents "
            "stripped): they are blank, emoji or punctuation only, or in another script "
            "(Cyrillic, Greek, Chinese, ...), which is not supported"
        )
    notes = [*corpus.notes, f"{source.name}: {counted(dropped, 'caption')} with no word left out "
             "(blank, emoji or punctuation only, or not in Latin letters)"]  # fmt: skip
    if bare:
        notes.append(f"{source.name}: {counted(len(bare), 'photo')} with no such caption left out "
                     f"(first: {bare[0]})")  # fmt: skip
    splits = {name: [k for k in keys if k in images] for name, keys in corpus.splits.items()}
    return CaptionCorpus(corpus.name, images, splits, notes)


def _read_corpus(path: Path, images_dir: str | os.PathLike | None) -> CaptionCorpus:
    folder = Path(images_dir) if images_dir is not None else None
    if not path.exists():
        raise InputNotFound(f"{path}: no such caption file or dataset folder")
    if path.is_dir():
        corpus = load_corpus(path)
        return _in_folder(corpus, folder, path) if folder else corpus
    if path.name == "Flickr8k.token.txt":
        corpus = read_flickr8k_text(path.parent)
        return _in_folder(corpus, folder, path.parent) if folder else corpus
    if path.suffix.lower() == ".tsv":
        if folder is None:
            raise InputNotFound(
                f"{path}: pass the folder of its fetched photos with --images (fetch them with "
                f"python -m capsight.training.readers.conceptual_captions {path} DIR)"
            )
        from capsight.training.readers.conceptual_captions import read_conceptual_captions

        return read_conceptual_captions(path, folder)
    if path.suffix.lower() != ".json":
        raise DatasetError(
            f"{path}: unknown caption format; expected captions.json, a Karpathy dataset_*.json, "
            "COCO captions_*.json, Flickr8k.token.txt or a Conceptual Captions .tsv"
        )
    data = load_json(path)
    if isinstance(data, dict) and "annotations" in data and "images" in data:
        return read_coco_captions(path, folder)
    if isinstance(data, dict) and isinstance(data.get("images"), list):
        first = data["images"][0] if data["images"] else None
        if isinstance(first, dict) and "file_name" in first and "filename" not in first:
            # COCO's image_info_test2017.json: its photos, no captions (Karpathy says "filename")
            raise DatasetError(f"{path}: COCO image information without captions; give a captions "
                               "file (captions_*.json, or a Karpathy dataset_*.json)")  # fmt: skip
        return read_karpathy_split(path, folder)
    if isinstance(data, dict) and "images" in data and not isinstance(data["images"], (str, list)):
        # {"images": {...}} is no photo named "images": a Karpathy file of the wrong shape
        raise DatasetError(f"{path}: 'images' should be a list of photo entries (a Karpathy "
                           f"dataset_*.json), not {type(data['images']).__name__!r}")  # fmt: skip
    if isinstance(data, dict) and data:
        if path.name == "captions.json":
            corpus = read_caption_folder(path.parent)
            return _in_folder(corpus, folder, path.parent) if folder else corpus
        if path.name == "splits.json":  # it maps splits to photos: read as captions, it finds none
            raise DatasetError(f"{path}: the split lists, not the captions; give the captions.json "
                               "beside it (or the dataset folder)")  # fmt: skip
        # {"dataset": "x"}: a photo "dataset"?
        if path.name.startswith("dataset_") and "dataset" in data:
            raise DatasetError(f"{path}: not a Karpathy split file (no 'images' list of photo "
                               "entries); fix or re-download it")  # fmt: skip
        return _caption_mapping(path, data, folder)
    if data == {}:
        raise DatasetError(f"{path}: {EMPTY_CAPTIONS}")
    raise DatasetError(f"{path}: JSON of an unknown caption format")
