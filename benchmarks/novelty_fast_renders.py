"""Novelty on fast renders: many more generated videos than the 2 cores can encode as files.

    nice -n 15 .venv/bin/python benchmarks/novelty_fast_renders.py
    .venv/bin/python benchmarks/novelty_fast_renders.py --sets fdev --sensitivity 0 0.5 1

``render_synthetic_frames`` renders only the sampled frames (one per second) of the kind of
video ``novelty_quality.py`` makes, each saved as a JPEG of quality 75 instead of being encoded
as H.264, and they go through what ``analyze_video`` does to a decoded frame: shrunk to at most
384 px (box filter), exposure-normalised, encoded by EfficientNet-Lite0, the grid pooled into
3x3 regions; each frame's sharpness is kept too. The region features are cached per video
under ``cache/novelty_fast/``, so
selection settings can be compared in seconds. Sets (the photos as in ``novelty_quality.py``):

- ``fdev``: seeds 1000-1029, the dev photos and classes;
- ``fhold``: seeds 2000-2019, the held-out photos and classes;
- ``fstress``: seeds 3000-3011, held-out photos, nuisance amplitudes x1.8 and 4-6 nuisances;
- ``fsmall``: seeds 4000-4011, held-out photos, objects 20-30% of the frame height, one in every
  shot long enough for it.

Prints events found, false alarms per video and objects found per set and ``--sensitivity``
(``--compare-blur-test``: also without the test that leaves blurred frames out, selection.py).
The per-frame random draws differ from an encoded video's (``render_synthetic_frames``), and
there is no H.264 compression: ``novelty_compression.py`` measures that.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from capsight.io.images import load_image  # noqa: E402
from capsight.io.synthetic_video import render_synthetic_frames  # noqa: E402
from novelty_quality import _photos, _video_config, match  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "cache" / "novelty_fast"
MAX_SIDE = 384  # capsight.novelty.frames.FRAME_MAX_SIDE

SETS = {
    # name: (first seed, videos, photo parity, object classes, config changes)
    "fdev": (1000, 30, 0, slice(0, 100), {}),
    "fhold": (2000, 20, 1, slice(100, 200), {}),
    "fstress": (3000, 12, 1, slice(100, 200), {"nuisance_scale": 1.8, "nuisances": (4, 6)}),
    "fsmall": (4000, 12, 1, slice(100, 200), {"object_height": (0.2, 0.3), "object_share": 1.0}),
}


def _as_decoded(frame: np.ndarray) -> Image.Image:
    """A rendered frame as the pipeline would get it: JPEG quality 75, at most 384 px."""
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=75)
    image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    scale = MAX_SIDE / max(image.size)
    if scale < 1:
        size = (max(2, round(image.width * scale)), max(2, round(image.height * scale)))
        image = image.resize(size, Image.BOX)
    return image


def _render(set_name: str, seed: int, scene_paths, object_paths):
    """The sampled frames of one video as the pipeline gets them, and the video's truth."""
    from capsight.novelty.frames import normalise_exposure

    changes = SETS[set_name][4]
    rng = np.random.default_rng(seed)
    scenes = [load_image(scene_paths[i]) for i in rng.choice(len(scene_paths), 9, False)]
    objects = [load_image(object_paths[i]) for i in rng.choice(len(object_paths), 4, False)]
    config = replace(_video_config(seed), **changes)
    times = np.arange(0.0, config.duration, 1.0)
    frames, video = render_synthetic_frames(times, scenes, objects, seed, config)
    return times, [normalise_exposure(_as_decoded(f)) for f in frames], video


def rendered_features(set_name: str) -> list[dict]:
    """[{regions (N, 9, 1280), sharpness (N,), events, nuisances}, ...] for one set, rendered on
    first use (a cache from before sharpness was kept is rendered again for it, not encoded)."""
    from capsight.novelty.frames import sharpness
    from capsight.novelty.pipeline import REGIONS
    from capsight.novelty.selection import region_features
    from capsight.vision.encoder import ImageEncoder

    first, count, parity, classes, _ = SETS[set_name]
    scene_paths, object_paths = _photos(parity, classes)
    encoder = None
    videos = []
    for seed in range(first, first + count):
        path = CACHE / f"{set_name}_{seed}.npz"
        if not path.exists():
            t0 = time.perf_counter()
            times, images, video = _render(set_name, seed, scene_paths, object_paths)
            encoder = encoder or ImageEncoder("efficientnet-lite0")
            grid = np.concatenate(
                [
                    np.asarray(encoder.encode(images[i : i + 32]).grid)
                    for i in range(0, len(images), 32)
                ]
            )
            truth = {
                "events": [asdict(e) for e in video.events],
                "nuisances": [asdict(n) for n in video.nuisances],
            }
            CACHE.mkdir(parents=True, exist_ok=True)
            np.savez(path, regions=region_features(grid, REGIONS).astype(np.float16),
                     times=times, truth=json.dumps(truth),
                     sharpness=np.array([sharpness(im) for im in images], np.float32))  # fmt: skip
            print(f"rendered {path.name} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        data = dict(np.load(path))
        if "sharpness" not in data:
            _, images, _ = _render(set_name, seed, scene_paths, object_paths)
            data["sharpness"] = np.array([sharpness(im) for im in images], np.float32)
            np.savez(path, **data)
        videos.append({"regions": data["regions"].astype(np.float32), "times": data["times"],
                       "sharpness": data["sharpness"], **json.loads(str(data["truth"]))})  # fmt: skip
    return videos


def score(videos: list[dict], sensitivity: float, blur_test: bool = True) -> dict:
    from capsight.novelty.selection import select_novel_moments

    found = events = false_alarms = objects = objects_found = 0
    for video in videos:
        sharpness = video["sharpness"] if blur_test else None
        chosen = select_novel_moments(
            {"visual": video["regions"]}, sensitivity=sensitivity, sharpness=sharpness
        ).indices
        hits, extra = match([float(video["times"][i]) for i in chosen], video["events"])
        found, events, false_alarms = (
            found + sum(hits),
            events + len(hits),
            false_alarms + len(extra),
        )
        for event, hit in zip(video["events"], hits, strict=True):
            if event["kind"] == "object":
                objects, objects_found = objects + 1, objects_found + hit
    return {"found": found, "events": events, "false_alarms": false_alarms,
            "videos": len(videos), "objects": objects, "objects_found": objects_found}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=list(SETS), choices=list(SETS))
    parser.add_argument("--sensitivity", nargs="+", type=float, default=[0.5],
                        help="selection sensitivities, a row each (default: 0.5, the default)")  # fmt: skip
    parser.add_argument("--compare-blur-test", action="store_true",
                        help="a row without the blur test as well (selection.blurred_moments)")  # fmt: skip
    args = parser.parse_args(argv)
    rows = []
    for set_name in args.sets:
        videos = rendered_features(set_name)
        for sensitivity in args.sensitivity:
            for blur_test in (False, True) if args.compare_blur_test else (True,):
                r = score(videos, sensitivity, blur_test)
                rows.append(
                    f"| `{set_name}` | {r['videos']} | {sensitivity:g} | {'on' if blur_test else 'off'} | "
                    f"{100 * r['found'] / r['events']:.0f}% ({r['found']}/{r['events']}) | "
                    f"{r['false_alarms'] / r['videos']:.2f} ({r['false_alarms']}) | "
                    f"{r['objects_found']}/{r['objects']} |"
                )
    print("| set | videos | sensitivity | blur test | events found | false alarms / video (total) "
          "| objects found |")  # fmt: skip
    print("|---|---:|---:|---|---|---:|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
