"""Class names -> the ImageNet classes they cover, through the WordNet hierarchy behind ImageNet.

    >>> covered = imagenet_cover("dog")          # {151: 1.0, ..., 268: 1.0}: the 120 dog breeds
    >>> imagenet_cover("tv or monitor")          # "or" names cover the union of their parts

A class name is matched to WordNet noun synsets by their lemmas (case, plurals, hyphens and
"a"/"the" ignored); each synset covers the ImageNet classes at or below it (ancestors such as
"vehicle" cover many) or the class just above it (a hyponym such as "tabby" covers "tabby cat").
A lemma's rarer senses get a smaller weight (``sense_decay ** (rank - best rank)``), so "car" is
mostly the automobile and only a little the railway carriage. The data is the small TSV that
``capsight.classify.wordnet_export`` derives from WordNet 3.0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

_IRREGULAR_PLURALS = {
    "men": "man", "women": "woman", "children": "child", "people": "person", "mice": "mouse",
    "geese": "goose", "feet": "foot", "teeth": "tooth", "knives": "knife", "wolves": "wolf",
    "leaves": "leaf", "loaves": "loaf", "halves": "half", "shelves": "shelf", "oxen": "ox",
    "lice": "louse", "dice": "die", "cacti": "cactus", "fungi": "fungus", "octopi": "octopus",
}  # fmt: skip
_ARTICLES = re.compile(r"^(a|an|the|some)\s+")


@dataclass(frozen=True)
class Synset:
    wnid: str
    lemmas: tuple[str, ...]
    covers: tuple[int, ...]  # ImageNet indices at or below this synset (or just above a hyponym)
    gloss: str


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, Synset], dict[str, list[tuple[str, int, int]]]]:
    """(synsets by wnid, normalised lemma -> [(wnid, sense rank, lemma position)] best first)."""
    text = (
        resources.files("capsight.data")
        .joinpath("zero_shot/imagenet_wordnet.tsv")
        .read_text("utf-8")
    )
    synsets: dict[str, Synset] = {}
    by_lemma: dict[str, list[tuple[str, int]]] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        wnid, covers, lemmas, gloss = line.split("\t")
        names = []
        for position, tagged in enumerate(lemmas.split("|")):
            lemma, _, rank = tagged.rpartition(":")
            names.append(lemma)
            by_lemma.setdefault(normalise(lemma), []).append((wnid, int(rank), position))
        synsets[wnid] = Synset(wnid, tuple(names), tuple(int(i) for i in covers.split(",")), gloss)
    for senses in by_lemma.values():
        senses.sort(key=lambda s: (s[1], s[2]))
    return synsets, by_lemma


def normalise(name: str) -> str:
    """Lower case, single spaces, no hyphens/underscores/articles: the key lemmas are matched on."""
    name = re.sub(r"[\s_\-]+", " ", name.strip().lower())
    return _ARTICLES.sub("", name).strip(" .")


def _singular_forms(name: str) -> list[str]:
    words = name.split(" ")
    last = words[-1]
    forms = []
    if last in _IRREGULAR_PLURALS:
        forms.append(_IRREGULAR_PLURALS[last])
    if last.endswith("ies") and len(last) > 4:
        forms.append(last[:-3] + "y")
    if last.endswith("es") and len(last) > 3:
        forms.append(last[:-2])
    if last.endswith("s") and not last.endswith("ss") and len(last) > 3:
        forms.append(last[:-1])
    return [" ".join([*words[:-1], form]) for form in forms]


def alternatives(name: str) -> list[str]:
    """'tv or monitor' -> ['tv', 'monitor']; 'salt or pepper shaker' -> both shakers."""
    key = normalise(name)
    parts = [p.strip() for p in re.split(r"\s+or\s+|\s*/\s*", key) if p.strip()]
    if len(parts) == 2 and " " not in parts[0] and " " in parts[1]:
        # "salt or pepper shaker": the head noun of the second part is shared.
        parts[0] = parts[0] + " " + parts[1].split(" ", 1)[1]
        parts.append(key)
    return parts or [key]


def match_synsets(name: str) -> list[tuple[Synset, int, int]]:
    """The WordNet senses one name (no "or") can mean: (synset, sense rank, lemma position)."""
    synsets, by_lemma = _table()
    key = normalise(name)
    senses = by_lemma.get(key)
    if senses is None:
        senses = next((by_lemma[f] for f in _singular_forms(key) if f in by_lemma), [])
    return [(synsets[wnid], rank, position) for wnid, rank, position in senses]


def imagenet_cover(
    name: str, sense_decay: float = 0.5, alias_weight: float = 0.5
) -> dict[int, float]:
    """ImageNet index -> weight in (0, 1] for the classes a name covers; {} when it matches none.

    A sense's weight is ``sense_decay ** (rank - 1)``, times ``alias_weight`` when the name is
    not the synset's first lemma ("turtle" in "turtleneck, turtle, polo-neck"); the best sense
    of each part of the name is scaled to 1.
    """
    cover: dict[int, float] = {}
    for part in alternatives(name):
        senses = match_synsets(part)
        weights = [
            sense_decay ** (rank - 1) * (1.0 if position == 0 else alias_weight)
            for _, rank, position in senses
        ]
        for (synset, _, _), weight in zip(senses, weights, strict=False):
            weight /= max(weights)
            for index in synset.covers:
                cover[index] = max(weight, cover.get(index, 0.0))
    return cover


def synsets_by_wnid() -> dict[str, Synset]:
    return _table()[0]
