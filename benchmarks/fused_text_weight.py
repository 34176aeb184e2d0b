"""Does the captioner's text signal help the fused novelty selection? Replays the selection with
several weights for the text evidence (``FUSED_WEIGHTS["text"]``; visual stays 1).

    .venv/bin/python benchmarks/fused_text_weight.py                  # default captioner
    .venv/bin/python benchmarks/fused_text_weight.py --weights 0 0.1 0.2 --captioner labels

Each video of ``benchmarks/novelty_quality.py`` (generated dev and held-out sets, annotated real
clips) is analysed once with default parameters while the selection's inputs (regional visual
features and caption embeddings) are recorded; the selection is then rerun for every weight and
scored as that benchmark scores it (events found within 1.5 s, false alarms). Prints one row per
weight. Tune on dev only; the held-out and real columns say whether a choice generalises.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import capsight.novelty.pipeline as pipeline  # noqa: E402
import capsight.novelty.selection as selection  # noqa: E402
import novelty_quality  # noqa: E402  (the sibling benchmark: videos, truth and scoring)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.15, 0.3, 0.5, 1.0])
    parser.add_argument("--captioner", default="default")
    args = parser.parse_args()

    select = selection.select_novel_moments
    recorded: dict[str, tuple] = {}
    last: list[tuple] = []

    def recorder(embeddings, **options):
        last.append((embeddings, options))
        return select(embeddings, **options)

    pipeline.select_novel_moments = recorder  # the pipeline's own reference to the function
    sets = {
        "dev": novelty_quality.generated_videos("dev"),
        "held out": novelty_quality.generated_videos("holdout"),
        "real": novelty_quality.real_videos(),
    }
    for videos in sets.values():
        for video in videos:
            analysis = pipeline.analyze_video(
                video["path"], captioner=args.captioner, thumbnail_size=None
            )
            recorded[video["path"]] = (*last.pop(), [m.time for m in analysis.moments])
            print(f"# analysed {Path(video['path']).name}", file=sys.stderr, flush=True)

    def replayed(path: str) -> list[float]:
        embeddings, options, times = recorded[path]
        return [times[i] for i in select(embeddings, **options).indices]

    print(f"| text weight ({args.captioner} captioner) | " + " | ".join(
        f"{name}: events found | {name}: false alarms" for name in sets) + " |")  # fmt: skip
    print("|---:|" + "---:|---:|" * len(sets))
    default = dict(selection.FUSED_WEIGHTS)
    try:
        for weight in args.weights:
            selection.FUSED_WEIGHTS = {"visual": 1.0, "text": weight}
            cells = []
            for videos in sets.values():
                r = novelty_quality.score(videos, replayed)
                cells += [f"{r['found']}/{r['events']}", str(r["false_alarms"])]
            print(f"| {weight:g} | " + " | ".join(cells) + " |", flush=True)
    finally:
        selection.FUSED_WEIGHTS = default


if __name__ == "__main__":
    main()
