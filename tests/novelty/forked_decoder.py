"""Scenarios for the forked decoder, run by test_frames.py in a fresh interpreter.

A fork is safe only from a process with one Python thread and no torch or ONNX Runtime
thread pools (``frames._can_fork``). The pytest process has neither property, and a fork from
it can hang for ever on a lock another thread held, so each scenario runs here instead and
prints its findings as one JSON line. Usage: ``python forked_decoder.py SCENARIO CLIP``."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

from capsight import errors
from capsight.novelty import frames


def _frames_digest(batches) -> dict:
    sizes, times, digest = [], [], hashlib.sha256()
    for batch in batches:
        sizes.append(len(batch))
        for f in batch:
            times.append(f.time)
            digest.update(f.image.tobytes())
            digest.update(f.thumbnail or b"-")
    return {"sizes": sizes, "times": times, "sha256": digest.hexdigest()}


def frames_and_seconds(clip: Path) -> dict:
    with frames.FrameBatches(clip, 1.0, 64, process=True) as batches:
        forked = isinstance(batches._child, frames._ForkedChild)
        out = _frames_digest(batches)
        return {**out, "forked": forked, "seconds": batches.seconds}


def corrupt(clip: Path) -> dict:
    broken = clip.with_name("broken.mp4")
    broken.write_bytes(clip.read_bytes()[:48] + b"\x00" * 4000)
    try:
        with frames.FrameBatches(broken, 1.0, 64, process=True) as batches:
            list(batches)
    except errors.VideoOpenError as exc:
        return {"error": type(exc).__name__, "message": str(exc)}
    return {"error": None}


def close_early(clip: Path) -> dict:
    batches = frames.FrameBatches(clip, 1.0, None, process=True)
    first = next(iter(batches))
    batches.close()
    return {"first": len(first), "returncode": batches._child.returncode}


def child_dies(clip: Path) -> dict:
    batches = frames.FrameBatches(clip, 1.0, None, process=True)
    batches._child.kill()
    try:
        list(batches)
    except errors.VideoOpenError as exc:
        return {"message": str(exc)}
    finally:
        batches.close()
    return {"message": None}


def reaped_without_close(clip: Path) -> dict:
    batches = frames.FrameBatches(clip, 1.0, None, process=True)
    count = sum(len(b) for b in batches)
    return {"count": count, "returncode": batches._child.returncode}


def stuck_fork(clip: Path) -> dict:
    """A fork that never decodes its first frame is replaced by a ``python -m`` child."""
    frames.FORK_STARTUP_S = 1.0
    frames._child_main = lambda *args, **kwargs: time.sleep(3600)  # only the fork runs this one
    with frames.FrameBatches(clip, 1.0, None, process=True) as batches:
        fork = batches._child
        count = sum(len(b) for b in batches)
        replaced = isinstance(fork, frames._ForkedChild) and isinstance(
            batches._child, subprocess.Popen
        )
        return {"count": count, "replaced": replaced, "fork_reaped": fork.returncode is not None}


if __name__ == "__main__":
    scenario, clip = sys.argv[1], Path(sys.argv[2])
    result = {"can_fork": frames._can_fork(), **globals()[scenario](clip)}
    print(json.dumps(result))
