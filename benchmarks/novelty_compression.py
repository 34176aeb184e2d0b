"""Novelty under compression: do the novel moments stay put when a video is re-encoded worse?

    nice -n 15 .venv/bin/python benchmarks/novelty_compression.py -v
    .venv/bin/python benchmarks/novelty_compression.py --sets real --levels crf36 crf44

The original projects flagged moments that were only small image changes. Heavy compression is
the commonest such change in real footage (blocking, smeared detail, "breathing" keyframes), so
this re-encodes every video with libx264 at a ladder of settings (``LEVELS``: constant rate
factor 28, 36 and 44 at full size, and half the size at CRF 36) and runs ``analyze_video`` with
its defaults on each copy. It prints, per set and level:

- events found and false alarms, scored as ``novelty_quality.py`` scores them (a novel moment
  within 1.5 s of an event's interval; only for videos with annotated events);
- agreement with the same video's original encoding: of the original's novel moments, how many
  have one within 1 s in the copy (kept), and how many of the copy's have none in the original
  (new). This needs no annotation, so it covers every clip in ``../shared/data/videos``.

Sets: ``real`` (the 12 clips in ``../shared/data/videos``, 10 of them annotated: 7 in its
``truth.json``, 3 in ``annotations.json`` here) and ``holdout``
(``novelty_quality.py``'s 8 generated videos, made on first use under ``cache/novelty_bench/``).
Copies are cached under ``cache/novelty_compression/``. The fused selection does not read
captions, so the fast ``labels`` captioner gives the same novel moments as the default one.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from novelty_quality import generated_videos, match, real_videos  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
CACHE = ROOT / "cache" / "novelty_compression"
AGREE = 1.0  # seconds between an original's novel moment and the copy's


@dataclass(frozen=True)
class Level:
    crf: int
    scale: float = 1.0


LEVELS = {
    "crf28": Level(28),
    "crf36": Level(36),
    "crf44": Level(44),
    "half-crf36": Level(36, 0.5),
}


def _even(n: float) -> int:
    return max(2, int(round(n / 2)) * 2)


def _upright(frame: av.VideoFrame, sar: Fraction) -> np.ndarray:
    """The frame as a player shows it: square pixels, rotation applied (as capsight.io.video)."""
    try:  # read before reformat, whose new frame carries no display matrix
        turns = int(round(-float(frame.rotation) / 90.0)) % 4  # clockwise quarter turns
    except (AttributeError, ValueError):
        turns = 0
    if sar != 1:
        frame = frame.reformat(width=_even(frame.width * sar), height=frame.height)
    rgb = frame.to_ndarray(format="rgb24")
    return np.ascontiguousarray(np.rot90(rgb, k=-turns)) if turns else rgb


def reencode(src: str, level_name: str) -> Path:
    """``src`` decoded and encoded again at ``level_name``: upright, square pixels (rotation and
    the sample aspect ratio applied), the original presentation times kept (variable frame
    rates stay variable). Cached."""
    level = LEVELS[level_name]
    out = CACHE / level_name / Path(src).name
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial.mp4")
    with av.open(src) as inp, av.open(str(partial), "w") as dst:
        in_stream = inp.streams.video[0]
        sar = in_stream.sample_aspect_ratio or in_stream.codec_context.sample_aspect_ratio
        sar = Fraction(sar) if sar and sar > 0 else Fraction(1)
        rate = Fraction(in_stream.average_rate or 25).limit_denominator(1001)
        time_base = in_stream.time_base or Fraction(1, 1000)
        stream = dst.add_stream("libx264", rate=rate)
        stream.pix_fmt = "yuv420p"
        stream.time_base = time_base
        stream.codec_context.time_base = time_base
        stream.options = {"crf": str(level.crf), "preset": "veryfast"}
        opened = False
        last_pts = None
        for frame in inp.decode(in_stream):
            if frame.pts is None or (last_pts is not None and frame.pts <= last_pts):
                continue
            last_pts = frame.pts
            rgb = _upright(frame, sar)
            if not opened:
                h, w = rgb.shape[:2]
                stream.height, stream.width = _even(h * level.scale), _even(w * level.scale)
                opened = True
            new = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            if new.width != stream.width or new.height != stream.height:
                new = new.reformat(width=stream.width, height=stream.height)
            new.time_base = time_base
            new.pts = frame.pts
            for packet in stream.encode(new):
                dst.mux(packet)
        for packet in stream.encode():
            dst.mux(packet)
    partial.replace(out)
    return out


def detections(path: str | Path) -> list[float]:
    from capsight.novelty.pipeline import analyze_video

    analysis = analyze_video(path, captioner="labels", thumbnail_size=None)
    return [m.time for m in analysis.novel_moments]


def all_real_videos() -> list[dict]:
    """Every clip in ../shared/data/videos; ``events`` is None where none are annotated."""
    annotated = {Path(v["path"]).name: v for v in real_videos()}
    return [
        annotated.get(p.name, {"path": str(p), "events": None, "nuisances": []})
        for p in sorted((DATA / "videos").glob("*.mp4"))
    ]


def _near(t: float, times: list[float]) -> bool:
    return any(abs(t - u) <= AGREE for u in times)


def score_level(
    videos: list[dict], originals: dict[str, list[float]], level: str | None, verbose: bool
) -> dict:
    found = events = false_alarms = annotated = kept = new = 0
    reference = 0
    for video in videos:
        got = (
            originals[video["path"]]
            if level is None
            else detections(reencode(video["path"], level))
        )
        base = originals[video["path"]]
        if video["events"] is not None:
            hits, extra = match(got, video["events"])
            found += sum(hits)
            events += len(hits)
            false_alarms += len(extra)
            annotated += 1
        reference += len(base)
        kept += sum(_near(t, got) for t in base)
        added = [t for t in got if not _near(t, base)]
        new += len(added)
        if verbose and level is not None:
            lost = [t for t in base if not _near(t, got)]
            if lost or added:
                print(
                    f"  {level} {Path(video['path']).name}: lost {lost}, new {added}",
                    file=sys.stderr,
                )
    return {
        "found": found, "events": events, "false_alarms": false_alarms, "annotated": annotated,
        "kept": kept, "reference": reference, "new": new, "videos": len(videos),
    }  # fmt: skip


def _row(set_label: str, level: str, r: dict) -> str:
    if r["events"]:
        events = f"{100 * r['found'] / r['events']:.0f}% ({r['found']}/{r['events']})"
        alarms = f"{r['false_alarms'] / r['annotated']:.2f} ({r['false_alarms']})"
    else:
        events = alarms = "-"
    kept = f"{r['kept']}/{r['reference']}" if r["reference"] else "-"
    return f"| {set_label} | {level} | {events} | {alarms} | {kept} | {r['new']} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sets",
        nargs="+",
        default=["real", "holdout"],
        choices=["real", "holdout", "dev", "fresh"],
    )
    parser.add_argument("--levels", nargs="+", default=list(LEVELS), choices=list(LEVELS))
    parser.add_argument("--verbose", "-v", action="store_true", help="per-video changes on stderr")
    args = parser.parse_args(argv)
    rows = []
    for set_name in args.sets:
        videos = all_real_videos() if set_name == "real" else generated_videos(set_name)
        if not videos:
            print(f"{set_name}: no videos (../shared/data missing?), skipped", file=sys.stderr)
            continue
        label = {"real": "real clips", "holdout": "generated, held out", "dev": "generated, dev",
                 "fresh": "generated, fresh"}[set_name] + f", {len(videos)} videos"  # fmt: skip
        t0 = time.perf_counter()
        originals = {v["path"]: detections(v["path"]) for v in videos}
        rows.append(_row(label, "original", score_level(videos, originals, None, False)))
        for level in args.levels:
            rows.append(_row(label, level, score_level(videos, originals, level, args.verbose)))
        print(f"{set_name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    print(
        "| videos | encoding | events found (within 1.5 s) | false alarms / annotated video "
        f"(total) | original's novel moments kept (within {AGREE:g} s) | new novel moments |"
    )
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
