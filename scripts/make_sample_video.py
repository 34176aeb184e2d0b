"""Build capsight's bundled demo video from photos that ship inside installed packages.

    .venv/bin/python scripts/make_sample_video.py                  # -> src/capsight/data/sample.mp4
    .venv/bin/python scripts/make_sample_video.py --out /tmp/s.mp4 --width 1280 --height 720

26 seconds, 480x270, 24 fps, H.264 (a few hundred KB). Each shot is one real photo filmed by a
virtual camera that pans, tilts or zooms over it; scikit-image ships the astronaut, coffee, cat
(chelsea) and rocket photos, scikit-learn the China temple and flower photos. What happens, so a
viewer of the demo report can check it:

    time (s)   event
    0 - 5      temple (China), slow pan right
    5          hard cut -> cat, slow zoom in; 7.0-8.0 s brightness flicker (nuisance)
    10         hard cut -> coffee cup, pan
    14 - 17    3-second cross-dissolve -> flower, zoom out; 18.5-19.5 s camera shake (nuisance)
    21         hard cut -> rocket, tilt up

The novel moments a good detector reports are 5, 10, ~15.5 (the dissolve) and 21 s; the flicker
and the shake are not events. ``render_shots`` is reused by ``benchmarks/speed.py`` for a longer
720p clip.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "src" / "capsight" / "data" / "sample.mp4"


def bundled_photos() -> dict[str, Image.Image]:
    """The real photos inside scikit-image and scikit-learn (no download)."""
    from skimage import data
    from sklearn.datasets import load_sample_images

    china, flower = load_sample_images().images
    photos = {
        "astronaut": data.astronaut(),
        "coffee": data.coffee(),
        "cat": data.chelsea(),
        "rocket": data.rocket(),
        "china": china,
        "flower": flower,
    }
    return {name: Image.fromarray(np.asarray(a)).convert("RGB") for name, a in photos.items()}


@dataclass(frozen=True)
class Shot:
    """One photo filmed for ``duration`` seconds with a camera moving from ``start`` to ``end``.

    A camera is ``(cx, cy, zoom)``: the crop centre as a fraction of the photo and the crop width
    as a fraction of the largest 16:9 crop that fits (1.0 = widest, 0.5 = 2x zoom).
    """

    photo: str
    duration: float
    start: tuple[float, float, float] = (0.5, 0.5, 0.9)
    end: tuple[float, float, float] = (0.5, 0.5, 0.9)
    dissolve_in: float = 0.0  # seconds of cross-dissolve from the previous shot (overlapping it)
    flicker: tuple[float, float] | None = None  # (from, to) seconds within the shot
    shake: tuple[float, float] | None = None


def _ease(t: float) -> float:
    return 0.5 - 0.5 * math.cos(math.pi * min(max(t, 0.0), 1.0))


def _camera_frame(
    photo: Image.Image,
    camera: tuple[float, float, float],
    size: tuple[int, int],
    offset: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    w, h = photo.size
    aspect = size[0] / size[1]
    full_w = min(w, h * aspect)
    crop_w = full_w * camera[2]
    crop_h = crop_w / aspect
    cx = min(max(camera[0] * w + offset[0], crop_w / 2), w - crop_w / 2)
    cy = min(max(camera[1] * h + offset[1], crop_h / 2), h - crop_h / 2)
    box = (cx - crop_w / 2, cy - crop_h / 2, cx + crop_w / 2, cy + crop_h / 2)
    return np.asarray(photo.resize(size, Image.BICUBIC, box=box))  # (H, W, 3) uint8


def shot_frames(
    shots: list[Shot],
    photos: dict[str, Image.Image],
    size: tuple[int, int],
    fps: int,
    seed: int = 0,
) -> tuple[int, Callable[[int], np.ndarray]]:
    """(frame count, frame_at(i) -> (H, W, 3) uint8): the shots laid end to end."""
    rng = np.random.default_rng(seed)
    starts, t = [], 0.0
    for shot in shots:
        t -= shot.dissolve_in  # a dissolve overlaps the previous shot's tail
        starts.append(t)
        t += shot.duration
    total = int(round(t * fps))
    shake_offsets = rng.normal(0, 1, size=(total, 2))

    def render(shot_index: int, frame_index: int) -> np.ndarray:
        shot = shots[shot_index]
        local = frame_index / fps - starts[shot_index]
        u = _ease(local / shot.duration)
        camera = tuple(a + (b - a) * u for a, b in zip(shot.start, shot.end, strict=True))
        offset = (0.0, 0.0)
        if shot.shake and shot.shake[0] <= local < shot.shake[1]:
            amplitude = 0.02 * photos[shot.photo].size[0]
            offset = tuple(amplitude * shake_offsets[frame_index])
        frame = _camera_frame(photos[shot.photo], camera, size, offset)
        if shot.flicker and shot.flicker[0] <= local < shot.flicker[1]:
            gain = 1.45 if frame_index % 3 == 0 else 0.6  # a failing lamp: bright, dim, dim
            frame = np.clip(frame.astype(np.float32) * gain, 0, 255).astype(np.uint8)
        return frame

    def frame_at(i: int) -> np.ndarray:
        t = i / fps
        active = [k for k, s in enumerate(starts) if s <= t < s + shots[k].duration]
        if not active:
            active = [len(shots) - 1]
        if len(active) == 2:  # inside a dissolve: blend the outgoing and the incoming shot
            old, new = active
            alpha = (t - starts[new]) / shots[new].dissolve_in
            a, b = render(old, i).astype(np.float32), render(new, i).astype(np.float32)
            return (a * (1 - alpha) + b * alpha).round().astype(np.uint8)
        return render(active[-1], i)

    return total, frame_at


def render_shots(
    shots: list[Shot],
    out: Path,
    width: int = 480,
    height: int = 270,
    fps: int = 24,
    crf: int = 28,
    seed: int = 0,
    keyframe_seconds: float = 2.0,
) -> Path:
    """Encode the shots as an H.264 mp4 (yuv420p, fast start) at ``out``."""
    import av

    photos = bundled_photos()
    total, frame_at = shot_frames(shots, photos, (width, height), fps, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(out), "w", options={"movflags": "+faststart"}) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {
            "crf": str(crf),
            "preset": "slow",
            "g": str(int(keyframe_seconds * fps)),
            "tune": "film",
        }
        for i in range(total):
            frame = av.VideoFrame.from_ndarray(frame_at(i), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out


SAMPLE_SHOTS = [
    Shot("china", 5.0, start=(0.35, 0.5, 0.75), end=(0.62, 0.48, 0.7)),
    Shot("cat", 5.0, start=(0.5, 0.5, 1.0), end=(0.5, 0.42, 0.6), flicker=(2.0, 3.0)),
    Shot("coffee", 7.0, start=(0.4, 0.5, 0.85), end=(0.6, 0.5, 0.8)),
    Shot(
        "flower",
        7.0,
        start=(0.5, 0.5, 0.55),
        end=(0.5, 0.5, 0.95),
        dissolve_in=3.0,
        shake=(4.5, 5.5),
    ),
    Shot("rocket", 5.0, start=(0.5, 0.7, 0.6), end=(0.5, 0.35, 0.6)),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--width", type=int, default=480)
    parser.add_argument("--height", type=int, default=270)
    parser.add_argument("--fps", type=int, default=24)
    parser.add_argument("--crf", type=int, default=28, help="x264 quality (lower = larger file)")
    args = parser.parse_args()
    path = render_shots(SAMPLE_SHOTS, args.out, args.width, args.height, args.fps, args.crf)
    print(f"{path}: {path.stat().st_size / 1024:.0f} KiB")


if __name__ == "__main__":
    main()
