"""Class lists: a built-in set by name, a text file (one class a line) or "a,b,c".

    >>> parse_classes("cat, dog, car").labels
    ('cat', 'dog', 'car')
    >>> len(parse_classes("imagenet").labels), parse_classes("dog-breeds").labels[0]
    (1000, 'Chihuahua')

Built-in sets live in ``capsight/data/classes/<name>.txt`` ('#' starts a comment); ``imagenet``
is the 1,000 ImageNet-1k classes themselves, and a classifier built from it is exactly the
encoder's own ImageNet classifier (each label maps to its own index).
"""

from __future__ import annotations

import difflib
import os
import unicodedata
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from capsight.errors import InputNotFound, InvalidParameter, check_decoded, quoted

BUILTIN_SETS = (
    "imagenet",
    "everyday",
    "dog-breeds",
    "cat-breeds",
    "foods",
    "scenes",
    "professions",
)


@dataclass(frozen=True)
class ClassList:
    labels: tuple[str, ...]
    # For labels that *are* ImageNet classes (the built-in "imagenet" set): their indices.
    imagenet_indices: tuple[int, ...] | None = None
    source: str = "list"
    # What a user should hear about how the list was read (a class file's lines with commas).
    notes: tuple[str, ...] = ()


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1,000 readable ImageNet names, made unique ("crane (bird)" / "crane (machine)"), as a
    class list takes them: case ignored ("Cardigan", the corgi, and "cardigan", the sweater,
    had been refused as one name repeated once written out as a list)."""
    from capsight.vision.imagenet_classes import imagenet_synonyms

    names = [syn[0] for syn in imagenet_synonyms()]
    seen: dict[str, int] = {}
    for name in names:
        seen[name.casefold()] = seen.get(name.casefold(), 0) + 1
    out = []
    for index, name in enumerate(names):
        if seen[name.casefold()] > 1:
            name = f"{name} ({_disambiguation(index)})"
        out.append(name)
    return tuple(out)


@lru_cache(maxsize=1)
def renamed_imagenet_classes() -> dict[str, int]:
    """The names ``imagenet_labels`` made unique ("crane (device)"), case-folded as class lists
    compare names, each to its class index:
    typed in a list of one's own, such a name is that class (WordNet knows no "crane (device)",
    so the two cranes had scored alike)."""
    from capsight.vision.imagenet_classes import imagenet_synonyms

    raw = [syn[0] for syn in imagenet_synonyms()]
    return {name.casefold(): i for i, name in enumerate(imagenet_labels()) if name != raw[i]}


def _disambiguation(index: int) -> str:
    """A word telling duplicate ImageNet names apart: their nearest WordNet hypernym."""
    from capsight.classify.wordnet import synsets_by_wnid

    synsets = synsets_by_wnid()
    wnid = _imagenet_wnids()[index]
    own = set(synsets[wnid].covers)
    parents = [s for s in synsets.values() if own < set(s.covers)]
    parent = min(parents, key=lambda s: len(s.covers))
    return parent.lemmas[0]


@lru_cache(maxsize=1)
def _imagenet_wnids() -> tuple[str, ...]:
    text = resources.files("capsight.data").joinpath("imagenet_wnids.txt").read_text("utf-8")
    return tuple(text.split())


def read_class_file(path: Path) -> list[str]:
    try:
        text = path.read_text("utf-8")
    except UnicodeDecodeError:
        raise InvalidParameter(f"{path}: class file must be UTF-8 text, one class a line") from None
    except OSError as exc:
        raise InputNotFound(f"{path}: cannot read class file ({exc.strerror})") from None
    names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    for number, name in enumerate(names, 1):
        if "\t" in name:  # a TSV of name and id had become the classes "cat 1", "dog 2"
            raise InvalidParameter(
                f"{path}: line {number} holds a tab ({quoted(name.replace(chr(9), ' <tab> '), 40)}); "
                "a class file holds one name a line, not columns: keep only the names"
            )
    return names


def typed_names(text: str) -> list[str]:
    """The names of a list typed as "a, b, c" or one a line (unstripped, blanks kept). On several
    lines "#" starts a comment, as in a class file: a class file pasted into the web page's box
    had made "# my list" a class. (On one line it is part of a name: "C#, Java".)"""
    lines = text.splitlines()
    if len(lines) > 1:
        lines = [line.split("#", 1)[0] for line in lines]
    return ",".join(lines).split(",")


def comma_note(source: str, labels: list[str]) -> tuple[str, ...]:
    """A note for a class file whose lines hold commas: each line is one class, commas and all,
    which a file written as "cat, dog" or as a CSV of name and id would not have meant."""
    with_commas = [label for label in labels if "," in label]
    if not with_commas:
        return ()
    lines = "a line holds" if len(with_commas) == 1 else f"{len(with_commas):,} lines hold"
    return (
        f"{source}: {lines} a comma ({quoted(with_commas[0])}); each line is one class, "
        "commas and all, so put one name per line",
    )


def builtin_set(name: str) -> ClassList:
    if name == "imagenet":
        return ClassList(imagenet_labels(), tuple(range(1000)), "imagenet")
    if name not in BUILTIN_SETS:
        raise InvalidParameter(f"unknown class set {name!r}; built-in: {', '.join(BUILTIN_SETS)}")
    text = resources.files("capsight.data").joinpath(f"classes/{name}.txt").read_text("utf-8")
    labels = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return ClassList(tuple(label for label in labels if label), None, name)


# A class spec ending so names a file: when it is missing, that is said, not "a single class".
CLASS_FILE_SUFFIXES = {".txt", ".csv", ".tsv", ".lst", ".list", ".names"}


def _path_is(test: Callable[[Path], bool], path: Path) -> bool:
    """``test(path)`` (``Path.is_file``, ``Path.is_dir``), False where the text cannot be a path
    at all: a class list typed inline runs past the system's 255-byte limit on a file name."""
    try:
        return test(path)
    except (OSError, ValueError):
        return False


# Characters no class name needs, removed: the BOM, the zero-width space, the word joiner, the
# soft hyphen, the direction marks (LRM, RLM, ALM) and the bidirectional embeddings, overrides
# and isolates (U+202A-202E, U+2066-2069).
_INVISIBLE = dict.fromkeys([0xFEFF, 0x200B, 0x2060, 0x00AD, 0x200E, 0x200F, 0x061C,
                            *range(0x202A, 0x202F), *range(0x2066, 0x206A)])  # fmt: skip

MAX_NAME = 200  # characters in a class name (a prompt holds it whole)


def clean_name(label: str) -> str:
    """A class name as it is compared and shown: invisible characters out, inner runs of
    spaces folded to one, NFC (``parse_classes`` says why); "" for a name of nothing else."""
    return unicodedata.normalize("NFC", " ".join(label.translate(_INVISIBLE).split()))


def _check_name(label: str, source: str) -> None:
    where = f"{source}: " if source != "list" else ""
    if len(label) > MAX_NAME:
        raise InvalidParameter(f"{where}class name {quoted(label, 40)} has {len(label):,} "
                               f"characters; at most {MAX_NAME}")  # fmt: skip
    check_decoded(label, f"{where}class name")
    if any(unicodedata.category(c) == "Cc" for c in label):  # "ant\x01" lost its WordNet match
        raise InvalidParameter(f"{where}class name {quoted(label, 40)} holds a control character; "
                               "give names of printable text")  # fmt: skip


def as_class_list(
    classes: ClassList | str | os.PathLike | list[str] | tuple[str, ...],
) -> ClassList:
    """``classes`` as a ClassList: one already, or anything ``parse_classes`` reads ("a,b", a
    list of names; a list was an AttributeError inside ``engine.build``)."""
    return classes if isinstance(classes, ClassList) else parse_classes(classes)


def parse_classes(
    spec: str | os.PathLike | list[str] | tuple[str, ...], at_least: int = 2
) -> ClassList:
    """A built-in set name, a path to a text file (a str or a ``Path``), "a,b,c", or a list of
    names -> ClassList.

    ``at_least=1`` lets one name through, for callers that add classes of their own (few-shot
    example folders); the classifier as a whole still needs two."""
    if isinstance(spec, os.PathLike):  # Path("mine.txt"): a class file, as its str is
        spec = os.fspath(spec)
        if not isinstance(spec, str):  # a bytes path
            raise InvalidParameter(
                "classes: give a class file's path as a str or a Path, not bytes"
            )
    if not isinstance(spec, (str, list, tuple)):  # a set has no order to give scores in
        raise InvalidParameter(f"classes must be a built-in set's name, a class file, 'a, b, c' or a "
                               f"list of names, not {type(spec).__name__!r}")  # fmt: skip
    if isinstance(spec, (list, tuple)):
        for i, name in enumerate(spec):  # 3 became the class '3'
            if not isinstance(name, str):
                raise InvalidParameter(f"classes[{i}] must be a name (a string), got {name!r}")
        labels, source = [s.strip() for s in spec], "list"
    else:
        spec = spec.strip()
        if spec in BUILTIN_SETS:
            return builtin_set(spec)
        path = Path(spec)
        # "kettle": a class, or a folder
        if ("/" in spec or os.sep in spec) and _path_is(Path.is_dir, path):
            raise InvalidParameter(f"{spec}: is a folder; give a class file (one name per line), "
                                   "a built-in set or 'a, b, c'")  # fmt: skip
        if _path_is(Path.is_file, path):
            labels, source = read_class_file(path), str(path)
        elif (
            "," in spec
            or "\n" in spec
            or not (path.suffix.lower() in CLASS_FILE_SUFFIXES or "/" in spec)
        ):
            labels, source = typed_names(spec), "list"
        elif _path_is(Path.is_dir, path):  # "classes.txt", a folder
            raise InvalidParameter(f"{spec}: is a folder; give a class file (one name per line), "
                                   "a built-in set or 'a, b, c'")  # fmt: skip
        elif _path_is(Path.exists, path):  # a pipe or a device: reading could block
            raise InputNotFound(f"{spec}: not a regular file (a device, pipe or socket); give a "
                                "class file, a built-in set or 'a, b, c'")  # fmt: skip
        else:
            raise InputNotFound(
                f"{spec}: no such class file; give a file, a built-in set or 'a, b, c'"
            )
    # A byte order mark (Windows editors start UTF-8 text with one) is no part of a name, nor
    # are zero-width spaces and direction overrides (pasted from web pages: "cat\u200b" and
    # "cat" were two classes printed alike). Inner runs of spaces fold to one: "hot  dog" is
    # "hot dog", and one class with it; and "café" typed with a combining accent is the "café"
    # typed with its own letter (NFC). (Joiners stay: emoji sequences and Persian need them.)
    labels = [clean_name(label) for label in labels]
    if source == "list" and isinstance(spec, (list, tuple)) and "" in labels:
        # (a list's scores come back in its order: a blank dropped had shifted every name after
        # it onto its neighbour's score, for a caller who indexes them by the list)
        raise InvalidParameter(f"classes[{labels.index('')}] is blank; give each class a name")
    labels = [label for label in labels if label]
    for label in labels:
        _check_name(label, source)
    if not labels:
        where = f"{source}: " if source != "list" else ""  # a file of comments or blank lines
        raise InvalidParameter(f"{where}the class list is empty; give class names, e.g. 'cat, dog'")
    if len(labels) < at_least:  # one class always wins with probability 1: a mistyped set name?
        close = difflib.get_close_matches(labels[0].lower(), BUILTIN_SETS, n=1, cutoff=0.6)
        hint = f"did you mean the built-in set {close[0]!r}? " if close else ""
        shown = quoted(labels[0])
        if source != "list":  # a class file of one line: "cat, dog, car" on it?
            raise InvalidParameter(f"{source}: holds one class, {shown}; a class file has "
                                   "one name per line, and two or more of them")  # fmt: skip
        if isinstance(spec, str) and _path_is(Path.is_dir, Path(spec)):  # "photos", no slash
            raise InvalidParameter(f"{spec}: is a folder; give a class file (one name per line), "
                                   "a built-in set or 'a, b, c'")  # fmt: skip
        for suffix in sorted(CLASS_FILE_SUFFIXES):  # "mine" for mine.txt
            if isinstance(spec, str) and _path_is(Path.is_file, Path(spec + suffix)):
                hint = f"did you mean the class file {spec + suffix!r}? " + hint
                break
        raise InvalidParameter(
            f"{shown} is a single class; {hint}give two or more classes ('cat, dog'), a "
            f"class file, or a built-in set ({', '.join(BUILTIN_SETS)})"
        )
    counts = Counter(label.casefold() for label in labels)  # "cat" and "Cat" are one class
    duplicates = sorted({label for label in labels if counts[label.casefold()] > 1})
    if duplicates:
        more = f" and {len(duplicates) - 10:,} more" if len(duplicates) > 10 else ""
        where = f"{source}: " if source != "list" else ""  # (a file's name, as its other errors)
        raise InvalidParameter(f"{where}class list repeats {', '.join(duplicates[:10])}{more}; "
                               "each class once")  # fmt: skip
    notes = comma_note(source, labels) if source != "list" else ()
    return ClassList(tuple(labels), None, source, notes)
