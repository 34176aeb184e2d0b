"""Peak memory of `capsight classify` on a folder of photos of many sizes, by photo count.

    .venv/bin/python benchmarks/classify_memory.py [--photos 100 200 400]

The first N photos of ``../shared/data/labelled`` (ImageNet photos of 200 classes, 2 each, in
dozens of sizes) are linked into a temporary folder and classified into those 200 classes by
a fresh `capsight classify` process; the table gives its peak resident memory (the child's
``ru_maxrss``) and wall time. Photos of one size go through the network together, in batches
of 16, 8, 4, 2 or 1 (``classify.classifier.predict``): every batch length from 1 to 16 had
grown the heap with each new one (400 photos: 2.23 GB on 2026-12-07 before, 1.18 GB after).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "labelled"


def peak_of_one_run(folder: Path, classes: Path) -> tuple[float, float]:
    """(peak MB, seconds) of `capsight classify folder --classes classes` in a fresh process:
    each in a process of its own, as a child's ru_maxrss is the largest of all children."""
    script = (
        "import resource, subprocess, sys, time; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, time.perf_counter() - t)"
    )
    command = [sys.executable, "-m", "capsight", "classify", str(folder), "--classes", str(classes),
               "--json", "-q"]  # fmt: skip
    out = subprocess.run([sys.executable, "-c", script, *command], check=True, text=True,
                         capture_output=True).stdout.split()  # fmt: skip
    return float(out[0]), float(out[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, nargs="+", default=[100, 200, 400])
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"{DATA}: not found (the shared data set)")
    classes = sorted(p for p in DATA.iterdir() if p.is_dir())
    photos = [photo for folder in classes for photo in sorted(folder.glob("*.jpg"))]
    print("| photos | photo sizes | peak memory | time |")
    print("|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        names = Path(tmp) / "classes.txt"
        names.write_text("\n".join(p.name for p in classes) + "\n")
        for n in args.photos:
            folder = Path(tmp) / f"photos-{n}"
            folder.mkdir()
            for photo in photos[:n]:
                os.symlink(photo, folder / photo.name)
            sizes = len({Image.open(p).size for p in photos[:n]})
            peak, seconds = peak_of_one_run(folder, names)
            print(
                f"| {min(n, len(photos))} | {sizes} | {peak:,.0f} MB | {seconds:.1f} s |",
                flush=True,
            )


if __name__ == "__main__":
    main()
