"""``capsight video``: find the novel moments of a video and write the report.

    $ capsight video clip.mp4 --out out/clip
    clip.mp4: 00:26, 480x270 at 24 fps; 26 moments, one every 1 s
    4 novel moments:
      00:05  2.44  a little boy is playing with a toy
      ...
    report: out/clip/report.html

Writes analysis.json, moments.csv, novelty.png, report.html and captions.vtt into ``--out``.
``--json`` prints analysis.json (plus where each output went) on stdout instead of the summary.
Option values are passed to the library unchanged; it validates them (``InvalidParameter``).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "video",
        help="find the novel moments of a video and write a report",
        description=(
            "Sample a video every --every seconds, caption each moment, score how unlike the "
            "previous --window moments it is, pick the novel moments, and write analysis.json, "
            "moments.csv, novelty.png, report.html and captions.vtt into --out."
        ),
    )
    p.add_argument("video", metavar="VIDEO", help="video file (anything FFmpeg reads)")
    p.add_argument(
        "--out", metavar="DIR", type=_folder, default=None,
        help="output folder (default: out/<video name>)",
    )
    p.add_argument("--every", type=float, default=1.0, metavar="SECONDS",
                   help="seconds between sampled moments (default: 1.0)")
    p.add_argument("--window", type=int, default=5, metavar="K",
                   help="each moment is compared with the mean of the previous K (default: 5)")
    p.add_argument("--metric", default="cosine", metavar="{cosine,euclidean}",
                   help="distance to the window mean: cosine or euclidean (default: cosine)")
    p.add_argument("--signal", default="fused", metavar="{fused,text,visual}",
                   help="what is compared: caption embedding (text), image embedding (visual) "
                        "or both (fused, default)")
    p.add_argument("--sensitivity", type=float, default=0.5, metavar="S",
                   help="0 = only the strongest changes .. 1 = every plausible change "
                        "(default: 0.5)")
    p.add_argument("--model", default="default", metavar="NAME",
                   help="captioner (see `capsight models`; default: the best installed)")
    p.add_argument("--greedy", action="store_true",
                   help="caption greedily instead of with the captioner's default beam search: "
                        "a little faster, captions a little worse")
    p.add_argument("--text-embedder", default="minilm", metavar="NAME",
                   help="caption embedder for the text signal: minilm or word-mean "
                        "(default: minilm)")
    p.add_argument("--encoder", default="efficientnet-lite0", metavar="NAME",
                   help="image encoder (default: efficientnet-lite0)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, no summary")
    p.add_argument("--json", action="store_true",
                   help="print analysis.json on stdout instead of the summary")
    return p


def _folder(text: str) -> Path:
    # An empty --out (an unset shell variable) would be Path("."): the report would land in the
    # current folder unasked.
    if not text.strip():
        raise argparse.ArgumentTypeError("--out needs a folder name, got an empty string")
    return Path(text)


def run(args: argparse.Namespace) -> int:
    from capsight._cli.progress_bar import ProgressBar
    from capsight.novelty.pipeline import analyze_video
    from capsight.novelty.reports import check_output_dir, preload_plotting, write_outputs

    out_dir = args.out if args.out is not None else Path("out") / Path(args.video).stem
    check_output_dir(out_dir)  # before the analysis, which a bad --out would waste
    started = time.perf_counter()
    with ProgressBar(enabled=ProgressBar.wanted(args.quiet)) as bar:
        preloading: list[threading.Thread] = []

        def on_progress(fraction: float, message: str) -> None:
            # Importing matplotlib (pure Python) overlaps the analysis' decoding and model work.
            # It starts at the first report, once the decoder has started: a one-thread process
            # can fork its decoder (capsight.novelty.frames), which saves ~0.25 s.
            if not preloading:
                preloading.append(threading.Thread(target=preload_plotting, daemon=True))
                preloading[0].start()
            bar(fraction, message)

        analysis = analyze_video(
            args.video,
            every=args.every,
            window=args.window,
            metric=args.metric,
            signal=args.signal,
            sensitivity=args.sensitivity,
            captioner=args.model,
            greedy=args.greedy,
            text_embedder=args.text_embedder,
            encoder=args.encoder,
            progress=on_progress,
        )
        on_progress(1.0, "writing report")
        outputs = write_outputs(analysis, out_dir)
    elapsed = time.perf_counter() - started

    if args.json:
        data = analysis.to_dict()
        data["outputs"] = {name: str(path) for name, path in outputs.items()}
        json.dump(data, sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif not args.quiet:
        print(format_summary(analysis, outputs, elapsed))
    return 0


def format_summary(analysis, outputs: dict[str, Path], elapsed: float | None = None) -> str:
    """The few lines a person reads after a run: facts, novel moments, where the report is."""
    from capsight.novelty.reports import moment_clock

    v, p = analysis.video, analysis.params
    clock = moment_clock(analysis)
    n = len(analysis.moments)
    pace = f"one every {p.every:g} s"
    if v.fps and p.every < 1.0 / v.fps:
        pace = f"every frame (--every {p.every:g} s is shorter than a frame)"
    lines = [
        f"{Path(v.path).name}: {clock(v.duration)}, {v.width}x{v.height} at "
        f"{round(v.fps, 2):g} fps; {n} moment{'s' if n != 1 else ''}, {pace}"
    ]
    novel = analysis.novel_moments
    if novel:
        lines.append(f"{len(novel)} novel moment{'s' if len(novel) != 1 else ''}:")
        for m in novel:
            score = f"{m.novelty:.2f}" if m.novelty is not None else "  - "
            lines.append(f"  {clock(m.time)}  {score}  {m.caption}")
    else:
        lines.append(f"no novel moments: {analysis.quiet_reason()}")
    if elapsed is not None and elapsed > 0 and v.duration >= 1.0:
        lines.append(f"analysed in {elapsed:.1f} s ({v.duration / elapsed:.1f}x real time)")
    report = outputs.get("report.html")
    if report is not None:
        others = ", ".join(name for name in outputs if name != "report.html")
        lines.append(f"report: {report}  (also {others} in {report.parent})")
    return "\n".join(lines)
