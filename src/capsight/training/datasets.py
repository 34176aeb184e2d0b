"""Captioned-image corpora: photos, their human captions and the train/val/test split.

    >>> corpus = load_corpus("../shared/data/flickr8k")       # captions.json + splits.json
    >>> len(corpus.split("train")), corpus.split("train")[0].captions[0]
    (6091, 'A black dog is running after a white dog in the snow .')

Two layouts are read here:

* a plain folder: ``images/`` (or the photos next to it), ``captions.json`` mapping a file name to
  its captions, and optionally ``splits.json`` mapping ``train``/``val``/``test`` to file names;
* the official Flickr8k text files: ``Flickr8k.token.txt`` (``name.jpg#0<TAB>caption``) and
  ``Flickr_8k.trainImages.txt`` / ``devImages`` / ``testImages`` beside it, photos in
  ``Flicker8k_Dataset/`` (the archive's spelling), ``Flickr8k_Dataset/`` or ``images/``, in that
  folder or beside it; the folder both archives unzip into (``Flickr8k_text/`` inside) too.

Other formats (Karpathy JSON, COCO annotations, Conceptual Captions) build the same
``CaptionCorpus`` in their own modules.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from capsight.errors import DatasetError, InputNotFound, InvalidParameter


@dataclass(frozen=True)
class CaptionedImage:
    key: str  # unique name of the photo within its corpus (usually the file name)
    path: Path
    captions: tuple[str, ...]


def has_file(path: Path) -> bool:
    """Whether ``path`` is a file; False for a name the file system refuses (too long), which
    is no file either (``Path.is_file`` raises there)."""
    try:
        return path.is_file()
    except OSError:
        return False


@dataclass
class CaptionCorpus:
    name: str
    images: dict[str, CaptionedImage]
    splits: dict[str, list[str]] = field(default_factory=dict)  # split -> keys
    # What the reader left out or guessed ("dropped 3 empty captions"), for the user to read.
    notes: list[str] = field(default_factory=list)

    def split(self, name: str) -> list[CaptionedImage]:
        """The photos of one split; ``"all"`` is every photo of the corpus."""
        if name == "all":
            return [self.images[k] for k in sorted(self.images)]
        if name not in self.splits:
            why = ""
            if name == "val" and "train" in self.splits:  # (what train validates on is its own)
                why = ("; capsight train validates on a tenth of the train photos it holds out "
                       "itself, which is no split of the data")  # fmt: skip
            elif name == "restval":
                why = "; a Karpathy file's restval photos are part of its train split"
            raise InvalidParameter(
                f"corpus {self.name!r} has no {name!r} split; it has "
                f"{', '.join(self.splits) or 'none (score all its photos: no split)'}{why}"
            )
        return [self.images[k] for k in self.splits[name]]

    def __len__(self) -> int:
        return len(self.images)


def _image_dir(root: Path, candidates: tuple[str, ...]) -> Path:
    for name in candidates:
        if (root / name).is_dir():
            return root / name
    return root


SHARE = 0.1  # of the photos held out for val, and as many for test, where no split is given


def _place(key: str) -> float:
    """Where a photo falls in [0, 1), from its name alone: the same on every machine and run,
    whatever other photos the folder holds."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _stable_splits(
    keys: list[str], held: dict[str, tuple[float, float]], max_held_out: int, at_least: int
) -> dict[str, list[str]]:
    """Train and the ``held`` splits ({name: (from, to)} in [0, 1)), each photo placed by its
    name's hash, so photos added to the folder do not move a training photo into a held split:
    a model trained before they were added is not scored on its own training photos. A held
    split keeps at most ``max_held_out`` photos (the lowest placed; photos added past the cap
    push its highest back to train, which harms no earlier model). In a folder of a dozen
    photos a band can be empty: the held split then borrows the lowest-placed train photo (with
    ``at_least`` photos), and train the highest-placed held one; those borrowed photos can move
    as photos are added."""
    places = {key: _place(key) for key in keys}
    order = sorted(keys, key=lambda k: (places[k], k))
    splits: dict[str, list[str]] = {name: [] for name in held}
    for key in order:
        name = next((n for n, (lo, hi) in held.items() if lo <= places[key] < hi), None)
        if name is not None and len(splits[name]) < max_held_out:
            splits[name].append(key)
    taken = {k for keys_ in splits.values() for k in keys_}
    train = [k for k in order if k not in taken]
    if not train and len(keys) >= 2:  # (three photos can all fall in the held bands)
        highest = max(splits, key=lambda n: places[splits[n][-1]] if splits[n] else -1.0)
        train.append(splits[highest].pop())
    for name in held:
        if not splits[name] and len(keys) >= at_least and len(train) > 1:
            splits[name].append(train.pop(0))
    return {"train": sorted(train), **{n: sorted(v) for n, v in splits.items()}}


# How train draws a split the data does not give (recorded in a run's train_config.json as
# "drawn_split"): by a hash of each photo's name since 2026-12-07; at random (seed 0) before.
DRAWN_SPLIT = "name-hash"
DRAWN_SPLIT_NOTE = "no split given"  # how the note about a drawn split starts
DRAWN_VAL_NOTE = "no val split"  # how the note about a val split drawn from train starts


def drew_split(corpus: CaptionCorpus) -> bool:
    """Whether ``corpus``'s val (and test) split was drawn here, not given by the data."""
    return any(n.startswith((DRAWN_SPLIT_NOTE, DRAWN_VAL_NOTE)) for n in corpus.notes)


def drawn_split_note(n: int, val: int, test: int) -> str:
    return (f"{DRAWN_SPLIT_NOTE}: {n} photos split by a hash of each name into "
            f"{n - val - test} train, {val} val and {test} test (photos added later do not "
            "move a training photo into val or test)")  # fmt: skip


def draw_splits(corpus: CaptionCorpus, max_held_out: int = 1000) -> CaptionCorpus:
    """``corpus`` with train/val/test drawn from all its photos: about a tenth each for val and
    test (at most ``max_held_out``, at least one photo while there are three or more), each
    photo placed by a hash of its name (``_stable_splits``: adding photos does not move a
    training photo into val or test)."""
    keys = list(corpus.images)
    held = {"val": (0.0, SHARE), "test": (SHARE, 2 * SHARE)}
    splits = _stable_splits(keys, held, max_held_out, at_least=3)
    notes = [*corpus.notes, drawn_split_note(len(keys), len(splits["val"]), len(splits["test"]))]
    return CaptionCorpus(corpus.name, corpus.images, splits, notes)


def val_from_train(corpus: CaptionCorpus, max_held_out: int = 1000) -> CaptionCorpus:
    """``corpus`` with a val split drawn from its train photos: about a tenth (at most
    ``max_held_out``, at least one while there are two), placed by a hash of each name as
    ``draw_splits`` places them, as for a COCO ``captions_train`` file, which holds one
    split."""
    train = corpus.splits["train"]
    drawn = _stable_splits(train, {"val": (0.0, SHARE)}, max_held_out, at_least=2)
    note = (f"{DRAWN_VAL_NOTE}: {len(drawn['val'])} of its {len(train)} train photos held out (by a "
            "hash of each name) to validate on")  # fmt: skip
    splits = {**corpus.splits, "train": drawn["train"], "val": drawn["val"]}
    return CaptionCorpus(corpus.name, corpus.images, splits, [*corpus.notes, note])


def caption_strings(source: Path, key: str, value: object) -> tuple[str, ...]:
    """One photo's captions from a JSON value (a string or a list of strings), blanks dropped."""
    captions = [value] if isinstance(value, str) else value
    if not isinstance(captions, list) or not all(isinstance(c, str) for c in captions):
        raise DatasetError(f"{source}: {key!r} should map to a list of caption strings")
    return tuple(c.strip() for c in captions if c.strip())


def counted(n: int, thing: str) -> str:
    """ "1 photo", "2,000 photos": a count for a note."""
    return f"{n:,} {thing}{'s' * (n != 1)}"


def _keep_captioned(
    source: Path, captions: dict[str, tuple[str, ...]], given: int, notes: list[str]
) -> dict[str, tuple[str, ...]]:
    """Drop photos left with no caption; note how many blank captions and photos went."""
    kept = sum(len(c) for c in captions.values())
    if kept < given:
        notes.append(f"{source.name}: {counted(given - kept, 'blank caption')} left out")
    bare = [k for k, c in captions.items() if not c]
    if bare:
        notes.append(
            f"{source.name}: {counted(len(bare), 'photo')} with no caption left out (first: {bare[0]})"
        )
    return {k: c for k, c in captions.items() if c}


def _split_lists(
    source: Path, raw: dict[str, list[str]], images: dict, notes: list[str]
) -> dict[str, list[str]]:
    """Split -> keys, keeping the keys that have captions (and noting the ones that do not)."""
    splits = {}
    for name, keys in raw.items():
        once = list(dict.fromkeys(keys))  # a photo listed twice would be trained on twice
        if len(once) < len(keys):
            notes.append(f"{source.name}: {counted(len(keys) - len(once), 'photo')} listed again for "
                         f"{name!r}; each counted once")  # fmt: skip
        splits[name] = [k for k in once if k in images]
        missing = len(once) - len(splits[name])
        if missing:
            notes.append(
                f"{source.name}: {missing} of the {len(once)} photos listed for {name!r} have no "
                "captions; left out"
            )
    listed = {k for keys in splits.values() for k in keys}
    unlisted = [k for k in images if k not in listed]
    if unlisted:  # (silently unused before)
        # With no train list, capsight train trains on every photo outside 'test' (listed or
        # not: "the rest is train"); the note had said "not used" of photos it then trained on.
        fate = ("capsight train trains on them, as no train split is listed"
                if "train" not in raw else "so not used")  # fmt: skip
        notes.append(f"{source.name}: {counted(len(unlisted), 'photo')} with captions in no split "
                     f"list, {fate} (first: {unlisted[0]})")  # fmt: skip
    return splits


EMPTY_CAPTIONS = "has no photos with captions (an empty JSON object)"  # train and eval alike


def read_caption_folder(root: str | os.PathLike) -> CaptionCorpus:
    """A folder with ``captions.json`` (file -> list of captions) and optional ``splits.json``."""
    from capsight.training.readers.json_files import load_json  # (the package imports us)

    root = Path(root)
    captions_file = root / "captions.json"
    if not captions_file.is_file():
        raise InputNotFound(f"{root}: no captions.json; expected a file -> captions mapping")
    data = load_json(captions_file)
    if not isinstance(data, dict):
        raise DatasetError(
            f"{captions_file}: expected a JSON object mapping each photo file to its captions"
        )
    if not data:
        raise DatasetError(f"{captions_file}: {EMPTY_CAPTIONS}")
    notes: list[str] = []
    given = sum(
        1 if isinstance(v, str) else len(v) if isinstance(v, list) else 1 for v in data.values()
    )
    captions = {
        str(key): caption_strings(captions_file, key, value) for key, value in sorted(data.items())
    }
    captions = _keep_captioned(captions_file, captions, given, notes)
    image_dir = _image_dir(root, ("images",))
    images = {key: CaptionedImage(key, image_dir / key, caps) for key, caps in captions.items()}
    splits_file = root / "splits.json"
    if not splits_file.is_file():
        return draw_splits(CaptionCorpus(root.name, images, {}, notes))
    raw = load_json(splits_file, "the splits (train, val, test -> lists of photo files)")
    if raw == {}:  # no split named: as without the file (its "no 'test' split; it has" nothing)
        notes.append(f"{splits_file.name}: names no split")
        return draw_splits(CaptionCorpus(root.name, images, {}, notes))
    if not (isinstance(raw, dict) and all(isinstance(v, list) and all(isinstance(k, str) for k in v)
                                          for v in raw.values())):  # fmt: skip
        raise DatasetError(
            f"{splits_file}: expected a JSON object mapping train/val/test to lists of photo files"
        )
    return CaptionCorpus(root.name, images, _split_lists(splits_file, raw, images, notes), notes)


def read_flickr8k_text(root: str | os.PathLike) -> CaptionCorpus:
    """The official Flickr8k text files (``Flickr8k.token.txt`` and the split lists)."""
    root = Path(root)
    token_file = root / "Flickr8k.token.txt"
    if not token_file.is_file():
        raise InputNotFound(f"{root}: no Flickr8k.token.txt; point at the Flickr8k_text folder")
    captions: dict[str, list[str]] = {}
    given, untabbed, nameless, undecoded, repeated, extra = 0, 0, 0, 0, 0, 0
    seen: set[tuple[str, str]] = set()  # (photo.jpg#0, caption): a line given twice
    # (a BOM: no name)
    for line in token_file.read_text(encoding="utf-8-sig", errors="replace").splitlines():
        if not line.strip():
            continue
        undecoded += "\ufffd" in line  # a Latin-1 "café": its byte replaced, said below
        if "\t" not in line:
            untabbed += 1
            continue
        ref, caption, *more = line.split("\t")
        extra += any(m.strip() for m in more)  # (a column after the caption had joined it)
        if not (name := ref.split("#")[0].strip()):  # "<TAB>caption": the photo folder itself
            nameless += 1
            continue
        if (ref.strip(), caption.strip()) in seen:  # (the file twice over: each photo had had 10)
            repeated += 1
            continue
        seen.add((ref.strip(), caption.strip()))
        captions.setdefault(name, []).append(caption)
        given += 1
    if not captions:
        raise DatasetError(
            f"{token_file}: no 'photo.jpg#0<TAB>caption' lines"
            + (f" ({counted(untabbed, 'line')} without a tab)" if untabbed else "")
        )
    notes = [f"{token_file.name}: {counted(count, 'line')} {what} left out"
             for count, what in ((untabbed, "without a tab"), (nameless, "with no photo name"),
                                 (repeated, "given twice (the same photo#n and caption)"))
             if count]  # fmt: skip
    if extra:
        notes.append(f"{token_file.name}: {counted(extra, 'line')} with columns after the caption "
                     "(only the one after the photo's name was read as the caption)")  # fmt: skip
    if undecoded:
        notes.append(f"{token_file.name}: {counted(undecoded, 'line')} with bytes that are not UTF-8 "
                     "(read with \ufffd in their place; save the file as UTF-8)")  # fmt: skip
    kept = _keep_captioned(token_file, {k: caption_strings(token_file, k, v) for k, v in sorted(captions.items())},
                           given, notes)  # fmt: skip
    image_dir = _image_dir(  # inside the text folder, or beside it as the two archives unzip
        root,
        ("Flicker8k_Dataset", "Flickr8k_Dataset", "images", "../Flicker8k_Dataset",
         "../Flickr8k_Dataset"),
    )  # fmt: skip
    images = {k: CaptionedImage(k, image_dir / k, v) for k, v in kept.items()}
    raw: dict[str, list[str]] = {}
    for split, stem in (("train", "train"), ("val", "dev"), ("test", "test")):
        list_file = root / f"Flickr_8k.{stem}Images.txt"
        if list_file.is_file():
            # (a BOM had made its first photo "missing"; a Latin-1 byte was a UnicodeDecodeError)
            raw[split] = list_file.read_text(encoding="utf-8-sig", errors="replace").split()
    if not raw:
        return draw_splits(CaptionCorpus("flickr8k", images, {}, notes))
    return CaptionCorpus("flickr8k", images, _split_lists(token_file, raw, images, notes), notes)


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
    if p.is_dir() and (p / "Flickr8k_text" / "Flickr8k.token.txt").is_file():
        return read_flickr8k_text(p / "Flickr8k_text")  # the folder both archives unzipped into
    inside = _caption_files(p) if p.is_dir() else []
    if inside:  # a Karpathy, COCO or Conceptual Captions file is read by its own path
        raise InputNotFound(f"{p}: a folder holding {inside[0].name}; give that file itself "
                            f"({inside[0]}), and its photo folder where the command asks for one")  # fmt: skip
    raise InputNotFound(
        f"{p}: not a known caption dataset; expected captions.json (+ splits.json) "
        "or the Flickr8k text files"
    )


def _caption_files(folder: Path) -> list[Path]:
    """The caption files of other formats in ``folder``: Karpathy's dataset_*.json, COCO's
    captions_*.json, Conceptual Captions' .tsv."""
    try:
        names = sorted(folder.iterdir())
    except OSError:
        return []
    return [f for f in names if f.is_file() and (
        (f.suffix == ".json" and f.name.startswith(("dataset_", "captions_"))) or f.suffix.lower() == ".tsv")]  # fmt: skip
