"""Captioned-image corpora: photos, their human captions and the train/val/test split.

    >>> corpus = load_corpus("../shared/data/flickr8k")       # captions.json + splits.json
    >>> len(corpus.split("train")), corpus.split("train")[0].captions[0]
    (6091, 'A black dog is running after a white dog in the snow .')

Two layouts are read here:

* a plain folder: ``images/`` (or the photos next to it), ``captions.json`` mapping a file name to
  its captions, and optionally ``splits.json`` mapping ``train``/``val``/``test`` to file names;
* the official Flickr8k text files: ``Flickr8k.token.txt`` (``name.jpg#0<TAB>caption``) and
  ``Flickr_8k.trainImages.txt`` / ``devImages`` / ``testImages`` beside it, photos in
  ``Flicker8k_Dataset/`` (the archive's spelling), ``Flickr8k_Dataset/`` or ``images/``.

Other formats (Karpathy JSON, COCO annotations, Conceptual Captions) build the same
``CaptionCorpus`` in their own modules.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

from capsight.errors import InputNotFound, InvalidParameter

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class CaptionedImage:
    key: str  # unique name of the photo within its corpus (usually the file name)
    path: Path
    captions: tuple[str, ...]


@dataclass
class CaptionCorpus:
    name: str
    images: dict[str, CaptionedImage]
    splits: dict[str, list[str]] = field(default_factory=dict)  # split -> keys

    def split(self, name: str) -> list[CaptionedImage]:
        """The photos of one split; ``"all"`` is every photo of the corpus."""
        if name == "all":
            return [self.images[k] for k in sorted(self.images)]
        if name not in self.splits:
            raise InvalidParameter(
                f"corpus {self.name!r} has no {name!r} split; it has {', '.join(self.splits)}"
            )
        return [self.images[k] for k in self.splits[name]]

    def __len__(self) -> int:
        return len(self.images)


def _image_dir(root: Path, candidates: tuple[str, ...]) -> Path:
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    return root


def _random_splits(keys: list[str], val: int, test: int, seed: int = 0) -> dict[str, list[str]]:
    order = sorted(keys)
    random.Random(seed).shuffle(order)
    return {"train": order[val + test :], "val": order[:val], "test": order[val : val + test]}


def read_caption_folder(root: str | os.PathLike) -> CaptionCorpus:
    """A folder with ``captions.json`` (file -> list of captions) and optional ``splits.json``."""
    root = Path(root)
    captions_file = root / "captions.json"
    if not captions_file.is_file():
        raise InputNotFound(f"{root}: no captions.json; expected a file -> captions mapping")
    captions = json.loads(captions_file.read_text())
    image_dir = _image_dir(root, ("images",))
    images = {
        key: CaptionedImage(key, image_dir / key, tuple(caps if isinstance(caps, list) else [caps]))
        for key, caps in sorted(captions.items())
    }
    splits_file = root / "splits.json"
    if splits_file.is_file():
        raw = json.loads(splits_file.read_text())
        splits = {name: [k for k in keys if k in images] for name, keys in raw.items()}
    else:
        n = len(images)
        splits = _random_splits(list(images), val=n // 10, test=n // 10)
    return CaptionCorpus(root.name, images, splits)


def read_flickr8k_text(root: str | os.PathLike) -> CaptionCorpus:
    """The official Flickr8k text files (``Flickr8k.token.txt`` and the split lists)."""
    root = Path(root)
    token_file = root / "Flickr8k.token.txt"
    if not token_file.is_file():
        raise InputNotFound(f"{root}: no Flickr8k.token.txt; point at the Flickr8k_text folder")
    captions: dict[str, list[str]] = {}
    for line in token_file.read_text(encoding="utf-8", errors="replace").splitlines():
        if "\t" not in line:
            continue
        ref, caption = line.split("\t", 1)
        captions.setdefault(ref.split("#")[0], []).append(caption.strip())
    image_dir = _image_dir(
        root, ("Flicker8k_Dataset", "Flickr8k_Dataset", "images", "../Flicker8k_Dataset")
    )
    images = {k: CaptionedImage(k, image_dir / k, tuple(v)) for k, v in sorted(captions.items())}
    splits: dict[str, list[str]] = {}
    for split, stem in (("train", "train"), ("val", "dev"), ("test", "test")):
        list_file = root / f"Flickr_8k.{stem}Images.txt"
        if list_file.is_file():
            names = list_file.read_text().split()
            splits[split] = [n for n in names if n in images]
    if not splits:
        splits = _random_splits(list(images), val=1000, test=1000)
    return CaptionCorpus("flickr8k", images, splits)


def load_corpus(path: str | os.PathLike) -> CaptionCorpus:
    """Pick the reader from what the folder holds."""
    p = Path(path)
    if not p.exists():
        raise InputNotFound(f"{p}: no such dataset folder")
    if p.is_dir() and (p / "captions.json").is_file():
        return read_caption_folder(p)
    if p.is_dir() and (p / "Flickr8k.token.txt").is_file():
        return read_flickr8k_text(p)
    if p.is_file() and p.name == "Flickr8k.token.txt":
        return read_flickr8k_text(p.parent)
    raise InputNotFound(
        f"{p}: not a known caption dataset; expected captions.json (+ splits.json) "
        "or the Flickr8k text files"
    )
