"""Novelty quality: does capsight find the events of a video and ignore its nuisances?

    .venv/bin/python benchmarks/novelty_quality.py            # dev + held-out sets + real clips
    .venv/bin/python benchmarks/novelty_quality.py --sets holdout --no-scenedetect

Generates test videos from real photos (``../shared/data/captioned`` COCO photos as scenes,
``../shared/data/labelled`` ImageNet photos as objects) with known events (hard cuts, 3-second
dissolves, an object sliding into a continuing shot) and nuisances (flicker, shake, noise, blur,
darkening), caches them under ``cache/novelty_bench/``, runs ``capsight.analyze_video`` with
default parameters and PySceneDetect's ContentDetector, AdaptiveDetector and ThresholdDetector
(default parameters) on every file, plus the annotated clips in ``../shared/data/videos``, and
prints a markdown table: events found (a detection within 1.5 s of the event's interval, each
detection matching at most one event) and false alarms per video (detections matching no
event).

The ``dev`` set (seeds 100.., even-numbered COCO photos, the first 100 ImageNet classes) is the
one thresholds were tuned on; ``holdout`` (seeds 200.., the other photos and classes) was only
scored, to check the tuning did not overfit.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from capsight.io.images import load_image
from capsight.io.synthetic_video import SyntheticVideoConfig, make_synthetic_video

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "cache" / "novelty_bench"
TOLERANCE = 1.5  # seconds between a detection and an event's interval

SETS = {
    # name: (first seed, number of videos, photo parity, object class range)
    "dev": (100, 12, 0, slice(0, 100)),
    "holdout": (200, 12, 1, slice(100, 200)),
}


def _photos(parity: int, classes: slice) -> tuple[list[Path], list[Path]]:
    scenes = sorted((DATA / "captioned").glob("*.jpg"))[parity::2]
    class_dirs = sorted(p for p in (DATA / "labelled").iterdir() if p.is_dir())[classes]
    objects = [sorted(d.glob("*.jpg"))[0] for d in class_dirs]
    return scenes, objects


def _video_config(seed: int) -> SyntheticVideoConfig:
    rng = np.random.default_rng(seed + 10_000)
    width, height = [(640, 360), (640, 360), (960, 540), (1280, 720)][int(rng.integers(4))]
    return SyntheticVideoConfig(
        duration=float(rng.uniform(40, 60)),
        width=width,
        height=height,
        fps=int(rng.choice([24, 25, 30])),
        dissolve_share=0.4,
        object_share=0.6,
        nuisances=(3, 5),
        grain_share=0.2,
    )


def generated_videos(name: str) -> list[dict]:
    """Make (or reuse) the videos of one set; return [{path, events, nuisances}, ...]."""
    first_seed, count, parity, classes = SETS[name]
    scene_paths, object_paths = _photos(parity, classes)
    CACHE.mkdir(parents=True, exist_ok=True)
    videos = []
    for seed in range(first_seed, first_seed + count):
        path = CACHE / f"{name}_{seed}.mp4"
        truth_path = path.with_suffix(".json")
        if not (path.exists() and truth_path.exists()):
            rng = np.random.default_rng(seed)
            scenes = [load_image(scene_paths[i]) for i in rng.choice(len(scene_paths), 9, False)]
            objects = [load_image(object_paths[i]) for i in rng.choice(len(object_paths), 4, False)]
            t0 = time.perf_counter()
            video = make_synthetic_video(path, scenes, objects, seed=seed, config=_video_config(seed))
            truth = {
                "events": [asdict(e) for e in video.events],
                "nuisances": [asdict(n) for n in video.nuisances],
                "config": asdict(video.config),
            }
            truth_path.write_text(json.dumps(truth, indent=1))
            print(f"made {path.name} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        truth = json.loads(truth_path.read_text())
        videos.append({"path": str(path), **truth})
    return videos
