"""`capsight search` on the shared videos: the best score of queries for things each shows, and
not, searched on the video and on its `capsight video` analysis (docs/classify.md's table).

    $ nice -n 15 .venv/bin/python benchmarks/search_queries.py       # ~4 min on 2 cores

Each video is analysed once with `capsight video` (defaults) into a temporary folder; then each
query is searched on the video (every moment's whole ImageNet distribution) and on the analysis
(its top 3 classes). "shown?" is what the frames show, looked at by hand; the CLI's weak-match
lines (`capsight._cli.search.WEAK_MATCH`) were drawn between the two groups. Data:
``../shared/data/videos``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from capsight._cli.search import WEAK_MATCH
from capsight.classify.search import search_analysis, search_video

REPO = Path(__file__).resolve().parents[1]

QUERIES = [  # (query, video, whether its frames show it)
    ("a deer", "pyscenedetect__testvideo", True),
    ("a leaf on a rock", "pyscenedetect__testvideo", True),
    ("a swimming pool", "mmaction2__tests_data_test", True),
    ("a car", "intel-sample-videos__car-detection", True),
    ("a car on a road", "dvrscan__traffic_camera", True),
    ("a bottle", "intel-sample-videos__bottle-detection", True),
    ("text on a screen", "intel-sample-videos__one-by-one-person-detection", False),
    ("a plate of food", "pyscenedetect__testvideo", False),
    ("a plate of food", "intel-sample-videos__one-by-one-person-detection", False),
    ("an elephant", "pyscenedetect__testvideo", False),
    ("a horse", "intel-sample-videos__bottle-detection", False),
    ("a kitchen with a stove", "intel-sample-videos__car-detection", False),
    ("an airplane in the sky", "mmaction2__tests_data_test", False),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    parser.add_argument("--videos", type=Path, default=REPO.parent / "shared" / "data" / "videos")
    args = parser.parse_args()
    if not args.videos.is_dir():
        sys.exit(f"{args.videos}: no such folder (the shared videos)")
    missing = sorted({name for _, name, _ in QUERIES} - {p.stem for p in args.videos.glob("*.mp4")})
    if missing:  # (had been a CalledProcessError traceback from the first `capsight video`)
        sys.exit(
            f"{args.videos}: lacks {', '.join(n + '.mp4' for n in missing)} (the shared videos)"
        )
    capsight = Path(sys.executable).with_name("capsight")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        analyses = {}
        for name in dict.fromkeys(video for _, video, _ in QUERIES):
            out = Path(tmp) / name
            subprocess.run([str(capsight), "video", str(args.videos / f"{name}.mp4"), "--out", str(out),
                            "--quiet"], check=True, stdout=subprocess.DEVNULL)  # fmt: skip
            analyses[name] = out / "analysis.json"
        for query, name, shown in QUERIES:
            on_video = search_video(args.videos / f"{name}.mp4", query, top=1)[0]
            on_analysis = search_analysis(analyses[name], query, top=1)[0]
            rows.append((query, name, shown, on_video.score, on_analysis.score))
    print("| query | video | shown? | best score, video | best score, analysis |")
    print("|---|---|---|---:|---:|")
    for query, name, shown, video, analysis in rows:
        print(f"| {query} | {name} | {'yes' if shown else 'no'} | {video:.3f} | {analysis:.3f} |")
    for i, source in ((3, "video"), (4, "analysis")):
        yes = [r[i] for r in rows if r[2]]
        no = [r[i] for r in rows if not r[2]]
        print(f"{source}: shown {min(yes):.3f}-{max(yes):.3f}, not shown {min(no):.3f}-{max(no):.3f}; "
              f"the weak-match line {WEAK_MATCH[source]}")  # fmt: skip


if __name__ == "__main__":
    main()
