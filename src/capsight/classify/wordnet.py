"""Class names -> the ImageNet classes they cover, through the WordNet hierarchy behind ImageNet.

    >>> covered = imagenet_cover("dog")          # {151: 1.0, ..., 268: 1.0}: the 120 dog breeds
    >>> imagenet_cover("tv or monitor")          # "or" names cover the union of their parts

A class name is matched to WordNet noun synsets by their lemmas (case, plurals, hyphens and
"a"/"the" ignored); each synset covers the ImageNet classes at or below it (ancestors such as
"vehicle" cover many) or the class just above it (a hyponym such as "tabby" covers "tabby cat").
A lemma's rarer senses get a smaller weight (``sense_decay ** (rank - best rank)``), so "car" is
mostly the automobile and only a little the railway carriage. A name outside that hierarchy borrows
the classes of its nearest ancestor inside it ("deer" -> "ruminant": ox, ibex, impala, ...), at a
lower weight. The data is the small gzipped TSV that ``capsight.classify.wordnet_export`` derives
from WordNet 3.0.
"""

from __future__ import annotations

import gzip
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
_SEPARATORS = re.compile(r"[\s_\-]+")
_BRACKETS = re.compile(r"\([^)]*\)")  # "crane (wading bird)": the note is not part of the name


@dataclass(frozen=True)
class Synset:
    wnid: str
    lemmas: tuple[str, ...]
    covers: tuple[int, ...]  # ImageNet indices at or below this synset (or just above a hyponym)
    gloss: str
    hops: int = 0  # >0: outside ImageNet's hierarchy; covers are those of an ancestor this far up


_Index = dict[str, list[tuple[str, int, int]]]  # lemma key -> [(wnid, sense rank, position)]


@lru_cache(maxsize=1)
def _lines() -> tuple[list[str], list[str]]:
    """The file's (hierarchy lines, borrowed-ancestor lines); the second are parsed on demand."""
    path = resources.files("capsight.data").joinpath("zero_shot/imagenet_wordnet.tsv.gz")
    with path.open("rb") as fh:
        lines = gzip.decompress(fh.read()).decode("utf-8").splitlines()
    rows = [line for line in lines if line and not line.startswith("#")]
    split = next((i for i, line in enumerate(rows) if "\t@" in line), len(rows))
    return rows[:split], rows[split:]


def _index(lines: list[str]) -> tuple[list[tuple[str, str, tuple[str, ...], str]], _Index]:
    rows, by_lemma = [], {}
    for line in lines:
        wnid, covers, lemmas, gloss = line.split("\t")
        names = []
        for position, tagged in enumerate(lemmas.split("|")):
            lemma, _, rank = tagged.rpartition(":")
            names.append(lemma)
            by_lemma.setdefault(_lemma_key(lemma), []).append((wnid, int(rank), position))
        rows.append((wnid, covers, tuple(names), gloss))
    for senses in by_lemma.values():
        senses.sort(key=lambda s: (s[1], s[2]))
    return rows, by_lemma


@lru_cache(maxsize=1)
def _table() -> tuple[dict[str, Synset], _Index]:
    """Synsets inside ImageNet's hierarchy by wnid, and their lemma index."""
    rows, by_lemma = _index(_lines()[0])
    synsets = {
        wnid: Synset(wnid, names, tuple(int(i) for i in covers.split(",")), gloss)
        for wnid, covers, names, gloss in rows
    }
    return synsets, by_lemma


@lru_cache(maxsize=1)
def _near_table() -> tuple[dict[str, Synset], _Index]:
    """Synsets outside it that borrow a near ancestor's classes, and their lemma index."""
    inside = _table()[0]
    rows, by_lemma = _index(_lines()[1])
    synsets = {}
    for wnid, covers, names, _ in rows:
        ancestor, _, hops = covers[1:].partition(":")
        synsets[wnid] = Synset(wnid, names, inside[ancestor].covers, "", int(hops))
    return synsets, by_lemma


def normalise(name: str) -> str:
    """Lower case, single spaces, no hyphens, underscores, articles or "(notes)": the lookup key."""
    name = _SEPARATORS.sub(" ", _BRACKETS.sub(" ", name).strip().lower())
    return _ARTICLES.sub("", name).strip(" .")


def _lemma_key(lemma: str) -> str:
    """normalise() for WordNet's own lemmas (no articles), without the regex cost."""
    return lemma.lower().replace("-", " ").replace("_", " ")


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


# Names WordNet knows under another name: the breed ImageNet calls "Egyptian cat".
KNOWN_AS = {"egyptian mau": "egyptian cat"}


def _lookup_forms(key: str) -> list[str]:
    """The forms of a lookup key tried in turn: as typed, singular, then closed up ("flower
    pot" is WordNet's "flowerpot", "wine glasses" its "wineglass"). Each table is searched for
    all of them before the next: a closed-up form inside ImageNet's hierarchy wins over the
    typed form borrowing an ancestor ("pocket book", "short stop" and "shoo fly" alone)."""
    forms = [key, *_singular_forms(key)]
    return forms + [form.replace(" ", "") for form in forms if " " in form]


def match_synsets(name: str) -> list[tuple[Synset, int, int]]:
    """The WordNet senses one name (no "or") can mean: (synset, sense rank, lemma position).

    Senses inside ImageNet's hierarchy win; only a name with none of those borrows ancestors.
    """
    key = normalise(name)
    key = KNOWN_AS.get(key, key)
    for table in (_table, _near_table):  # the second is parsed only when needed
        synsets, by_lemma = table()
        senses = next((by_lemma[f] for f in _lookup_forms(key) if f in by_lemma), [])
        if senses:
            return [(synsets[wnid], rank, position) for wnid, rank, position in senses]
    return []


def imagenet_cover(
    name: str, sense_decay: float = 0.5, alias_weight: float = 0.5, hop_weight: float = 0.5
) -> dict[int, float]:
    """ImageNet index -> weight in (0, 1] for the classes a name covers; {} when it matches none.

    A sense's weight is ``sense_decay ** (rank - 1)``, times ``alias_weight`` when the name is
    not the synset's first lemma ("turtle" in "turtleneck, turtle, polo-neck"), times
    ``hop_weight ** hops`` for a sense outside ImageNet's hierarchy that borrows an ancestor's
    classes ("deer" -> "ruminant"); the best sense of each part of the name is scaled to 1.
    """
    cover: dict[int, float] = {}
    for part in alternatives(name):
        senses = match_synsets(part)
        weights = [
            sense_decay ** (rank - 1)
            * (1.0 if position == 0 else alias_weight)
            * hop_weight**synset.hops
            for synset, rank, position in senses
        ]
        for (synset, _, _), weight in zip(senses, weights, strict=False):
            weight /= max(weights)
            for index in synset.covers:
                cover[index] = max(weight, cover.get(index, 0.0))
    return cover


def synsets_by_wnid() -> dict[str, Synset]:
    return _table()[0]
