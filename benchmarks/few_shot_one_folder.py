"""Why a single few-shot example folder is refused: its prototype with either centre.

    $ nice -n 15 .venv/bin/python benchmarks/few_shot_one_folder.py          # ~12 min on 2 cores

For each CIFAR-10 class in turn, 5 of its photos are the one example folder and the other nine
classes are named only. Accuracy on the remaining photos (30 a class, the 5 examples left out)
is compared for: the names alone; the prototype centred on the mean of the example photos, as
``few_shot.prototypes`` centres it (one folder: its own mean, so the prototype is noise scaled to
a unit vector); and centred on a generic mean instead, the pooled features of the 400 labelled
ImageNet photos. Data: ``../shared/data/cifar10`` and ``../shared/data/labelled``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from capsight.classify.class_sets import parse_classes
from capsight.classify.classifier import image_to_tensor, predict
from capsight.classify.engines import create_engine
from capsight.io.images import IMAGE_SUFFIXES, load_image

REPO = Path(__file__).resolve().parents[1]


def _photos(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--per-class", type=int, default=30, help="CIFAR-10 photos per class")
    parser.add_argument("--shots", type=int, default=5, help="example photos in the one folder")
    parser.add_argument("--targets", type=int, default=10, help="how many classes take a turn")
    args = parser.parse_args()
    # a missing folder had been a FileNotFoundError's traceback
    for needed in ("labelled", "cifar10"):
        if not (args.data / needed).is_dir():
            raise SystemExit(
                f"{args.data / needed} not found; pass --data (the folder holding labelled/ and cifar10/)"
            )
    torch.set_num_threads(1)
    engine = create_engine("offline")

    def pooled(images) -> torch.Tensor:
        return torch.cat([engine.pooled_features(image_to_tensor(im)) for im in images])

    labelled = [load_image(p) for sub in sorted((args.data / "labelled").iterdir()) if sub.is_dir()
                for p in _photos(sub)]  # fmt: skip
    generic = pooled(labelled).mean(dim=0, keepdim=True)
    classes = sorted(p.name for p in (args.data / "cifar10").iterdir() if p.is_dir())
    photos = {
        c: [load_image(p) for p in _photos(args.data / "cifar10" / c)[: args.per_class]]
        for c in classes
    }
    names = parse_classes(",".join(classes))
    by_name = {c: predict(engine.build(names), photos[c]) for c in classes}
    rows = {
        "names alone": [],
        "centred on its own examples (the rule before; now refused)": [],
        "centred on ImageNet photos": [],
    }
    for target in classes[: args.targets]:
        examples = pooled(photos[target][: args.shots])
        held_out = {c: slice(args.shots, None) if c == target else slice(None) for c in classes}
        for label, centre in (("centred on its own examples (the rule before; now refused)", examples.mean(0, keepdim=True)),
                              ("centred on ImageNet photos", generic)):  # fmt: skip
            prototypes = torch.zeros(len(classes), examples.shape[1])
            prototypes[classes.index(target)] = torch.nn.functional.normalize(
                (examples - centre).mean(0), dim=-1
            )
            clf = engine.build(names, prototypes=prototypes, centre=centre)
            scores = {c: predict(clf, photos[c][held_out[c]]) for c in classes}
            rows[label].append(_accuracy(scores, classes))
        rows["names alone"].append(
            _accuracy({c: by_name[c][held_out[c]] for c in classes}, classes)
        )
        print(f"{target}: " + ", ".join(f"{k} {v[-1]:.3f}" for k, v in rows.items()), flush=True)
    print(
        f"\n| one example folder of {args.shots} photos, the other classes named | CIFAR-10 accuracy |"
    )
    print("|---|---:|")
    for label, values in rows.items():
        print(f"| {label} | {sum(values) / len(values):.3f} |")


def _accuracy(scores: dict[str, torch.Tensor], classes: list[str]) -> float:
    right = sum(int((s.argmax(-1) == classes.index(c)).sum()) for c, s in scores.items())
    return right / sum(len(s) for s in scores.values())


if __name__ == "__main__":
    main()
