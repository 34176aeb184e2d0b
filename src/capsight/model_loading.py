"""One model loads at a time in a process: ``@loaded_once`` caches a loader behind a lock.

Two threads that build models at once (a server's ``/v1/models`` beside a request for
``prefix-gpt2``) import transformers' lazy modules together, and one of them fails with
"cannot import name 'GPT2LMHeadModel'"; without the lock both would also build the same model.
A model already built is handed out without the lock, so a long load never holds up requests
for the models that are ready. The lock is re-entrant: building a captioner builds its encoder
through another cached loader. Loading leaves torch's global random state as it found it.

    >>> @loaded_once(maxsize=8)
    ... def captioner(name): ...
    >>> captioner.cache_clear()
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

LOADING = threading.RLock()


def loaded_once(maxsize: int = 8) -> Callable[[Callable[..., T]], Callable[..., T]]:
    """Cache up to ``maxsize`` results by argument (the oldest dropped first); a result not
    cached yet is built under ``LOADING``, one at a time across the process."""

    def decorate(load: Callable[..., T]) -> Callable[..., T]:
        cache: dict = {}  # insertion-ordered; a read needs no lock (dict reads are atomic)
        signature = inspect.signature(load)

        @functools.wraps(load)
        def one_at_a_time(*args, **kwargs) -> T:
            # Keyed by what the arguments mean: f(x), f(x, flag=True) and f(x, True) with
            # flag=True by default are one model, not three copies of it.
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            key = tuple(bound.arguments.items())
            try:
                return cache[key]
            except KeyError:
                pass
            with LOADING:
                if key not in cache:  # another thread may have built it while this one waited
                    cache[key] = _without_drawing(load, args, kwargs)
                    while len(cache) > maxsize:
                        del cache[next(iter(cache))]
                return cache[key]

        one_at_a_time.cache_clear = cache.clear  # type: ignore[attr-defined]
        return one_at_a_time

    return decorate


def keeps_random_state(build: Callable[..., T]) -> Callable[..., T]:
    """Decorator: ``build`` leaves torch's global random state as it found it (for the lazy
    builders outside ``loaded_once``: a checkpoint's modules, BatchNorm folded into a copy)."""

    @functools.wraps(build)
    def without_drawing(*args, **kwargs) -> T:
        return _without_drawing(build, args, kwargs)

    return without_drawing


def _without_drawing(load: Callable[..., T], args: tuple, kwargs: dict) -> T:
    """``load(...)`` with torch's global random state as it was before: building a module draws
    its initial weights from it (overwritten by the checkpoint), and a caller who seeded torch
    would otherwise get other numbers depending on which models happened to be cached. (The
    state is process-wide: numbers another thread draws during a load are drawn again after it;
    capsight's own sampling uses generators of its own.)"""
    torch = sys.modules.get("torch")  # not imported yet: nobody can have seeded it
    if getattr(torch, "random", None) is None:  # (or another thread is still importing it)
        return load(*args, **kwargs)
    with torch.random.fork_rng(devices=[]):
        return load(*args, **kwargs)
