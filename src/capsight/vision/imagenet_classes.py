"""The 1,000 ImageNet-1k class names, in the index order of the classifier's output.

``data/imagenet_classes.txt`` holds one class per line with its WordNet synonyms separated by
", " (e.g. ``tench, Tinca tinca``); the readable name is the first synonym.
``data/imagenet_wnids.txt`` holds the WordNet ids in the same order (``n01440764`` ...).

    >>> imagenet_class_names()[285], imagenet_wnids()[285]
    ('Egyptian cat', 'n02124075')
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=1)
def imagenet_synonyms() -> list[list[str]]:
    text = resources.files("capsight.data").joinpath("imagenet_classes.txt").read_text("utf-8")
    rows = [line.split(", ") for line in text.splitlines() if line.strip()]
    assert len(rows) == 1000, f"imagenet_classes.txt has {len(rows)} rows, expected 1000"
    return rows


@lru_cache(maxsize=1)
def imagenet_class_names() -> list[str]:
    return [synonyms[0] for synonyms in imagenet_synonyms()]


@lru_cache(maxsize=1)
def imagenet_wnids() -> list[str]:
    """The WordNet synset id of each class, e.g. ``n02124075`` for index 285 (Egyptian cat)."""
    text = resources.files("capsight.data").joinpath("imagenet_wnids.txt").read_text("utf-8")
    wnids = text.split()
    assert len(wnids) == 1000, f"imagenet_wnids.txt has {len(wnids)} rows, expected 1000"
    return wnids
