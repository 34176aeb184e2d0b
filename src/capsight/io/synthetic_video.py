"""Test videos made from real photos, with known events and known nuisances.

    >>> from skimage import data
    >>> scenes = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    >>> video = make_synthetic_video("mix.mp4", scenes, objects=[data.cat()], seed=3)
    >>> [(e.kind, e.start, e.end) for e in video.events]
    [('cut', 9.2, 9.2), ('object', 14.1, 15.0), ('dissolve', 21.7, 24.7), ...]

A video is a sequence of *shots*; each shot films one photo with a slow camera move (pan and
zoom), so no shot is a still. Shots are joined by hard cuts or cross-dissolves. The *events* a
novelty detector must find are those joins and objects (another photo, cut out with a soft
elliptical edge) sliding into a continuing shot and staying. *Nuisances* it must ignore are laid
over the shots away from the events: brightness flicker, camera shake, sensor noise, blur and
darkening (a 1 s fade down, a hold, a 1 s fade back up). Everything is drawn from ``seed``, so a
seed and the photo lists give the same video (bit-exact frames before encoding) every time.

The file is H.264 (libx264, yuv420p) written with PyAV; ``write_video`` also writes arbitrary
frames with irregular timestamps (variable frame rate) or rotation metadata, for tests.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

import av
import numpy as np
from PIL import Image, ImageFilter

NUISANCE_KINDS = ("flicker", "shake", "noise", "blur", "darken")


@dataclass(frozen=True)
class Span:
    """Something that happens from ``start`` to ``end`` seconds (equal for a hard cut)."""

    kind: str
    start: float
    end: float
    strength: float = 0.0  # nuisance amplitude in its own unit (gain, pixels, sigma, ...)


@dataclass(frozen=True)
class SyntheticVideoConfig:
    duration: float = 50.0  # seconds
    width: int = 640
    height: int = 360
    fps: int = 25
    shot_seconds: tuple[float, float] = (7.0, 12.0)  # length of a shot before the next join
    dissolve_seconds: float = 3.0
    dissolve_share: float = 0.4  # fraction of joins that are dissolves, the rest are cuts
    object_share: float = 0.5  # fraction of long-enough shots an object slides into
    object_height: tuple[float, float] = (0.35, 0.55)  # object size, fraction of frame height
    nuisances: tuple[int, int] = (3, 5)  # how many nuisances per video (inclusive range)
    nuisance_kinds: tuple[str, ...] = NUISANCE_KINDS
    nuisance_gap: float = 2.0  # seconds kept between a nuisance and any event
    nuisance_scale: float = 1.0  # multiplies every nuisance's amplitude (stress tests)
    grain_share: float = 0.0  # chance the whole video carries light sensor noise
    camera_motion: float = 1.0  # 0 = locked-off camera, 1 = the default slow pan and zoom
    crf: int = 23
    preset: str = "veryfast"


@dataclass(frozen=True)
class SyntheticVideo:
    path: str
    config: SyntheticVideoConfig
    seed: int
    events: list[Span]
    nuisances: list[Span]
    shots: list[Span] = field(default_factory=list)  # kind = index of the scene photo


# ---------------------------------------------------------------- writing frames


def write_video(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray],
    fps: float = 25,
    times: Sequence[float] | None = None,
    rotation: int = 0,
    crf: int = 23,
    preset: str = "veryfast",
    codec: str = "libx264",
) -> None:
    """Encode RGB uint8 frames (H, W, 3) as H.264 yuv420p.

    ``times`` (seconds, increasing) gives each frame its own presentation time, which makes a
    variable-frame-rate file; ``rotation`` (degrees counter-clockwise, as PyAV reports it) is
    written as display-matrix metadata.
    """
    rate = Fraction(fps).limit_denominator(1001)
    time_base = Fraction(1, 1000) if times is not None else 1 / rate
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.pix_fmt = "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        if codec == "libx264":
            stream.options = {"crf": str(crf), "preset": preset}
        if rotation:
            stream.set_display_rotation(rotation)
        opened = False
        for i, rgb in enumerate(frames):
            if not opened:
                stream.height, stream.width = rgb.shape[:2]
                opened = True
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.time_base = time_base
            frame.pts = int(round(times[i] / time_base)) if times is not None else i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


# ---------------------------------------------------------------- planning


def _as_rgb(photo: np.ndarray | Image.Image) -> Image.Image:
    img = photo if isinstance(photo, Image.Image) else Image.fromarray(np.asarray(photo))
    return img.convert("RGB")


@dataclass(frozen=True)
class _Shot:
    scene: int
    start: float  # first frame of the shot (inside the dissolve that brings it in)
    end: float  # last frame (end of the dissolve that takes it out)
    zoom: tuple[float, float]  # crop zoom at start and end (1 = whole photo width)
    center: tuple[tuple[float, float], tuple[float, float]]  # crop centre, start and end (0..1)
    object_index: int = -1
    object_span: tuple[float, float] = (0.0, 0.0)
    object_side: int = 1  # +1 slides in from the right, -1 from the left
    object_height: float = 0.4  # fraction of the frame height
    object_y: float = 0.5  # vertical centre, fraction of the frame height


def _plan(
    cfg: SyntheticVideoConfig, n_scenes: int, n_objects: int, rng: np.random.Generator
) -> tuple[list[_Shot], list[Span], list[Span]]:
    order = rng.permutation(n_scenes)
    shots: list[_Shot] = []
    events: list[Span] = []
    t = 0.0
    while True:
        length = float(rng.uniform(*cfg.shot_seconds))
        end = t + length
        if end > cfg.duration - 4.0:  # the last shot runs to the end
            end = cfg.duration
        shots.append(_new_shot(cfg, int(order[len(shots) % n_scenes]), t, end, rng))
        if end >= cfg.duration:
            break
        if rng.random() < cfg.dissolve_share:
            d = cfg.dissolve_seconds
            shots[-1] = replace(shots[-1], end=end + d)
            events.append(Span("dissolve", round(end, 3), round(end + d, 3)))
            t = end  # the next shot starts fading in here
        else:
            events.append(Span("cut", round(end, 3), round(end, 3)))
            t = end
    # Objects slide into shots that are long enough to show them settle.
    joins = sorted(events, key=lambda e: e.start)
    for i, shot in enumerate(shots):
        if n_objects == 0 or rng.random() >= cfg.object_share:
            continue
        clean_from = (
            max(
                [e.end for e in joins if e.end <= shot.start + cfg.dissolve_seconds + 1e-6]
                + [shot.start]
            )
            + 2.5
        )
        clean_to = (
            min([e.start for e in joins if e.start >= shot.start + 1e-6] + [cfg.duration]) - 4.0
        )
        if clean_to - clean_from < 0.5:
            continue
        enter = float(rng.uniform(clean_from, clean_to))
        slide = float(rng.uniform(0.6, 1.6))
        shots[i] = replace(
            shot,
            object_index=int(rng.integers(n_objects)),
            object_span=(enter, enter + slide),
            object_side=int(rng.choice([-1, 1])),
            object_height=float(rng.uniform(*cfg.object_height)),
            object_y=float(rng.uniform(0.4, 0.6)),
        )
        events.append(Span("object", round(enter, 3), round(enter + slide, 3)))
    events.sort(key=lambda e: e.start)
    nuisances = _plan_nuisances(cfg, events, rng)
    return shots, events, nuisances


def _new_shot(cfg: SyntheticVideoConfig, scene: int, start: float, end: float, rng) -> _Shot:
    m = cfg.camera_motion
    z0 = 1.0 + m * float(rng.uniform(0.05, 0.3))
    z1 = max(1.0, z0 + m * float(rng.uniform(-0.15, 0.15)))
    c0 = (0.5 + m * float(rng.uniform(-0.08, 0.08)), 0.5 + m * float(rng.uniform(-0.08, 0.08)))
    c1 = (c0[0] + m * float(rng.uniform(-0.1, 0.1)), c0[1] + m * float(rng.uniform(-0.06, 0.06)))
    return _Shot(scene, start, end, (z0, z1), (c0, c1))


_NUISANCE_SECONDS = {
    "flicker": (1.0, 3.0),
    "shake": (1.0, 4.0),
    "noise": (2.0, 6.0),
    "blur": (1.0, 4.0),
    "darken": (3.0, 8.0),
}


def _nuisance_strength(kind: str, rng: np.random.Generator, scale: float = 1.0) -> float:
    value = {
        "flicker": lambda: rng.uniform(0.2, 0.45),  # +- relative gain per frame
        "shake": lambda: rng.uniform(0.01, 0.035),  # offset, fraction of the frame width
        "noise": lambda: rng.uniform(8, 25),  # gaussian sigma, 0..255 units
        "blur": lambda: rng.uniform(0.004, 0.012),  # gaussian radius, fraction of width
        "darken": lambda: rng.uniform(0.25, 0.55),  # gain reached while dark
    }[kind]()
    if kind == "darken":  # scale the loss of light, not the remaining gain
        return float(max(0.05, 1.0 - (1.0 - value) * scale))
    if kind == "flicker":
        return float(min(0.9, value * scale))
    return float(value * scale)


def _plan_nuisances(cfg: SyntheticVideoConfig, events: list[Span], rng) -> list[Span]:
    lo, hi = cfg.nuisances
    count = int(rng.integers(lo, hi + 1)) if hi > 0 else 0
    kinds = list(rng.permutation(cfg.nuisance_kinds)) if cfg.nuisance_kinds else []
    placed: list[Span] = []
    for n in range(count):
        kind = str(kinds[n % len(kinds)])
        for _attempt in range(50):
            length = float(rng.uniform(*_NUISANCE_SECONDS[kind]))
            if cfg.duration - length - 0.5 <= 1.0:  # too long for this video
                continue
            start = float(rng.uniform(1.0, cfg.duration - length - 0.5))
            end = start + length
            clear = all(
                end + cfg.nuisance_gap < e.start or start - cfg.nuisance_gap > e.end for e in events
            ) and all(end + 0.5 < p.start or start - 0.5 > p.end for p in placed)
            if clear:
                placed.append(
                    Span(
                        kind,
                        round(start, 3),
                        round(end, 3),
                        _nuisance_strength(kind, rng, cfg.nuisance_scale),
                    )
                )
                break
    if rng.random() < cfg.grain_share:
        placed.append(Span("grain", 0.0, cfg.duration, float(rng.uniform(4, 10))))
    return sorted(placed, key=lambda s: s.start)


# ---------------------------------------------------------------- rendering


class _Renderer:
    def __init__(self, cfg, scenes, objects, shots, nuisances, rng) -> None:
        self.cfg = cfg
        self.W, self.H = cfg.width, cfg.height
        self.shots = shots
        self.nuisances = nuisances
        self.rng = rng
        # Scene photos at a working size big enough for the tightest zoom.
        scale_w = self.W * 1.05
        self.scenes = []
        for photo in scenes:
            img = _as_rgb(photo)
            s = max(scale_w / img.width, self.H * 1.05 / img.height)
            self.scenes.append(
                img.resize((round(img.width * s), round(img.height * s)), Image.LANCZOS)
            )
        self.objects = [_cutout(_as_rgb(o)) for o in objects]
        self._object_cache: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        # A bank of noise fields, picked and shifted per frame (cheaper than drawing afresh).
        self.noise_bank = rng.standard_normal((6, self.H + 16, self.W + 16, 3)).astype(np.float32)

    def _object_visible(self, shot: _Shot, t: float) -> bool:
        return shot.object_index >= 0 and t >= shot.object_span[0]

    def _camera(self, shot: _Shot, t: float, shift: tuple[float, float]) -> np.ndarray:
        return np.asarray(self._camera_image(shot, t, shift), dtype=np.float32)

    def _camera_image(self, shot: _Shot, t: float, shift: tuple[float, float]) -> Image.Image:
        img = self.scenes[shot.scene]
        u = 0.0 if shot.end <= shot.start else (t - shot.start) / (shot.end - shot.start)
        u = min(max(u, 0.0), 1.0)
        zoom = shot.zoom[0] + (shot.zoom[1] - shot.zoom[0]) * u
        cx = shot.center[0][0] + (shot.center[1][0] - shot.center[0][0]) * u
        cy = shot.center[0][1] + (shot.center[1][1] - shot.center[0][1]) * u
        # Crop window with the video's aspect ratio, 1/zoom of the largest that fits.
        aspect = self.W / self.H
        cw = min(img.width, img.height * aspect) / zoom
        ch = cw / aspect
        x0 = min(max(cx * img.width - cw / 2 + shift[0] * cw, 0), img.width - cw)
        y0 = min(max(cy * img.height - ch / 2 + shift[1] * cw, 0), img.height - ch)
        return img.resize((self.W, self.H), Image.BILINEAR, box=(x0, y0, x0 + cw, y0 + ch))

    def _object_layer(self, index: int, height: int) -> tuple[np.ndarray, np.ndarray]:
        key = (index, height)
        if key not in self._object_cache:
            rgba = self.objects[index]
            w = min(round(rgba.width * height / rgba.height), int(self.W * 0.5))
            resized = np.asarray(rgba.resize((w, height), Image.LANCZOS), dtype=np.float32)
            self._object_cache[key] = (resized[..., :3], resized[..., 3:] / 255.0)
        return self._object_cache[key]

    def _shot_frame(self, shot: _Shot, t: float, shift: tuple[float, float]) -> np.ndarray:
        frame = self._camera(shot, t, shift)
        if self._object_visible(shot, t):
            a, b = shot.object_span
            u = 1.0 if t >= b else (t - a) / (b - a)
            u = 1 - (1 - u) ** 2  # ease out: the object slows down as it arrives
            rgb, alpha = self._object_layer(shot.object_index, round(self.H * shot.object_height))
            oh, ow = alpha.shape[:2]
            final_x = 0.62 * self.W if shot.object_side > 0 else 0.38 * self.W - ow
            start_x = self.W if shot.object_side > 0 else -ow
            x = int(round(start_x + (final_x - start_x) * u + shift[0] * self.W))
            y = int(round(shot.object_y * self.H - oh / 2 + shift[1] * self.W))
            _paste(frame, rgb, alpha, x, y)
        return frame

    def frame(self, t: float) -> np.ndarray:
        active = {s.kind: s for s in self.nuisances if s.start <= t <= s.end}
        shift = (0.0, 0.0)
        if "shake" in active:
            a = active["shake"].strength
            shift = (float(self.rng.uniform(-a, a)), float(self.rng.uniform(-a, a) * 0.7))
        current = [s for s in self.shots if s.start <= t < s.end] or [self.shots[-1]]
        plain = len(current) == 1 and not active and not self._object_visible(current[0], t)
        if plain:  # most frames: the camera view as is, no float arithmetic
            return np.asarray(self._camera_image(current[0], t, shift))
        if len(current) == 1:
            frame = self._shot_frame(current[0], t, shift)
        else:  # inside a dissolve: the later shot fades in linearly
            old, new = current[0], current[-1]
            alpha = (t - new.start) / (old.end - new.start)
            frame = (1 - alpha) * self._shot_frame(old, t, shift) + alpha * self._shot_frame(
                new, t, shift
            )
        gain = 1.0
        for kind, span in active.items():
            if kind == "flicker":
                gain *= 1.0 + float(self.rng.uniform(-span.strength, span.strength))
            elif kind == "darken":
                ramp = min(1.0, span.end - span.start) / 1.0
                u = min((t - span.start) / ramp, (span.end - t) / ramp, 1.0)
                gain *= 1.0 - (1.0 - span.strength) * max(u, 0.0)
        if gain != 1.0:
            frame = frame * gain
        if "blur" in active:
            span = active["blur"]
            u = min((t - span.start) / 0.3, (span.end - t) / 0.3, 1.0)  # 0.3 s focus ramps
            radius = span.strength * self.W * max(u, 0.0)
            if radius > 0.3:
                img = Image.fromarray(np.clip(frame, 0, 255).astype(np.uint8))
                frame = np.asarray(img.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32)
        sigma = sum(s.strength for k, s in active.items() if k in ("noise", "grain"))
        if sigma:
            field = self.noise_bank[int(self.rng.integers(len(self.noise_bank)))]
            dy, dx = (int(v) for v in self.rng.integers(0, 16, size=2))
            frame = frame + sigma * field[dy : dy + self.H, dx : dx + self.W]
        return np.clip(frame + 0.5, 0, 255).astype(np.uint8)


def _cutout(img: Image.Image) -> Image.Image:
    """The photo's central object region with a soft elliptical alpha edge (RGBA)."""
    w, h = img.size
    side_w, side_h = int(w * 0.8), int(h * 0.8)
    img = img.crop(((w - side_w) // 2, (h - side_h) // 2, (w + side_w) // 2, (h + side_h) // 2))
    yy, xx = np.mgrid[0:side_h, 0:side_w]
    r = np.sqrt(((xx + 0.5) / side_w * 2 - 1) ** 2 + ((yy + 0.5) / side_h * 2 - 1) ** 2)
    alpha = np.clip((1.0 - r) / 0.12, 0, 1)  # (h, w) opaque centre, 12% feathered rim
    rgba = np.dstack([np.asarray(img), (alpha * 255).astype(np.uint8)])
    return Image.fromarray(rgba, "RGBA")


def _paste(frame: np.ndarray, rgb: np.ndarray, alpha: np.ndarray, x: int, y: int) -> None:
    H, W = frame.shape[:2]
    h, w = alpha.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x1 <= x0 or y1 <= y0:
        return
    a = alpha[y0 - y : y1 - y, x0 - x : x1 - x]  # (h', w', 1)
    region = frame[y0:y1, x0:x1]
    region[:] = region * (1 - a) + rgb[y0 - y : y1 - y, x0 - x : x1 - x] * a


def make_synthetic_video(
    path: str | os.PathLike,
    scenes: Sequence[np.ndarray | Image.Image],
    objects: Sequence[np.ndarray | Image.Image] = (),
    seed: int = 0,
    config: SyntheticVideoConfig | None = None,
) -> SyntheticVideo:
    """Render and encode a video; return its events and nuisances (times in seconds)."""
    renderer, video = _planned_video(str(path), scenes, objects, seed, config)
    cfg = video.config
    n_frames = int(math.floor(cfg.duration * cfg.fps + 1e-9))
    frames = (renderer.frame(i / cfg.fps) for i in range(n_frames))
    write_video(path, frames, fps=cfg.fps, crf=cfg.crf, preset=cfg.preset)
    return video


def _planned_video(path, scenes, objects, seed, config) -> tuple[_Renderer, SyntheticVideo]:
    """Plan shots, events and nuisances for ``seed``; return the renderer and the plan."""
    cfg = config or SyntheticVideoConfig()
    if len(scenes) < 2:
        raise ValueError("a synthetic video needs at least two scene photos")
    rng = np.random.default_rng(seed)
    shots, events, nuisances = _plan(cfg, len(scenes), len(objects), rng)
    renderer = _Renderer(cfg, scenes, objects, shots, nuisances, rng)
    shot_spans = [Span(str(s.scene), round(s.start, 3), round(s.end, 3)) for s in shots]
    return renderer, SyntheticVideo(path, cfg, seed, events, nuisances, shot_spans)


def render_synthetic_frames(
    times: Sequence[float],
    scenes: Sequence[np.ndarray | Image.Image],
    objects: Sequence[np.ndarray | Image.Image] = (),
    seed: int = 0,
    config: SyntheticVideoConfig | None = None,
) -> tuple[list[np.ndarray], SyntheticVideo]:
    """The frames (H, W, 3) at ``times`` of the video ``make_synthetic_video`` would plan for
    this seed, without encoding a file: a fast way to study many videos at one frame per second.
    Same events and nuisances; the per-frame random draws (shake offsets, flicker gains, noise
    fields) differ from the encoded video's, and there are no compression artefacts."""
    renderer, video = _planned_video("", scenes, objects, seed, config)
    return [renderer.frame(float(t)) for t in times], video
