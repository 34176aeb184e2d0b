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

import os
import signal
from collections.abc import Iterator

from capsight.batch.outcome import VideoOutcome, analyze_into
from capsight.errors import CapsightError


def run_in_process(tasks, options: dict, progress=None) -> Iterator[VideoOutcome]:
    """Each (video, folder) of ``tasks`` in turn; ``progress(i, fraction, message)`` hears the
    i-th video's analysis, from its start (a video that cannot be opened is heard of too)."""
    for i, (video, folder) in enumerate(tasks):
        heard = None if progress is None else (lambda f, m, i=i: progress(i, f, m))
        if heard is not None:
            heard(0.0, "opening the video")
        yield analyze_into(video, folder, options, heard)


def run_on_pool(tasks, options: dict, workers: int) -> Iterator[VideoOutcome]:
    """The (video, folder) pairs of ``tasks`` on ``workers`` spawned processes, outcomes in the
    order the videos finish. Leaving the iteration early (an exception, Ctrl-C) ends the
    workers at once: a video cut off leaves its outputs, which are written last, unwritten. A
    worker that dies (killed, out of memory) breaks the pool, and every video not yet done with
    it: those go to a fresh pool, and after a second break each goes to a pool of its own, so
    that only a video that kills its worker every time fails."""
    tasks, breaks = list(tasks), 0
    while tasks:
        unfinished: list = []
        if breaks < 2:
            yield from _one_pool(tasks, options, workers, unfinished)
        else:
            for task in tasks:
                alone: list = []
                yield from _one_pool([task], options, 1, alone)
                for video, folder in alone:
                    error = CapsightError(WORKER_DIED.format(video))
                    yield VideoOutcome(str(video), str(folder), error=error)
        breaks += 1
        tasks = unfinished


WORKER_DIED = (
    "{}: not analysed: the worker process analysing it alone died (killed, or out of memory: "
    "try fewer --workers; from a Python script, is the batch under "
    "`if __name__ == '__main__':`? A spawned worker imports the script)"
)


def _one_pool(tasks, options: dict, workers: int, unfinished: list) -> Iterator[VideoOutcome]:
    """``tasks`` on one pool; the (video, folder) pairs a broken pool left go into ``unfinished``."""
    import gc
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    context = multiprocessing.get_context("spawn")  # no forked torch or ONNX Runtime state
    executor = ProcessPoolExecutor(
        min(workers, len(tasks)) or 1, mp_context=context, initializer=_quiet_worker
    )
    try:
        futures = {}
        for i, (video, folder) in enumerate(tasks):
            try:
                futures[executor.submit(analyze_into, video, str(folder), options)] = (
                    video,
                    folder,
                )
            except BrokenProcessPool:  # a worker died while the videos were handed out
                unfinished.extend(tasks[i:])
                break
        for future in as_completed(futures):
            try:
                outcome = future.result()
            except BrokenProcessPool:  # (multiprocessing.Pool had waited for it for ever)
                unfinished.append(futures[future])
                continue
            yield outcome
    finally:
        # Python 3.11's executor can only wait for running videos; a Ctrl-C must not.
        for process in list((getattr(executor, "_processes", None) or {}).values()):
            process.terminate()
        executor.shutdown(wait=True, cancel_futures=True)
        # The executor's queues freed now (it sits in reference cycles), not at exit: after
        # Ctrl-C, Python's resource tracker had warned of "leaked semaphore objects" on stderr.
        del executor
        gc.collect()


def _quiet_worker() -> None:
    """In each worker: Ctrl-C is the parent's to handle (it ends the pool), not a traceback per
    worker; OpenMP threads wait passively, as the CLI's do, so idle ones leave the cores."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
