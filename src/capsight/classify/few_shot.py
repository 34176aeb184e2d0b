"""One-shot and few-shot classifiers from a folder of example photos (one sub-folder per class).

    examples/
      mug/      a.jpg b.jpg
      teapot/   c.jpg
    >>> clf = build_from_examples(engine, "examples")                       # prototypes only
    >>> clf = build_from_examples(engine, "examples", names=True)           # + the folder names
    >>> clf = build_from_examples(engine, "examples", parse_classes("mug,teapot,kettle"))

Each class's prototype is the mean of its photos' pooled EfficientNet features, centred on the
mean of all example photos (pooled features are all positive, so raw cosines sit near 1 and
tell little apart; centring is the standard fix in few-shot work). A photo's score for a class
is the scaled cosine to its prototype, added to the name-based log-score when names are used.
Classes named in ``classes`` without a folder rely on their name alone; two folders at least
are needed (one would be centred on itself).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from capsight.classify.class_sets import ClassList, parse_classes
from capsight.classify.classifier import image_to_tensor
from capsight.errors import InputNotFound, InvalidParameter
from capsight.io.images import PHOTO_KINDS, PHOTO_SUFFIXES
from capsight.progress import ProgressCallback, span


def _photos_under(folder: Path) -> list[Path]:
    """The photos in a class folder and its own sub-folders (``cat/2019/``: they had been left
    out without a word), sorted; hidden files and folders (macOS's ``._`` copies, which had
    stopped the build as "not an image file") are not photos, as ``capsight classify`` skips
    them too."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(root, name) for name in files
                  if not name.startswith(".") and Path(name).suffix.lower() in PHOTO_SUFFIXES]  # fmt: skip
    return sorted(p for p in found if p.is_file())


def read_examples(folder: str | os.PathLike) -> dict[str, list[Path]]:
    """{class name: [photo paths]} from the sub-folders of ``folder`` (folder name = class;
    the photos in a class folder's own sub-folders count for it)."""
    if not str(folder).strip():  # Path("") would be the current folder
        raise InvalidParameter(
            "the examples folder name is empty; give a folder with one sub-folder per class"
        )
    root = Path(folder).expanduser()
    if root.exists() and not root.is_dir():
        raise InvalidParameter(f"{root}: is a file; give a folder with one sub-folder per class")
    if not root.is_dir():
        raise InputNotFound(f"{root}: no such folder; give a folder with one sub-folder per class")
    examples, folders, empty = {}, {}, []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        photos = _photos_under(sub)
        if not photos:
            empty.append(sub.name)
            continue
        label = " ".join(sub.name.replace("_", " ").split())  # as class lists fold spaces
        twin = folders.get(label.casefold())
        if twin is not None:  # one would silently take the other's place
            raise InvalidParameter(
                f"example folders {twin!r} and {sub.name!r} name the same class; merge them"
            )
        folders[label.casefold()] = sub.name
        examples[label] = photos
    if not examples:
        raise InvalidParameter(
            f"{root}: no example photos found; put photos in one sub-folder per class"
        )
    if empty:  # a class the user meant to teach would be left out without a word
        raise InvalidParameter(
            f"{root}: {', '.join(empty)} {'has' if len(empty) == 1 else 'have'} no photos "
            f"({PHOTO_KINDS}); add some or remove the folder"
        )
    return examples


def prototypes(
    engine, examples: dict[str, list[Path]], progress: ProgressCallback | None = None
) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """(class names, (C, 1280) centred unit prototypes, (1, 1280) centre) from the photos."""
    from capsight.io.images import load_image

    labels, features = list(examples), []
    total, done = sum(len(paths) for paths in examples.values()), 0
    for label in labels:
        rows = []
        for path in examples[label]:
            if progress is not None:
                progress(done / total, f"encoding {total:,} example photos")
            rows.append(engine.pooled_features(image_to_tensor(load_image(path))))
            done += 1
        features.append(torch.cat(rows))  # (n_c, 1280)
    centre = torch.cat(features).mean(dim=0, keepdim=True)  # (1, 1280)
    protos = torch.stack([(f - centre).mean(dim=0) for f in features])  # (C, 1280)
    return labels, torch.nn.functional.normalize(protos, dim=-1), centre


def build_from_examples(
    engine,
    folder: str | os.PathLike,
    classes: ClassList | str | os.PathLike | list[str] | tuple[str, ...] | None = None,
    templates=None,
    names: bool = False,
    progress: ProgressCallback | None = None,
):
    """An offline classifier from example photos, optionally combined with class names
    (``classes``: anything ``parse_classes`` reads; one name is enough beside the photos).
    ``progress`` hears the photos being encoded, then any class names being embedded."""
    if getattr(engine, "name", "") != "offline":
        raise InvalidParameter(
            "examples work with the offline engine only (create_engine('offline'))"
        )
    if not isinstance(folder, (str, os.PathLike)):  # None was a TypeError inside pathlib
        raise InvalidParameter(f"the examples folder must be a path (a str or a Path), not "
                               f"{type(folder).__name__!r}")  # fmt: skip
    if classes is not None and not isinstance(classes, ClassList):  # "axe, banana", a list
        classes = parse_classes(classes, at_least=1)
    examples = read_examples(folder)
    labels = list(classes.labels) if classes is not None else []
    index = {label.casefold(): i for i, label in enumerate(labels)}  # "Mug" names folder "mug"
    for label in examples:
        if label.casefold() not in index:
            index[label.casefold()] = len(labels)
            labels.append(label)
    if len(examples) < 2:  # said before any photo is encoded
        # Prototypes are centred on the mean of all example photos: one folder's would be its
        # own mean, centred to nothing, and its class would get noise. Centring on a generic
        # mean instead (400 ImageNet photos') let that class win nearly every CIFAR-10 photo:
        # accuracy 0.66 -> 0.11 with the other nine classes named.
        raise InvalidParameter(
            f"the example photos are of one class only ({next(iter(examples))!r}); each class's "
            "photos are told apart from the other classes' photos, so add photos of another "
            "class (or classify by class names alone)"
        )
    use_names = names or classes is not None
    photos_end = 0.5 if use_names else 1.0  # the names' half is quick when they are cached
    example_labels, protos, centre = prototypes(engine, examples, span(progress, 0.0, photos_end))
    rows = torch.zeros(len(labels), protos.shape[1])  # classes without photos: no prototype
    for label, proto in zip(example_labels, protos, strict=False):
        rows[index[label.casefold()]] = proto
    class_list = ClassList(tuple(labels), None, "examples")
    return engine.build(
        class_list,
        templates,
        prototypes=rows,
        centre=centre,
        names=use_names,
        progress=span(progress, photos_end, 1.0),
    )
