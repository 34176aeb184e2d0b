"""Which resampling makes an original Flickr8k photo look like the squashed training copies?

    .venv/bin/python benchmarks/squash_sharpness.py [--data ../shared/data/flickr8k]

7,091 Flickr8k photos reached us as 224x224 copies squashed from the full-size originals (by a
resampling nobody recorded); the other 875, and the 125 test photos held back for independent
evaluation, are originals resized to a shorter side of 224 with their aspect ratio kept. Run
time squashes such a photo to the encoder's square input (``vision.pixels``: bilinear). The
closer the result looks to the training copies, the less the captioners see a new kind of
photo. This compares the mean absolute first and second differences of the grey levels along
rows (x) and columns (y), a measure of sharpness and aliasing, of 800 training copies with
the landscape originals squashed to 224x224 by each of PIL's filters. A photo counts as a copy
when it is 224x224, so the count it prints (7,101) takes in the 10 originals that happen to be
square; they are too few to move the figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "flickr8k"
FILTERS = {
    "nearest": Image.NEAREST,
    "bilinear (run time)": Image.BILINEAR,
    "hamming": Image.HAMMING,
    "bicubic": Image.BICUBIC,
    "lanczos": Image.LANCZOS,
    "box": Image.BOX,
}


def sharpness(image: Image.Image) -> tuple[float, float, float, float]:
    """Mean |first difference| along x and y, then mean |second difference| along x and y."""
    grey = np.asarray(image.convert("L"), dtype=np.float32)
    return (
        float(np.abs(np.diff(grey, axis=1)).mean()),
        float(np.abs(np.diff(grey, axis=0)).mean()),
        float(np.abs(np.diff(grey, 2, axis=1)).mean()),
        float(np.abs(np.diff(grey, 2, axis=0)).mean()),
    )


def row(name: str, values: list[tuple[float, ...]]) -> str:
    a = np.array(values)
    cells = " | ".join(f"{v:.2f}" for v in a.mean(axis=0))
    return f"| {name} | {len(a)} | {cells} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the flickr8k folder")
    parser.add_argument("--copies", type=int, default=800, help="training copies to sample")
    args = parser.parse_args(argv)
    if not (args.data / "splits.json").is_file():  # (it had been a FileNotFoundError's traceback)
        raise SystemExit(
            f"{args.data / 'splits.json'} not found; pass --data (the flickr8k folder)"
        )
    splits = json.loads((args.data / "splits.json").read_text())
    names = [name for split in splits.values() for name in split]
    squashed, originals = [], []
    for name in names:
        with Image.open(args.data / "images" / name) as image:
            (squashed if image.size == (224, 224) else originals).append(name)
    picked = np.random.default_rng(0).choice(
        squashed, min(args.copies, len(squashed)), replace=False
    )
    landscape = []
    for name in originals:
        image = Image.open(args.data / "images" / name).convert("RGB")
        if image.width > image.height:  # the common shape; portraits squash along the other axis
            landscape.append(image)
    print(f"{len(squashed)} squashed copies ({len(picked)} sampled), {len(originals)} originals "
          f"({len(landscape)} landscape)\n")  # fmt: skip
    print("| photos | n | x diff | y diff | x 2nd diff | y 2nd diff |")
    print("|---|---:|---:|---:|---:|---:|")
    print(
        row(
            "training copies (squashed)",
            [sharpness(Image.open(args.data / "images" / n)) for n in picked],
        )
    )
    print(row("originals as they are", [sharpness(image) for image in landscape]))
    for label, method in FILTERS.items():
        print(
            row(
                f"originals squashed, {label}",
                [sharpness(i.resize((224, 224), method)) for i in landscape],
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
