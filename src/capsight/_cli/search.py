"""``capsight search``: find the moments of a video that match a text query.

    $ capsight search beach.mp4 "a dog on a beach"
    12.0 s  0.712  a dog runs along the beach
    31.0 s  0.604  a brown dog plays in the sand
    $ capsight search out/clip/analysis.json "a man riding a bike" --top 3 --json

TARGET is a video (sampled every ``--every`` seconds, then captioned and classified) or a
finished ``analysis.json`` from ``capsight video`` (or its folder), which needs no decoding;
several analyses (or a batch's ``--out`` folder) are ranked together.
A video is captioned under a progress bar on stderr (``--quiet`` hides it).
"""

from __future__ import annotations

import argparse
import re
import sys

from capsight._cli.shown_names import shown_name


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "search",
        help="rank the moments of a video by how well they match a text query",
        description="Print the best matching moments: `time  score  caption` (led by the "
        "video's name where several analyses are searched). The score is the mean of the "
        "query's cosine with the caption and the square root of the ImageNet probability it "
        "covers (-0.5 to 1); "
        "clear matches mostly score above 0.22 searching a video, 0.15 an analysis.",
    )
    p.add_argument(
        "targets",
        nargs="+",
        metavar="VIDEO|ANALYSIS",
        help="a video file, or analyses from `capsight video`: analysis.json, its folder, or "
        "the --out folder of a batch (several analyses are ranked together)",
    )
    p.add_argument("query", help='what to look for, e.g. "a dog on a beach"')
    p.add_argument("--top", type=int, default=5, metavar="K", help="hits shown, a run of moments "
                   "whose captions say the same being one hit (default: 5)")  # fmt: skip
    p.add_argument(
        "--every",
        type=float,
        default=None,
        metavar="SECONDS",
        help="seconds between sampled moments of a video (default: 1)",
    )
    p.add_argument(
        "--model",
        default=None,
        metavar="NAME",
        help="captioner for a video (default: the one `capsight video` uses)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help='print a JSON list of {"time", "until", "best", "score", "caption_score", '
        '"class_score", "caption", "weak"} (a shot\'s moments are one hit, from '
        '"time" to "until"; "best": its best moment; "weak": it scores under the line clear '
        'matches pass; "video" first, where several analyses are searched)',
    )
    p.add_argument(
        "--quiet", "-q", action="store_true", help="no progress bar while a video is captioned"
    )
    return p


# Below this best score the query matched nothing well: a rough line between what the captions
# and classes show and what they do not, drawn on the shared videos (2026-12-06; docs/classify.md
# has the queries). A video is searched with each moment's whole ImageNet distribution, an
# analysis with its top 3 classes only, so the same query scores lower on an analysis.
# Videos: shown 0.31-0.72, not shown 0.05-0.17. Analyses: shown 0.18-0.70, not shown 0.04-0.12
# (benchmarks/search_queries.py).
WEAK_MATCH = {"video": 0.22, "analysis": 0.15}


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from capsight._cli.json_rows import utf8_json
    from capsight._cli.main import error_line
    from capsight._cli.progress_bar import ProgressBar
    from capsight.classify.search import analysis_files, search_analyses, search_video
    from capsight.errors import InvalidParameter

    if args.top < 1:
        raise InvalidParameter(f"--top must be >= 1, got {args.top}")
    # (a name that names nothing is a video's, alone: search_video says so, as before)
    videos = [t for t in args.targets if Path(t).suffix.lower() != ".json" and not Path(t).is_dir()
              and (len(args.targets) == 1 or Path(t).is_file())]  # fmt: skip
    if videos and len(args.targets) > 1:
        raise InvalidParameter(f"{videos[0]}: a video among {len(args.targets)} things to search; "
                               "search one video at a time, or analyse them first (capsight "
                               "video A.mp4 B.mp4 --out DIR) and search DIR")  # fmt: skip
    labels = None  # the analysis each hit came from, where there are several
    if not videos:
        if args.every is not None or args.model is not None:
            print(error_line("--every and --model apply to a video; an analysis keeps the moments "
                             "and captions it was made with", "note"), file=sys.stderr)  # fmt: skip
        files = list(dict.fromkeys(p for t in args.targets for p in analysis_files(t)))
        found = search_analyses(files, args.query, args.top)
        hits = [hit for _, hit in found]
        if len(files) > 1:
            names = _labels(files)
            labels = [names[path] for path, _ in found]
        target = args.targets[0] if len(args.targets) == 1 else f"{len(files)} analyses"
        source = "analysis"
        nothing = (f"the {'analyses hold' if len(files) > 1 else 'analysis holds'} no moments, "
                   "or only blank frames (fades, dark cards)")  # fmt: skip
    else:
        target = Path(videos[0])
        source = "video"
        every = 1.0 if args.every is None else args.every
        with ProgressBar(enabled=ProgressBar.wanted(args.quiet)) as progress:
            hits = search_video(
                target,
                args.query,
                every,
                args.top,
                "default" if args.model is None else args.model,
                progress,
            )
        nothing = "every moment sampled is a blank frame (a fade or a dark card)"
    if absence := absence_words(args.query):
        print(error_line(f"{' and '.join(repr(w) for w in absence)}: search ranks moments by what "
                         "their captions and classes show, and cannot look for what is missing "
                         "('an empty road' matches cars on a road); ask for what is there "
                         "instead ('a road')", "note"), file=sys.stderr)  # fmt: skip
    if not hits:  # blank frames match nothing but a query for blankness (classify.search)
        print(error_line(f"{target}: nothing to search: {nothing}", "note"), file=sys.stderr)
    best = max((h.score for h in hits), default=None)
    if hits and not any(h.caption for h in hits):  # (an analysis edited, or made elsewhere)
        print(error_line("the moments found have no captions: they are ranked by their ImageNet "
                         "classes alone", "note"), file=sys.stderr)  # fmt: skip
    if best is not None and best < WEAK_MATCH[source]:
        on = "an analysis" if source == "analysis" else "a video"
        query = args.query.strip()
        shown = repr(query) if len(query) <= 60 else repr(query[:57]) + "..."  # (5,000 characters)
        # (4 places: 0.1496 under a 0.15 line had read "best score 0.150")
        print(error_line(f"no moment matches {shown} well (best score {best:.4f}; clear "
                         f"matches mostly score above {WEAK_MATCH[source]} on {on} with the default "
                         "captioner, a rough guide): the captions and classes may not show it, "
                         "or name it in other words (queries are read as English)", "note"),
              file=sys.stderr)  # fmt: skip
    if args.json:
        listed = [{**({"video": labels[i]} if labels else {}), **h.to_dict(),
                   "weak": h.score < WEAK_MATCH[source]} for i, h in enumerate(hits)]  # fmt: skip
        sys.stdout.write(utf8_json(listed, indent=1))
        sys.stdout.write("\n")
    else:
        for line in hit_lines(hits, WEAK_MATCH[source], labels):
            print(line)
    return 0


def _labels(analyses: list) -> dict:
    """{analysis.json: the name its hits go by}: its folder's (the video's name, as ``capsight
    video`` names a batch's folders), with as many folders above as tell apart two of one name
    (a/clip, b/clip)."""
    for depth in range(1, 1 + max(len(p.parts) for p in analyses)):
        names = {p: "/".join(p.parent.parts[-depth:]) or str(p) for p in analyses}
        if len(set(names.values())) == len(names):
            return names
    return {p: str(p) for p in analyses}


# Words that ask for something to be missing: the embeddings read "an empty road" as a road,
# and its cars score highest (an audit, 2026-12-08: the red car first at 0.514, not weak).
ABSENCE = ("empty", "no", "none", "nobody", "nothing", "without", "vacant", "deserted", "absent",
           "missing", "not", "unoccupied", "nowhere", "noone")  # fmt: skip


def absence_words(query: str) -> list[str]:
    """The words of ``query`` that ask for something to be missing, in order, once each."""
    words = re.findall(r"[a-z]+", query.lower().replace("no one", "noone"))
    return list(dict.fromkeys(w for w in words if w in ABSENCE))


def hit_lines(hits, weak: float | None = None, labels: list[str] | None = None) -> list[str]:
    """``time  score  caption`` a hit a line, the captions in one column: "  14.0-18.0 s" is
    the run of moments the caption held for, and "(best at 16.0 s)" the moment whose caption it
    is, where that is not the first; a score that rounds to zero reads 0.000 (it had read
    "-0.000", a column wider than the others). Hits under ``weak`` come after a line that says
    so (only --json had marked them). ``labels``: each hit's video, in a first column."""
    width = max(map(len, labels)) + 2 if labels else 0
    lines = []
    # All weak, the note on stderr says so: no line above them, nor after the first (the best
    # then read as a clear match, 2026-12-08)
    divide = weak is not None and bool(hits) and hits[0].score >= weak
    for i, h in enumerate(hits):
        if divide and h.score < weak:
            lines.append(
                f"{'':>{width + 12}}    weaker matches (under {weak:g}), more often not there:"
            )
            divide = False
        when = f"{h.time:.1f}" if h.until is None else f"{h.time:.1f}-{h.until:.1f}"
        score = h.score if round(h.score, 3) != 0 else 0.0
        at = (
            f"  (best at {h.best:.1f} s)"
            if h.until is not None and h.best not in (None, h.time)
            else ""
        )
        video = f"{shown_name(labels[i]):<{width}}" if labels else ""
        lines.append(f"{video}{when:>12} s  {score:6.3f}  {h.caption}{at}")
    return lines
