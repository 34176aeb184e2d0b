"""Run an iterator on a background thread, handing its items over through a bounded queue.

    >>> frames = Background(read_batches(path))          # decoding starts now, on its own thread
    >>> encoded = Background(encode(batch) for batch in frames)   # a second stage, chained
    >>> try:
    ...     for item in encoded: ...                     # the consumer
    ... finally:
    ...     encoded.close(); frames.close()

Stages chain into a pipeline whose steps overlap: while one batch is captioned, the next is
encoded and the one after is decoded. PyAV and PyTorch release the GIL in their heavy calls, so
the threads really run in parallel. An exception raised by the iterator is re-raised in the
consumer; ``close`` stops the thread (it also stops on its own once the iterator is exhausted).
``seconds`` is the time the thread spent producing, waits for the consumer included.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_DONE = object()
_POLL_S = 0.1


class _Failed:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


class Background(Generic[T]):
    def __init__(self, items: Iterable[T], buffer: int = 2) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=buffer)
        self._stop = threading.Event()
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, args=(items,), daemon=True)
        self._thread.start()

    def _run(self, items: Iterable[T]) -> None:
        started = time.perf_counter()
        try:
            for item in items:
                if not self._put(item):
                    return
            self._put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(_Failed(exc))
        finally:
            self.seconds = time.perf_counter() - started

    def _put(self, item) -> bool:
        """Wait for room in the queue; False when the consumer closed us meanwhile."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        while not self._stop.is_set():
            try:
                item = self._queue.get(timeout=_POLL_S)
            except queue.Empty:
                continue
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout=timeout)
