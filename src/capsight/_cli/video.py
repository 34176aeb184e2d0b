"""``capsight video``: find the novel moments of a video and write the report.

    $ capsight video clip.mp4 --out out/clip
    clip.mp4: 00:26, 480x270 at 24 fps; 26 moments, one every 1 s
    4 novel moments (time, novelty x a typical moment, caption):
      00:05  2.44  a little boy is playing with a toy
      ...
    report: out/clip/report.html

Writes analysis.json, moments.csv, novelty.png, report.html and captions.vtt into ``--out``.
``--json`` prints analysis.json (plus where each output went) on stdout instead of the summary;
with several videos a list, a video that failed as ``{"video": {"path"}, "error"}`` in its place.
Option values are passed to the library unchanged; it validates them (``InvalidParameter``).

Several videos (or folders of them) are analysed one after the other with the models loaded
once, each into ``--out``/<video name>/ (default ``out/``), with ``summary.csv`` there: one row
per video. A video that fails gets one error line and the others go on (exit status 2).
``--workers N`` analyses N at once on a process pool, ``--ray ADDRESS`` on Ray (capsight.batch).

    $ capsight video archive/ --out out/archive --workers 4
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from pathlib import Path

from capsight._cli.shown_names import shown_name


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
    p.add_argument(
        "videos",
        metavar="VIDEO",
        nargs="+",
        help="video file (anything FFmpeg reads), or several, or folders of them",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        type=_folder,
        default=None,
        help="output folder (default: out/<video name>); with several videos, each goes into "
        "DIR/<video name>/ (default: out/) beside summary.csv",
    )
    p.add_argument(
        "--every",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between sampled moments (default: 1.0)",
    )
    p.add_argument(
        "--window",
        type=int,
        default=5,
        metavar="K",
        help="each moment is compared with the mean of the previous K (default: 5)",
    )
    p.add_argument(
        "--metric",
        default="cosine",
        metavar="{cosine,euclidean}",
        help="distance to the window mean: cosine or euclidean (default: cosine)",
    )
    p.add_argument(
        "--signal",
        default="fused",
        metavar="{fused,text,visual}",
        help="what is compared: caption embedding (text), image embedding (visual) "
        "or both (fused, default)",
    )
    p.add_argument(
        "--sensitivity",
        type=float,
        default=0.5,
        metavar="S",
        help="0 = only the strongest changes .. 1 = every plausible change (default: 0.5)",
    )
    p.add_argument(
        "--model",
        default="default",
        metavar="NAME",
        help="captioner (see `capsight models`; default: show-attend-tell, which reads the "
        "encoding the novelty signals need; the photo default if it is missing)",
    )
    p.add_argument(
        "--greedy",
        action="store_true",
        help="caption greedily instead of with the captioner's default beam search: "
        "a little faster, captions a little worse",
    )
    p.add_argument(
        "--text-embedder",
        default="minilm",
        metavar="NAME",
        help="caption embedder for the text signal: minilm or word-mean, the original "
        "project's, for comparison (the thresholds are MiniLM's: with --signal text "
        "it misses most changes) (default: minilm)",
    )
    p.add_argument(
        "--encoder",
        default="efficientnet-lite0",
        metavar="NAME",
        help="image encoder (default: efficientnet-lite0)",
    )
    p.add_argument(
        "--workers",
        type=int,
        default=1,
        metavar="N",
        help="with several videos: analyse N at once, each in a process of its own that loads "
        "the models (or N Ray actors with --ray); on 2 cores, 2 were 1.3x faster than 1 "
        "(default: 1, one after the other)",
    )
    p.add_argument(
        "--ray",
        metavar="ADDRESS",
        default=None,
        help="with several videos: run them on Ray (pip install 'capsight[ray]'): 'auto' joins this "
        "machine's cluster, 'local' starts Ray here, a ray:// address, or a head node's "
        "HOST:PORT; every node must see the videos and --out at the same paths",
    )
    p.add_argument(
        "--quiet", "-q", action="store_true", help="no progress bar, no summary, no notes"
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="print analysis.json on stdout instead of the summary (several videos: a list, "
        'a failed one as {"video": {"path"}, "error"})',
    )
    return p


def _folder(text: str) -> Path:
    # An empty --out (an unset shell variable) would be Path("."): the report would land in the
    # current folder unasked.
    if not text.strip():
        raise argparse.ArgumentTypeError("--out needs a folder name, got an empty string")
    if text == "-":  # not standard output: a folder named "-" had been made
        raise argparse.ArgumentTypeError("--out -: the report is five files, so --out names a "
                                         "folder; --json prints analysis.json on stdout")  # fmt: skip
    path = Path(text)
    # "report.html/": as the user says
    marked_folder = text.endswith(("/", os.sep)) or path.is_dir()
    if path.suffix.lower() in _FILE_SUFFIXES and not marked_folder:
        raise argparse.ArgumentTypeError(f"--out {text}: names a folder, not a file: report.html "
                                         f"and the rest go inside it (try --out {path.with_suffix('')})")  # fmt: skip
    return path


# An --out ending in one of these is meant as a file: it would be made a folder of that name.
_FILE_SUFFIXES = {".html", ".htm", ".json", ".csv", ".png", ".vtt", ".txt", ".pdf"}


def run(args: argparse.Namespace) -> int:
    from capsight._cli.main import error_line
    from capsight.batch import check_workers
    from capsight.errors import InputNotFound, InvalidParameter
    from capsight.ort.video import check_runtime_settings

    check_workers(args.workers)  # with one video too: a typo is said, not ignored
    check_runtime_settings()  # once, before any video (a folder's had said it per video)
    if args.ray is not None and not args.ray.strip():
        raise InvalidParameter("--ray needs a Ray address: auto, local or ray://HOST:PORT")
    videos, problems = expand_video_args(args.videos)
    for _, problem in problems:
        print(error_line(problem), file=sys.stderr)
    if args.text_embedder == "word-mean" and args.signal.lower() == "text" and not args.quiet:
        print(error_line("word-mean alone misses most changes: the thresholds are MiniLM's (1 of 7 "
                         "events on a test clip, MiniLM 7); it is there to compare with the original "
                         "project", "note"), file=sys.stderr)  # fmt: skip
    if args.greedy and args.model == "labels" and not args.quiet:
        print(error_line("the labels model ignores --greedy: it names the encoder's top ImageNet "
                         "classes", "note"), file=sys.stderr)  # fmt: skip
    # One video, named once or twice (`a.mp4 ./a.mp4`), and no folder: its report goes into --out.
    if len(videos) == 1 and not problems and not any(Path(a).is_dir() for a in args.videos):
        if (args.ray is not None or args.workers > 1) and not args.quiet:
            print(error_line("--workers and --ray share out several videos; this one is "
                             "analysed here", "note"), file=sys.stderr)  # fmt: skip
        return run_one(
            args,
            videos[0],
            args.out if args.out is not None else Path("out") / Path(videos[0]).stem,
        )
    cores = os.cpu_count() or 1
    if len(videos) > 1 and args.ray is None and args.workers > cores and not args.quiet:
        print(error_line(f"--workers {args.workers} is more than this machine's {cores} cores: each "
                         "worker loads the models (~450 MB) and they share the cores, so it is "
                         f"no faster than --workers {cores}", "note"), file=sys.stderr)  # fmt: skip
    if not videos:
        if problems:
            if args.json:  # a list still, a row per path, as `capsight caption --json` gives
                _print_json(problems, [])
            return 2  # each said why already
        raise InputNotFound("no videos to analyse")
    return run_many(args, videos, args.out if args.out is not None else Path("out"), problems)


def expand_video_args(args: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """(video paths, (path, one-line problem) pairs): folders expanded to the videos under them,
    each video once however often it is named."""
    from capsight._cli.image_args import files_under
    from capsight.io.images import VIDEO_SUFFIXES, no_such_file

    videos, problems = [], []
    for arg in args:
        if len(args) > 1 and not Path(arg).exists():  # said now, not after the others' minutes
            problems.append((arg, no_such_file(arg)))
            continue
        if not Path(arg).is_dir():
            videos.append(arg)  # a file, or a missing path the analysis will report
            continue
        lines: list[str] = []
        found = files_under(Path(arg), VIDEO_SUFFIXES, lines)
        problems += [(arg, line) for line in lines]
        if not found:
            kinds = ", ".join(sorted(s.lstrip(".") for s in VIDEO_SUFFIXES))
            problems.append((arg, f"{arg}: a folder with no videos in it (looked for {kinds})"))
        videos += found
    once = {os.path.realpath(v): v for v in reversed(videos)}  # the first naming of each is kept
    return [v for v in videos if once.get(os.path.realpath(v)) is v], problems


SUMMARY = "summary.csv"


def run_many(
    args: argparse.Namespace, videos: list[str], root: Path, problems: list[tuple[str, str]]
) -> int:
    """Each video into ``root``/<its name>/ (names made unique), then ``root``/summary.csv with a
    row per video, and per path that named none (written also when the batch is interrupted).
    ``--workers``/``--ray``: several videos at once (capsight.batch)."""
    from capsight._cli.main import cli_message, error_line
    from capsight.batch import analyze_videos, output_folders
    from capsight.novelty.analysis import Analysis
    from capsight.novelty.reports import OUTPUT_NAMES, check_output_dir

    at_once = args.ray is not None or args.workers > 1
    talk = not args.quiet and not args.json
    bars = None if at_once else _VideoBars(args, videos)
    check_output_dir(root, (SUMMARY,))  # the reports go into folders of their own under it
    # The options are checked here, once for the whole batch, not once per video.
    outcomes = analyze_videos(videos, root, workers=args.workers, ray=args.ray, progress=bars,
                              **_analysis_options(args))  # fmt: skip
    folders = dict(zip(videos, output_folders(videos, root), strict=True))
    replaced = {
        str(folder): [name for name in OUTPUT_NAMES if (folder / name).exists()]
        for folder in folders.values()
    }
    rows = [{"video": path, "error": message} for path, message in problems]
    order = {video: i for i, video in enumerate(videos)}
    results, interrupted, done, started = [], [], 0, time.time()
    with BatchBar(args, at_once, len(videos)) as batch_bar:
        try:
            for outcome in outcomes:
                done += 1
                if bars is not None:
                    bars.close()  # this video's bar, before its lines
                head = f"[{done}/{len(videos)}] " if at_once else ""
                if outcome.error is not None:
                    message = cli_message(outcome.error)
                    batch_bar.say(error_line(head + message), sys.stderr)
                    rows.append({"video": outcome.video, "error": " ".join(message.split())})
                    if args.json:  # in its place, as `capsight caption --json` does
                        results.append(
                            (order[outcome.video], _json_failure(outcome.video, message))
                        )
                    batch_bar(done)
                    continue
                if (old := replaced.get(outcome.folder)) and not args.quiet:
                    note = f"{outcome.folder}: replaced {', '.join(old)} of an earlier run"
                    batch_bar.say(error_line(note, "note"), sys.stderr)
                rows.append(_summary_row(outcome.video, outcome.analysis, outcome.report))
                if args.json:
                    results.append(
                        (order[outcome.video], {**outcome.analysis, "outputs": outcome.outputs})
                    )
                elif talk:
                    outputs = {k: Path(v) for k, v in outcome.outputs.items()}
                    summary = format_summary(Analysis.from_dict(outcome.analysis), outputs)
                    # the path named, as a batch run here heads each video: two clip.mp4 of
                    # two folders had been told apart by nothing but the count
                    batch_bar.say(
                        f"{head}{outcome.video}\n{summary}" if head else summary, sys.stdout
                    )
                batch_bar(done)
        except KeyboardInterrupt:  # the ones not analysed get a row each, and the user a tally
            outcomes.close()  # the workers end before their folders are read back below
            listed = {r["video"] for r in rows}
            interrupted = [v for v in videos if v not in listed]
            # A video whose report a worker wrote just before Ctrl-C, its outcome not yet here,
            # is read back from its own analysis.json.
            rows += [_row_from_folder(v, folders[v], started) or
                     {"video": v, "error": "not analysed: interrupted"} for v in interrupted]  # fmt: skip
            if args.json:  # the list still comes, closed: the videos done, and a row per rest
                results += [(order[v], _json_from_folder(folders[v], started) or
                             _json_failure(v, "not analysed: interrupted")) for v in interrupted]  # fmt: skip
                with contextlib.suppress(Exception):  # (the failure may be this very stream)
                    _print_json(problems, results)
            raise
        finally:  # the videos done so far are summarised even after Ctrl-C or a full disk
            if bars is not None:
                bars.close()
            # In the order the videos were named, whatever order they finished in.
            rows[len(problems) :] = sorted(rows[len(problems) :], key=lambda r: order[r["video"]])
            summary = _write_summary(root, rows, folders, args.quiet)
            if interrupted:
                analysed = sum("error" not in r for r in rows)
                where = f"; summary: {summary}" if summary is not None else ""
                print(f"\n{analysed} of {len(rows)} videos analysed before the interruption{where}",
                      file=sys.stderr, flush=True)  # fmt: skip
    failed = sum("error" in r for r in rows)
    if args.json:
        _print_json(problems, results)
    elif not args.quiet:
        where = f"summary: {summary}" if summary is not None else f"{SUMMARY} not written"
        print(f"{len(rows) - failed} of {len(rows)} videos analysed; {where}")
    return 2 if failed or summary is None else 0


def _print_json(problems: list[tuple[str, str]], results: list[tuple[int, dict]]) -> None:
    """``--json``'s list for several videos: the paths that named none, then each video's
    analysis or failure in the order they were named (``results``: (that place, entry))."""
    named_none = [_json_failure(path, message) for path, message in problems]
    listed = [result for _, result in sorted(results, key=lambda r: r[0])]
    json.dump(named_none + listed, sys.stdout, indent=2)
    sys.stdout.write("\n")
    sys.stdout.flush()


def _json_failure(video: str, message: str) -> dict:
    """A ``--json`` entry for a video that was not analysed: ``video.path`` as an analysis has
    it, so a reader can take every entry's path the same way, and ``error``."""
    return {"video": {"path": video}, "error": " ".join(message.split())}


def _summary_row(video: str, analysis: dict, report: str) -> dict:
    """A summary.csv row of an analysed video (``analysis``: its analysis.json content)."""
    novel = [m["time"] for m in analysis["moments"] if m.get("is_novel")]
    return {"video": video, "duration_s": round(analysis["video"]["duration"], 2),
            "moments": len(analysis["moments"]), "novel_moments": len(novel),
            "novel_at_s": " ".join(_seconds(t) for t in novel), "report": report}  # fmt: skip


def _row_from_folder(video: str, folder: Path, since: float) -> dict | None:
    """The row of ``video`` from the outputs this run wrote into ``folder`` (since ``since``,
    seconds since the epoch), or None when it wrote none there."""
    if (analysis := _json_from_folder(folder, since)) is None:
        return None
    try:
        return _summary_row(video, analysis, str(folder / "report.html"))
    except (KeyError, TypeError):
        return None


def _json_from_folder(folder: Path, since: float) -> dict | None:
    """``--json``'s entry for a video (its analysis.json and the outputs beside it) from the
    outputs this run wrote into ``folder`` since ``since``, or None when it wrote none there."""
    from capsight.novelty.reports import OUTPUT_NAMES

    report, saved = folder / "report.html", folder / "analysis.json"
    try:
        if report.stat().st_mtime < since or saved.stat().st_mtime < since:
            return None
        analysis = json.loads(saved.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(analysis, dict):
        return None
    outputs = {name: str(folder / name) for name in OUTPUT_NAMES if (folder / name).exists()}
    return {**analysis, "outputs": outputs}


def _analysis_options(args: argparse.Namespace) -> dict:
    """``analyze_video``'s options from the command line."""
    return dict(every=args.every, window=args.window, metric=args.metric, signal=args.signal,
                sensitivity=args.sensitivity, captioner=args.model, greedy=args.greedy,
                text_embedder=args.text_embedder, encoder=args.encoder)  # fmt: skip


class _VideoBars:
    """The progress callback of a batch run in this process: "[i/n] video" as each video starts,
    then a bar of its own; with no bar (a log), the first run's model exports are said."""

    def __init__(self, args: argparse.Namespace, videos: list[str]):
        from capsight._cli.progress_bar import ProgressBar

        self.args, self.videos, self.current = args, videos, -1
        self.drawn = ProgressBar.wanted(args.quiet)
        self.bar = None
        self.told: set[str] = set()

    def __call__(self, i: int, fraction: float, message: str) -> None:
        from capsight._cli.main import error_line
        from capsight._cli.progress_bar import ProgressBar

        if i != self.current:
            self.close()
            self.current = i
            if not self.args.quiet and not self.args.json:
                print(f"[{i + 1}/{len(self.videos)}] {shown_name(self.videos[i])}", flush=True)
            self.bar = ProgressBar(enabled=self.drawn)  # a new one: a bar's count only rises
            self.bar.__enter__()
        if message.startswith("exporting") and not self.drawn and not self.args.quiet:
            if message not in self.told:
                self.told.add(message)
                print(error_line(message, "note"), file=sys.stderr, flush=True)
        self.bar(fraction, message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


class BatchBar:
    """With ``--workers``/``--ray``: one bar for the batch (videos finished of all), above which
    ``say`` prints; otherwise (each video has its own bar) ``say`` just prints."""

    def __init__(self, args: argparse.Namespace, at_once: bool, total: int):
        from capsight._cli.progress_bar import ProgressBar

        self.total = total
        # Redrawn at every video (no 0.1 s wait between draws): it had shown a count behind.
        self.bar = ProgressBar(enabled=at_once and ProgressBar.wanted(args.quiet), min_interval=0)
        self.drawing = None

    def __enter__(self):
        self.drawing = self.bar.__enter__()
        self(0)
        return self

    def __call__(self, done: int) -> None:
        self.drawing(done / max(self.total, 1), f"{done}/{self.total} videos")

    def say(self, text: str, stream) -> None:
        from tqdm import tqdm

        if not self.bar.drawn:
            print(text, file=stream, flush=True)
            return
        with tqdm.external_write_mode(file=self.bar.file):
            print(text, file=stream, flush=True)

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)


def _seconds(t: float) -> str:
    """Seconds to a hundredth, without trailing zeros: 3, 14.01, 10000.25."""
    return f"{t:.2f}".rstrip("0").rstrip(".")


SUMMARY_FIELDS = [
    "video",
    "duration_s",
    "moments",
    "novel_moments",
    "novel_at_s",
    "report",
    "error",
]


def _write_summary(
    root: Path, rows: list[dict], folders: dict[str, Path], quiet: bool = False
) -> Path | None:
    """``root``/summary.csv, or None after one error line when it cannot be written (it runs in a
    ``finally``: an exception here would hide the one that got there, e.g. Ctrl-C). An earlier
    run's rows whose reports are still there stay in it (``_with_earlier_rows``)."""
    import csv

    from capsight._cli.main import error_line

    try:  # (Path.absolute, not abspath: "link/../a.mp4" is not "a.mp4" when link is a link)
        absolute = [{**r, **{k: str(Path(r[k]).absolute()) for k in ("video", "report") if r.get(k)}}
                    for r in rows]  # fmt: skip
        folders = {str(Path(v).absolute()): f for v, f in folders.items()}
        merged, kept = _with_earlier_rows(root / SUMMARY, absolute, folders)
    except OSError:  # the working folder deleted meanwhile: the paths as given
        merged, kept = rows, 0
    try:
        root.mkdir(parents=True, exist_ok=True)
        with open(
            root / SUMMARY, "w", newline="", encoding="utf-8", errors="backslashreplace"
        ) as f:
            writer = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS)
            writer.writeheader()
            writer.writerows(map(_inert_error, merged))
    except OSError as exc:
        print(error_line(f"{root / SUMMARY}: cannot write the summary ({exc.strerror or exc})"),
              file=sys.stderr)  # fmt: skip
        return None
    if kept and not quiet:
        print(error_line(f"{root / SUMMARY} also keeps {kept} row{'s' if kept != 1 else ''} of an "
                         "earlier run whose reports are still there", "note"), file=sys.stderr)  # fmt: skip
    return root / SUMMARY


def _earlier_video(folder: Path) -> str | None:
    """The file name of the video whose analysis.json ``folder`` holds, or None: a run into a
    folder of another video's report said only "replaced ... of an earlier run"."""
    try:
        path = json.loads((folder / "analysis.json").read_text("utf-8"))["video"]["path"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Path(path).name if isinstance(path, str) else None


def _inert_error(row: dict) -> dict:
    """``row`` with an error that a spreadsheet would run as a formula (it starts with the
    file's name: "=1+2.mp4: file is empty") made text by a leading apostrophe. Only the error:
    the paths are read back by the next run."""
    error = row.get("error")
    if isinstance(error, str) and error[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return {**row, "error": "'" + error}
    return row


def _with_earlier_rows(
    path: Path, rows: list[dict], folders: dict[str, Path]
) -> tuple[list[dict], int]:
    """(``rows``, with what an earlier summary at ``path`` still stands for; how many of its rows
    were kept). A video this run failed on keeps its earlier report, its error naming this run's
    failure; a video this run did not name keeps its row, unless this run wrote a report into
    its folder (``folders``: each video of this run's). Only rows whose report file is still
    there: a rerun that failed had replaced the summary and left the earlier reports unlisted.
    Videos are matched by the file they name; the paths are absolute, so a rerun from another
    folder finds them."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            earlier = [r for r in reader if reader.fieldnames == SUMMARY_FIELDS]
    except (OSError, UnicodeDecodeError, csv.Error):
        earlier = []
    same = {os.path.realpath(r["video"]): r for r in earlier
            if r.get("report") and Path(r["report"]).is_file()}  # fmt: skip
    written = {os.path.realpath(Path(r["report"]).parent) for r in rows if r.get("report")}
    merged, kept = [], 0
    for row in rows:
        old = same.pop(os.path.realpath(row["video"]), None)  # replaced, or its report kept
        folder = folders.get(row["video"])
        if "error" in row and old is not None and folder is not None:
            if os.path.realpath(Path(old["report"]).parent) == os.path.realpath(folder):
                row = {**old, "video": row["video"], "error": f"this run: {row['error']} (the "
                       "report is an earlier run's)"}  # fmt: skip
                kept += 1
        merged.append(row)
    # Another video's report in a folder this run wrote a report into is gone: it is this run's.
    others = [r for r in same.values() if os.path.realpath(Path(r["report"]).parent) not in written]
    return merged + others, kept + len(others)


def run_one(args: argparse.Namespace, video: str, out_dir: Path) -> int:
    analyse(args, video, out_dir, show_summary=True)
    return 0


def analyse(args: argparse.Namespace, video: str, out_dir: Path, show_summary: bool):
    """Analyse one video into ``out_dir``; print its summary (or JSON) when ``show_summary``."""
    from capsight._cli.main import error_line
    from capsight._cli.progress_bar import ProgressBar
    from capsight.novelty.pipeline import analyze_video
    from capsight.novelty.reports import (
        OUTPUT_NAMES,
        check_output_dir,
        moment_clock,
        preload_plotting,
        write_outputs,
    )

    check_output_dir(out_dir)  # before the analysis, which a bad --out would waste
    replaced = [name for name in OUTPUT_NAMES if (out_dir / name).exists()]
    earlier = _earlier_video(out_dir) if replaced else None  # (read before it is replaced)
    started = time.perf_counter()
    drawn = ProgressBar.wanted(args.quiet)
    with ProgressBar(enabled=drawn) as bar:
        preloading: list[threading.Thread] = []
        told: set[str] = set()

        def on_progress(fraction: float, message: str) -> None:
            # Importing matplotlib (pure Python) overlaps the analysis' decoding and model work.
            # It starts at the first report, once the decoder has started: a one-thread process
            # can fork its decoder (capsight.novelty.frames), which saves ~0.25 s.
            if not preloading:
                preloading.append(threading.Thread(target=preload_plotting, daemon=True))
                preloading[0].start()
            if (
                message.startswith("exporting")
                and not drawn
                and not args.quiet
                and message not in told
            ):
                told.add(message)  # with no bar (a log), the first run's extra seconds are said
                print(error_line(message, "note"), file=sys.stderr, flush=True)
            if message.startswith("captioned up to"):
                reached[:] = [message]
            bar(fraction, message)

        reached: list[str] = []  # "captioned up to 33:10": how far a Ctrl-C got
        try:
            analysis = analyze_video(
                video,
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
        except KeyboardInterrupt as stop:  # (Ctrl-C, or SIGTERM: the CLI's Terminated)
            part = getattr(stop, "analysis", None)  # the moments analysed so far, if any
            if part is None:
                how_far = f" ({reached[0]})" if reached else ""
                print(f"{shown_name(str(video))}: stopped before the end{how_far}; nothing was written to {out_dir}",
                      file=sys.stderr, flush=True)  # fmt: skip
                raise
            bar(1.0, "writing the report of the part analysed")
            try:
                outputs = write_outputs(part, out_dir)
            except KeyboardInterrupt:  # a second Ctrl-C: (write_outputs leaves no half a folder)
                print(f"{shown_name(str(video))}: stopped before the end; nothing was written to {out_dir}",
                      file=sys.stderr, flush=True)  # fmt: skip
                raise stop from None
            if part.picking_stopped and "stopped_at" not in part.extra:
                print(f"{shown_name(str(video))}: stopped while picking the novel moments; the report in "
                      f"{out_dir} has all {len(part.moments):,} moments, captioned and scored, "
                      "none marked novel", file=sys.stderr, flush=True)  # fmt: skip
            else:
                clock = moment_clock(part)  # (h:mm:ss throughout for an hour-long video)
                print(f"{shown_name(str(video))}: stopped at {clock(part.moments[-1].time)} of "
                      f"{clock(part.video.duration, rounded=True)}; the report in "
                      f"{out_dir} covers the {len(part.moments):,} moments analysed up to there",
                      file=sys.stderr, flush=True)  # fmt: skip
            if args.json and show_summary:  # as a finished run's, its note saying where it stopped
                _print_analysis_json(part, outputs)
            raise
        on_progress(1.0, "writing report")
        outputs = write_outputs(analysis, out_dir)
    elapsed = time.perf_counter() - started
    if replaced and not args.quiet:  # a rerun into the same folder (a user's own file is refused)
        other = f", of another video ({earlier})" if earlier not in (None, Path(video).name) else ""
        note = f"{out_dir}: replaced {', '.join(replaced)} of an earlier run{other}"
        print(error_line(note, "note"), file=sys.stderr)

    if not show_summary:
        return analysis, outputs
    if args.json:
        _print_analysis_json(analysis, outputs)
    elif not args.quiet:
        print(format_summary(analysis, outputs, elapsed))
    return analysis, outputs


def _print_analysis_json(analysis, outputs: dict[str, Path]) -> None:
    data = analysis.to_dict()
    data["outputs"] = {name: str(path) for name, path in outputs.items()}
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


SUMMARY_MOMENTS = 25  # novel moments the terminal summary lists


def _settings_changed(analysis) -> str:
    """The analysis options away from their defaults, as the CLI names them ("" for none)."""
    from capsight.novelty.analysis import AnalysisParams

    said = []
    for name in ("signal", "metric", "window", "sensitivity", "text_embedder", "encoder"):
        value = getattr(analysis.params, name)
        if value != getattr(AnalysisParams(), name):
            said.append(f"--{name.replace('_', '-')} {value:g}" if isinstance(value, float)
                        else f"--{name.replace('_', '-')} {value}")  # fmt: skip
    extra = analysis.extra if isinstance(analysis.extra, dict) else {}
    if extra.get("decoding") == "greedy":  # (the captioner is named with the report)
        said.append("--greedy")
    return ", ".join(said)


def format_summary(analysis, outputs: dict[str, Path], elapsed: float | None = None) -> str:
    """The few lines a person reads after a run: facts, novel moments, where the report is."""
    from capsight.novelty.reports import moment_clock, novelty_unit

    v, p = analysis.video, analysis.params
    clock = moment_clock(analysis)
    n = len(analysis.moments)
    pace = f"one every {p.every:g} s"
    if v.fps and p.every < 1.0 / v.fps:
        pace = f"every frame (--every {p.every:g} s is shorter than a frame)"
    lines = [
        f"{Path(v.path).name}: {clock(v.duration, rounded=True)}, {v.width}x{v.height} at "
        f"{round(v.fps, 2):g} fps; {n} moment{'s' if n != 1 else ''}, {pace}"
    ]
    if settings := _settings_changed(analysis):  # (two runs of other options had read alike)
        lines.append(f"settings: {settings}")
    novel = analysis.novel_moments
    if novel:
        # A few, in time order: an hour's 486 had pushed the line above off the screen. Past
        # SUMMARY_MOMENTS, the strongest (the first 25 of 501 had all been in its first 4 min).
        shown = novel
        if len(novel) > SUMMARY_MOMENTS:  # strongest by the selection's strength, as the report
            strengths = (analysis.extra.get("selection") or {}).get("strength") or []
            row = {id(m): i for i, m in enumerate(analysis.moments)}

            def strength(m) -> float:
                i = row[id(m)]
                value = strengths[i] if i < len(strengths) else None
                return value if isinstance(value, (int, float)) else (m.novelty or 0.0)

            strongest = {id(m) for m in sorted(novel, key=strength, reverse=True)[:SUMMARY_MOMENTS]}
            shown = [m for m in novel if id(m) in strongest]
        which = f"; the {len(shown)} strongest" if len(shown) < len(novel) else ""
        lines.append(
            f"{len(novel)} novel moment{'s' if len(novel) != 1 else ''}{which} "
            f"(time, novelty {novelty_unit(p)}, caption):"
        )
        for m in shown:
            score = f"{m.novelty:.2f}" if m.novelty is not None else "  - "
            lines.append(f"  {clock(m.time)}  {score}  {m.caption}")
        if len(novel) > SUMMARY_MOMENTS:
            lines.append(f"  ... and {len(novel) - SUMMARY_MOMENTS:,} more (all in the report, "
                         "analysis.json and moments.csv)")  # fmt: skip
    else:
        lines.append(f"no novel moments: {analysis.quiet_reason(face='cli')}")
    lines += [f"note: {aside}" for aside in analysis.asides(face="cli")]
    # A window given wider than the video (5: the default); with one moment there is nothing
    # to compare, which the line above says.
    if p.window > max(n - 1, 5) and n > 1:
        lines.append(f"note: --window {p.window} reaches past the first of the {n} moments: each "
                     "moment is compared with the mean of all those before it")  # fmt: skip
    if elapsed is not None and elapsed > 0:
        pace = f" ({v.duration / elapsed:.1f}x real time)" if v.duration >= 1.0 else ""
        lines.append(f"analysed in {elapsed:.1f} s{pace}")
    report = outputs.get("report.html")
    if report is not None:
        others = ", ".join(name for name in outputs if name != "report.html")
        lines.append(f"report: {report}  (also {others} in {report.parent})")
    return "\n".join(lines)
