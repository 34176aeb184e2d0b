"""Dynamic batching: requests waiting together run as one batch and each gets its own results."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import pytest

from capsight.captioning.base import DecodingOptions
from capsight.errors import ModelNotFound
from capsight.server.batching import CaptionBatcher


class _Recorder:
    def __init__(self):
        self.batches: list[list] = []
        self.release = threading.Event()
        self.entered = threading.Event()

    def __call__(self, images, model, decoding, num_labels):
        self.entered.set()
        self.release.wait(10)
        self.batches.append(list(images))
        if model == "broken":
            raise ModelNotFound("no such model")
        return [f"{model}:{img}" for img in images]


def _wait_until_queued(batcher: CaptionBatcher, n: int) -> None:
    """Block until ``n`` requests wait behind the busy worker (at most 10 s)."""
    for _ in range(1000):
        if len(batcher._pending) >= n:
            return
        threading.Event().wait(0.01)
    raise AssertionError(f"{n} requests never queued")


@contextmanager
def _busy_worker():
    """(recorder, batcher, pool, the request "a" of model "m" its only worker is busy with
    until ``recorder.release`` is set): what comes next waits in the queue."""
    rec = _Recorder()
    batcher = CaptionBatcher(rec, workers=1, max_batch=16)
    try:
        with ThreadPoolExecutor(8) as pool:
            busy = pool.submit(batcher.describe, ["a"], "m")
            assert rec.entered.wait(5)
            yield rec, batcher, pool, busy
    finally:
        rec.release.set()  # never leave the worker waiting, even when the test failed
        batcher.stop()


def test_waiting_requests_are_batched_and_answered_separately():
    with _busy_worker() as (rec, batcher, pool, first):
        rest = [pool.submit(batcher.describe, [f"b{i}", f"c{i}"], "m") for i in range(5)]
        _wait_until_queued(batcher, 5)
        rec.release.set()
        assert first.result(5) == ["m:a"]
        assert [f.result(5) for f in rest] == [[f"m:b{i}", f"m:c{i}"] for i in range(5)]
        assert [len(b) for b in rec.batches] == [1, 10]  # the five waiting ones ran together
        assert batcher.largest_batch == 10


def test_different_options_and_seeded_requests_are_not_merged():
    seeded = DecodingOptions(method="sample", seed=3)
    with _busy_worker() as (rec, batcher, pool, busy):
        jobs = [
            pool.submit(batcher.describe, ["p"], "m", seeded),
            pool.submit(batcher.describe, ["q"], "m", seeded),
            pool.submit(batcher.describe, ["r"], "other"),
            pool.submit(batcher.describe, ["s"], "m"),
        ]
        _wait_until_queued(batcher, 4)
        rec.release.set()
        busy.result(5)
        assert [j.result(5) for j in jobs] == [["m:p"], ["m:q"], ["other:r"], ["m:s"]]
        assert sorted(len(b) for b in rec.batches) == [1, 1, 1, 1, 1]


def test_an_error_reaches_every_request_of_its_batch_only():
    rec = _Recorder()
    rec.release.set()
    batcher = CaptionBatcher(rec, workers=1)
    try:
        with pytest.raises(ModelNotFound):
            batcher.describe(["a"], "broken")
        assert batcher.describe(["b"], "fine") == ["fine:b"]
    finally:
        batcher.stop()


def test_requests_whose_deadline_passed_while_waiting_are_dropped_unrun():
    import time

    from capsight.server.batching import RequestExpired

    with _busy_worker() as (rec, batcher, pool, busy):
        late = pool.submit(batcher.describe, ["b"], "m", None, 3, time.monotonic() + 0.05)
        patient = pool.submit(batcher.describe, ["c"], "m", None, 3, time.monotonic() + 60)
        _wait_until_queued(batcher, 2)
        threading.Event().wait(0.1)  # the first deadline passes
        rec.release.set()
        assert busy.result(5) == ["m:a"]
        with pytest.raises(RequestExpired):
            late.result(5)
        assert patient.result(5) == ["m:c"]
        assert rec.batches == [["a"], ["c"]] and batcher.expired == 1  # "b" never ran


def test_a_stopping_server_drops_the_requests_still_waiting():
    """A SIGTERM had the server compute every batch its clients had queued (25-70 s) before
    it could exit; the batch already running is finished."""
    from capsight.server.batching import BatcherStopping

    with _busy_worker() as (rec, batcher, pool, busy):
        waiting = [pool.submit(batcher.describe, [x], "m") for x in "bc"]
        _wait_until_queued(batcher, 2)
        assert batcher.drop_waiting() == 2
        rec.release.set()
        assert busy.result(5) == ["m:a"]
        for future in waiting:
            with pytest.raises(BatcherStopping):
                future.result(5)
        assert rec.batches == [["a"]]
        with pytest.raises(BatcherStopping):  # one that arrives later is not taken either
            batcher.describe(["d"], "m")


def test_the_engine_stopping_sets_its_event_and_drops_its_queue():
    from capsight.server.batching import BatcherStopping
    from capsight.server.engine import Engine

    engine = Engine("labels")
    batcher = engine.batcher
    try:
        engine.stop_waiting()
        assert engine.stopping.is_set()
        with pytest.raises(BatcherStopping):
            batcher.describe(["a"], "labels")
    finally:
        engine.close()
    late = Engine("labels")  # stopped before its first caption: its queue takes none either
    late.stop_waiting()
    try:
        with pytest.raises(BatcherStopping):
            late.batcher.describe(["a"], "labels")
    finally:
        late.close()


def test_the_servers_video_defaults_are_the_librarys():
    """/v1/videos analyses a video left at its defaults as the library and the CLI do: the
    server's VideoParams repeats analyze_video's defaults, which must not drift apart."""
    import dataclasses
    import inspect

    from capsight.novelty.pipeline import analyze_video
    from capsight.server.engine import VideoParams

    params = inspect.signature(analyze_video).parameters
    shared = [f for f in dataclasses.fields(VideoParams) if f.name in params and f.name != "model"]
    assert [f.name for f in shared] == ["every", "window", "metric", "signal", "sensitivity"]
    assert all(f.default == params[f.name].default for f in shared)
    # (model= there defaults to None: captioner=, its older name, holds the default)
    assert VideoParams.model == "default" == params["captioner"].default
    assert params["model"].default is None
