"""Local runners: the videos one after the other in this process, or on a pool of processes.

In this process the models load once and every video reports its progress. A pool of
``workers`` processes (spawned, so each loads the models once for itself) fills the cores one
analysis leaves idle: its stages (decoding, encoding, captioning, capsight.novelty.pipeline)
run single-threaded and wait on each other. On 2 cores, 2 workers ran 12 real clips 1.3x
faster than one, 3 no faster (benchmarks/batch_throughput.py). Outcomes come back as videos
finish.

    >>> for outcome in run_on_pool([("a.mp4", "out/a"), ("b.mp4", "out/b")], {}, workers=2):
    ...     print(outcome.video, outcome.ok)
"""

from __future__ import annotations

import gc
import os
import signal
from collections.abc import Iterator

from capsight.batch.outcome import VideoOutcome, analyse_into


def run_in_process(tasks, options: dict, progress=None) -> Iterator[VideoOutcome]:
    """Each (video, folder) of ``tasks`` in turn; ``progress(i, fraction, message)`` hears the
    i-th video's analysis."""
    for i, (video, folder) in enumerate(tasks):
        heard = None if progress is None else (lambda f, m, i=i: progress(i, f, m))
        yield analyse_into(video, folder, options, heard)


def run_on_pool(tasks, options: dict, workers: int) -> Iterator[VideoOutcome]:
    """The (video, folder) pairs of ``tasks`` on ``workers`` spawned processes, outcomes in the
    order the videos finish. Leaving the iteration early (an exception, Ctrl-C) ends the
    workers at once: a video cut off leaves what the analysis writes last, its files, unwritten."""
    import multiprocessing

    tasks = list(tasks)
    context = multiprocessing.get_context("spawn")  # no forked torch or ONNX Runtime state
    pool = context.Pool(min(workers, len(tasks)) or 1, initializer=_quiet_worker)
    try:
        calls = [(video, str(folder), options) for video, folder in tasks]
        yield from pool.imap_unordered(_analyse, calls)
        pool.close()
    finally:
        pool.terminate()  # a no-op once the pool has closed with every video done
        pool.join()
        # The pool's queues freed now (it sits in reference cycles), not at exit: after Ctrl-C,
        # Python's resource tracker had warned of "6 leaked semaphore objects" on stderr.
        del pool
        gc.collect()


def _analyse(call) -> VideoOutcome:
    video, folder, options = call
    return analyse_into(video, folder, options)


def _quiet_worker() -> None:
    """In each worker: Ctrl-C is the parent's to handle (it ends the pool), not a traceback per
    worker; OpenMP threads wait passively, as the CLI's do, so idle ones leave the cores."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
