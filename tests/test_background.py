"""Background: items in order, errors re-raised in the consumer, close() stops the producer."""

from __future__ import annotations

import threading
import time

import pytest

from capsight.allocator import reuse_freed_memory
from capsight.background import Background


def test_items_arrive_in_order_and_the_thread_ends():
    stage = Background(iter(range(50)), buffer=2)
    assert list(stage) == list(range(50))
    stage.close()
    assert stage.seconds > 0


def test_stages_chain_and_exceptions_reach_the_consumer():
    def broken():
        yield 1
        yield 2
        raise ValueError("frame 3 is corrupt")

    first = Background(broken())
    second = Background(x * 10 for x in first)
    seen = []
    with pytest.raises(ValueError, match="frame 3 is corrupt"):
        for item in second:
            seen.append(item)
    assert seen == [10, 20]
    second.close()
    first.close()


def test_yielded_exception_objects_are_items_not_errors():
    error = KeyError("just data")
    assert list(Background(iter([error]))) == [error]


def test_close_stops_a_producer_the_consumer_abandoned():
    produced = []

    def endless():
        while True:
            produced.append(1)
            yield len(produced)

    stage = Background(endless(), buffer=2)
    assert next(iter(stage)) == 1
    stage.close(timeout=2)
    count = len(produced)
    time.sleep(0.3)
    assert len(produced) == count  # nothing more produced after close
    assert not any(t.is_alive() and t is stage._thread for t in threading.enumerate())


def test_reuse_freed_memory_is_idempotent():
    assert reuse_freed_memory() == reuse_freed_memory()
    assert isinstance(reuse_freed_memory(), bool)
