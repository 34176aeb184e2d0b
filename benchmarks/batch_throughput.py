"""Batch throughput: ``capsight video FOLDER`` over a folder of real videos, one after the other
in one process, on a pool of worker processes, and on Ray started on this machine.

    .venv/bin/python benchmarks/batch_throughput.py                 # ../shared/data/videos
    .venv/bin/python benchmarks/batch_throughput.py --videos DIR --workers 1 2 4 --no-ray

Each row is one command run as a new process (start-up, model loading in every worker, the
analyses and the reports, as a user gets them), into a fresh output folder: wall time, the
videos' total length over it (x real time).
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VIDEOS = ROOT.parent / "shared" / "data" / "videos"
CAPSIGHT = Path(sys.executable).with_name("capsight")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--videos", type=Path, default=VIDEOS, help=f"folder of videos (default: {VIDEOS})"
    )
    parser.add_argument(
        "--workers", type=int, nargs="+", default=[1, 2], help="pool sizes (default: 1 2)"
    )
    parser.add_argument("--no-ray", action="store_true", help="leave out the Ray rows")
    args = parser.parse_args()
    if not args.videos.is_dir():
        print(f"{args.videos}: no such folder (give --videos DIR)", file=sys.stderr)
        return 2
    runs = [(f"{n} worker{'s' if n > 1 else ''}" + (" (in process)" if n == 1 else " (process pool)"), ["--workers", str(n)])
            for n in args.workers]  # fmt: skip
    if not args.no_ray:
        try:
            import ray  # noqa: F401
        except ImportError:
            print("Ray is not installed (pip install 'ray[data]'): no Ray rows", file=sys.stderr)
        else:
            runs += [
                (f"{n} Ray actors (ray local)", ["--workers", str(n), "--ray", "local"])
                for n in args.workers
                if n > 1
            ]
    print(f"cores: {os.cpu_count()}; videos: {args.videos}", file=sys.stderr)
    rows = []
    for name, flags in runs:
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            done = subprocess.run([str(CAPSIGHT), "video", str(args.videos), "--out", out, "--json", "--quiet", *flags],
                                  capture_output=True, text=True)  # fmt: skip
            wall = time.perf_counter() - start
            if done.returncode not in (0, 2) or not done.stdout.strip():
                print(f"{name}: failed: {done.stderr.strip()[-500:]}", file=sys.stderr)
                continue
            listed = json.loads(done.stdout)
            listed = listed if isinstance(listed, list) else [listed]  # (one video: an object)
            # a video capsight could not read comes back as {"video", "error"}: counted, not timed
            analyses = [a for a in listed if "error" not in a]
            if failed := len(listed) - len(analyses):
                print(f"{name}: {failed} video(s) failed and are left out of the row (first: "
                      f"{next(a['error'] for a in listed if 'error' in a)})", file=sys.stderr)  # fmt: skip
            if not analyses:
                continue
            seconds = sum(a["video"]["duration"] for a in analyses)
            rows.append((name, len(analyses), seconds, wall))
            print(f"{name}: {wall:.1f} s", file=sys.stderr)
    print("| runner | videos | video length (s) | wall (s) | x real time |")
    print("|---|---:|---:|---:|---:|")
    for name, n, length, wall in rows:
        print(f"| {name} | {n} | {length:.0f} | {wall:.1f} | {length / wall:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
