"""A tiny captioned-photo dataset generated on the fly: coloured shapes with matching captions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

COLOURS = {"red": (220, 30, 30), "green": (30, 190, 40), "blue": (30, 40, 220)}
SHAPES = ("square", "stripe")


def make_caption_folder(root: Path, per_kind: int = 2) -> Path:
    """root/images/*.jpg + captions.json + splits.json; 3 colours x 2 shapes x per_kind photos."""
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    captions = {}
    for colour, rgb in COLOURS.items():
        for shape in SHAPES:
            for k in range(per_kind):
                pixels = np.full((48, 48, 3), 250, np.uint8)
                if shape == "square":
                    pixels[12:36, 12:36] = rgb
                else:
                    pixels[:, 16:32] = rgb
                noise = rng.integers(-15, 15, pixels.shape)
                pixels = np.clip(pixels.astype(int) + noise, 0, 255).astype(np.uint8)
                name = f"{colour}-{shape}-{k}.jpg"
                Image.fromarray(pixels).save(root / "images" / name)
                captions[name] = [f"a {colour} {shape} on white .", f"A {shape} that is {colour}"]
    keys = sorted(captions)
    (root / "captions.json").write_text(json.dumps(captions))
    splits = {"train": keys[: len(keys) - 4], "val": keys[-4:-2], "test": keys[-2:]}
    (root / "splits.json").write_text(json.dumps(splits))
    return root


@pytest.fixture
def caption_folder(tmp_path) -> Path:
    return make_caption_folder(tmp_path / "shapes")


@pytest.fixture
def lock_held_elsewhere():
    """``lock_held_elsewhere(folder)``: another process holds ``folder``'s run lock (as a run
    writing there does) until the test ends; returns that process's id."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from capsight.training.run_folder import run_folder_lock\n"
            "with run_folder_lock(Path(sys.argv[1])):\n    print('held', flush=True); sys.stdin.read()")  # fmt: skip
    held = []

    def hold(folder) -> int:
        process = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdin=subprocess.PIPE,
                                   stdout=subprocess.PIPE, text=True)  # fmt: skip
        held.append(process)
        assert process.stdout.readline().strip() == "held"
        return process.pid

    yield hold
    for process in held:
        process.stdin.close()
        process.wait(timeout=60)
