"""Caption requests that arrive together are computed together: dynamic batching.

    >>> batcher = CaptionBatcher(describe_images, workers=1, max_batch=16)
    >>> batcher.describe([photo], model="labels")          # blocks; returns [ImageDescription]

A worker takes the oldest waiting request and every other waiting request with the same model
and decoding options (up to ``max_batch`` images), captions them in one batch, and hands each
request its own results. Nothing waits on purpose: a lone request runs at once as a batch of
one; under load, requests pile up while the worker is busy and the next batch is bigger. A
trained captioner decodes a batch of 8 in about half the time per image of 8 single calls on
two cores, so busy servers answer more requests per second at a lower p95.

Requests with a sampling seed are never merged with others, so their captions stay reproducible.

A request may carry a ``deadline`` (``time.monotonic()`` seconds): one whose deadline has passed
while it waited is dropped before its batch runs (its caller has already answered 504), so an
overloaded server spends its cores on requests someone still waits for. A batch already running
is finished.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

_unique = itertools.count()


@dataclass(eq=False)  # compared by identity: field by field would compare every photo's pixels
class _Request:
    images: list
    model: str
    decoding: Any
    num_labels: int
    key: tuple
    deadline: float | None = None
    future: Future = field(default_factory=Future)


class RequestExpired(TimeoutError):
    """The request's deadline passed before its batch could run; nothing was computed."""


class BatcherStopping(RuntimeError):
    """The server is stopping: a request still waiting for its batch is dropped unrun."""


class CaptionBatcher:
    """Queue of caption requests served by ``workers`` threads in compatible batches."""

    def __init__(
        self,
        describe: Callable[..., Sequence],
        workers: int = 1,
        max_batch: int = 16,
    ) -> None:
        self._describe = describe  # describe(images, model=, decoding=, num_labels=) -> list
        self.max_batch = max_batch
        self._pending: list[_Request] = []
        self._cv = threading.Condition()
        self._stopped = False
        self._dropping = False  # the server is stopping: no request is taken any more
        self.batches = 0  # batches run (for tests and the curious)
        self.largest_batch = 0
        self.expired = 0  # requests dropped unrun because their deadline had passed
        self._threads = [
            threading.Thread(target=self._work, name=f"capsight-caption-{i}", daemon=True)
            for i in range(workers)
        ]
        for t in self._threads:
            t.start()

    def describe(
        self, images: list, model: str, decoding=None, num_labels: int = 3,
        deadline: float | None = None,
    ) -> list:  # fmt: skip
        """Caption ``images``; blocks until this request's batch is done (errors re-raised).
        Raises ``RequestExpired`` if ``deadline`` (monotonic seconds) passed while it waited."""
        seeded = decoding is not None and getattr(decoding, "seed", None) is not None
        key = (model, decoding, num_labels, next(_unique) if seeded else None)
        request = _Request(list(images), model, decoding, num_labels, key, deadline)
        with self._cv:
            if self._stopped:
                raise RuntimeError("the caption batcher is stopped")
            if self._dropping:  # (an upload still arriving at SIGTERM)
                raise BatcherStopping("the server is stopping")
            self._pending.append(request)
            self._cv.notify()
        return request.future.result()

    def drop_waiting(self) -> int:
        """Fail every request still waiting, and every later one, with ``BatcherStopping`` (a
        batch running is finished); the number dropped. A stopping server exits after one batch
        at most, not after every batch its clients queued (25-70 s behind a SIGTERM)."""
        with self._cv:
            waiting, self._pending = self._pending, []
            self._dropping = True
        for request in waiting:
            request.future.set_exception(BatcherStopping("the server is stopping"))
        return len(waiting)

    def stop(self, timeout: float = 10.0) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify_all()
        for t in self._threads:
            t.join(timeout)

    def _take_batch(self) -> list[_Request] | None:
        with self._cv:
            while not self._pending and not self._stopped:
                self._cv.wait()
            now = time.monotonic()
            for request in [
                r for r in self._pending if r.deadline is not None and r.deadline <= now
            ]:
                self._pending.remove(request)
                self.expired += 1
                request.future.set_exception(
                    RequestExpired("the request's time limit passed while it waited")
                )
            if not self._pending:
                return None if self._stopped else []
            first = self._pending.pop(0)
            batch, size = [first], len(first.images)
            for request in list(self._pending):
                if request.key == first.key and size + len(request.images) <= self.max_batch:
                    self._pending.remove(request)
                    batch.append(request)
                    size += len(request.images)
            return batch

    def _work(self) -> None:
        while (batch := self._take_batch()) is not None:
            if not batch:  # only expired requests were waiting
                continue
            first = batch[0]
            images = [img for r in batch for img in r.images]
            self.batches += 1
            self.largest_batch = max(self.largest_batch, len(images))
            try:
                results = list(
                    self._describe(
                        images,
                        model=first.model,
                        decoding=first.decoding,
                        num_labels=first.num_labels,
                    )
                )
            except BaseException as exc:  # every request of the batch gets the error
                for r in batch:
                    r.future.set_exception(exc)
                continue
            start = 0
            for r in batch:
                r.future.set_result(results[start : start + len(r.images)])
                start += len(r.images)
