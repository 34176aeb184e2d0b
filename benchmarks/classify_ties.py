"""Classes the offline engine's WordNet rows cannot tell apart: before and after the tie-break.

    nice -n 15 .venv/bin/python benchmarks/classify_ties.py

Borrowed WordNet ancestors can give two class names the same (C, 1000) row ("skateboard" and
"surfboard" both reach "board", whose only ImageNet class is a scoreboard), and such classes
then tie on every photo. ``OfflineConfig.break_ties`` adds their text similarity. This scores
both settings on the real photos that show such classes (too few for more than a direction):

- ``boards``: Flickr8k photos whose captions say "surf" at least three times and never
  "skateboard", and the other way round (40 of each, in name order); classes skateboard,
  surfboard, dog, bicycle;
- ``rooms``: the COCO photos of ``../shared/data/captioned`` whose captions name exactly one of
  kitchen, living room, bedroom, bathroom, office; those five classes.

It also lists the tied groups of every built-in class set. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
BOARDS = {"skateboard": "skateboard", "surfboard": "surf"}  # class -> what its captions say
ROOMS = ["kitchen", "living room", "bedroom", "bathroom", "office"]


def board_photos(per_class: int = 40) -> list[tuple[Path, str]]:
    captions = json.loads((DATA / "flickr8k" / "captions.json").read_text())
    chosen: dict[str, list[Path]] = {name: [] for name in BOARDS}
    for name, texts in sorted(captions.items()):
        said = {c: sum(word in t.lower() for t in texts) for c, word in BOARDS.items()}
        for c in BOARDS:
            others = [o for o in BOARDS if o != c]
            if said[c] >= 3 and not any(said[o] for o in others) and len(chosen[c]) < per_class:
                chosen[c].append(DATA / "flickr8k" / "images" / name)
    return [(path, c) for c in BOARDS for path in chosen[c]]


def room_photos() -> list[tuple[Path, str]]:
    captions = json.loads((DATA / "captioned" / "captions.json").read_text())
    photos = []
    for name, texts in sorted(captions.items()):
        named = [r for r in ROOMS if re.search(rf"\b{r}\b", " ".join(texts).lower())]
        if len(named) == 1:
            photos.append((DATA / "captioned" / name, named[0]))
    return photos


def tied_builtin_groups() -> dict[str, list[list[str]]]:
    from capsight.classify.class_sets import BUILTIN_SETS, builtin_set
    from capsight.classify.offline import OfflineConfig, tied_classes, wordnet_rows

    found = {}
    for name in BUILTIN_SETS:
        classes = builtin_set(name)
        if classes.imagenet_indices is not None:
            continue
        labels = list(classes.labels)
        rows = wordnet_rows(labels, OfflineConfig())
        tied = tied_classes(rows, labels)
        groups: dict[bytes, list[str]] = {}
        for c in np.flatnonzero(tied):
            groups.setdefault(rows[c].tobytes(), []).append(labels[c])
        found[name] = list(groups.values())
    return found


def main(argv: list[str] | None = None) -> int:
    # --help; no options
    argparse.ArgumentParser(description=__doc__.split("\n")[0]).parse_args(argv)
    from capsight.classify.class_sets import parse_classes
    from capsight.classify.classifier import top_labels
    from capsight.classify.offline import OfflineEngine
    from capsight.io.images import load_image

    if not (DATA / "flickr8k").is_dir():
        print(f"needs {DATA}/flickr8k and {DATA}/captioned", file=sys.stderr)
        return 2
    engine = OfflineEngine()
    tasks = {
        "boards": (board_photos(), list(BOARDS) + ["dog", "bicycle"]),
        "rooms": (room_photos(), ROOMS),
    }
    print("| photos | class | photos of it | top-1 before | top-1 after | what wins most after |")
    print("|---|---|---:|---:|---:|---|")
    for task, (photos, labels) in tasks.items():
        images = [load_image(path) for path, _ in photos]
        top = {}
        for setting in (False, True):
            engine.config = replace(engine.config, break_ties=setting)
            classifier = engine.build(parse_classes(labels))
            top[setting] = [r[0][0] for r in top_labels(classifier, images, k=1)]
        for label in dict.fromkeys(c for _, c in photos):
            mine = [i for i, (_, c) in enumerate(photos) if c == label]
            after = [top[True][i] for i in mine]
            winner = max(set(after), key=after.count)
            print(f"| {task} | {label} | {len(mine)} | {sum(top[False][i] == label for i in mine)} "
                  f"| {sum(a == label for a in after)} | {winner} ({after.count(winner)}) |")  # fmt: skip
    print()
    for name, groups in tied_builtin_groups().items():
        print(f"- `{name}`: " + ("; ".join(", ".join(g) for g in groups) or "no ties"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
