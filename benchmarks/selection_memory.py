"""Memory and time of picking the novel moments of a long video, by its number of moments.

    .venv/bin/python benchmarks/selection_memory.py [--moments 500 1000 2000 3600]
    .venv/bin/python benchmarks/selection_memory.py --moments 720 1440 2880 --every 0.0083

After a video is read, ``select_novel_moments`` weighs every moment's region features (9 x 1280
per moment, ``novelty.selection.ChangeEvidence``) at once: this is the part of an analysis whose
memory grows with the video's length (reading it does not). An hour at one moment a second is
3,600 moments. Random features stand in for a video's (the arrays' sizes, not their values,
set the memory); the peak is Python's traced allocations (``tracemalloc``: NumPy's arrays),
the time one ``select_novel_moments`` call with one signal. ``--every``: seconds between moments;
dense sampling compares each moment with more moments (those of the 15 s before it and the 8 s
after), so its cost grows with the square of the sampling rate (every frame of a 120 fps clip:
``--every 0.0083``).
"""

from __future__ import annotations

import argparse
import math
import time
import tracemalloc

import numpy as np

from capsight.novelty.selection import ChangeEvidence, SelectionConfig, select_novel_moments


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moments", type=int, nargs="+", default=[500, 1000, 2000, 3600])
    parser.add_argument("--every", type=float, default=1.0, help="seconds between moments")
    args = parser.parse_args()
    config = SelectionConfig()
    horizon = max(2, math.ceil(config.persistence_seconds / args.every))
    memory = (max(1, round(config.memory_seconds[0] / args.every)),
              max(2, round(config.memory_seconds[1] / args.every)))  # fmt: skip
    rng = np.random.default_rng(0)
    print("| moments | peak memory of the evidence | selection time |")
    print("|---:|---:|---:|")
    for n in args.moments:
        regions = rng.random((n, 9, 1280), dtype=np.float32)
        tracemalloc.start()
        evidence = ChangeEvidence(regions, 5, "cosine", horizon, memory)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        del evidence
        started = time.perf_counter()
        select_novel_moments({"visual": regions}, window=5, every=args.every)
        seconds = time.perf_counter() - started
        print(f"| {n:,} | {peak / 1e6:,.0f} MB | {seconds:.1f} s |")


if __name__ == "__main__":
    main()
