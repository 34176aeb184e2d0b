"""One model loads at a time in a process: ``@loaded_once`` is ``lru_cache`` behind a lock.

Two threads that build models at once (a server's ``/v1/models`` beside a request for
``prefix-gpt2``) import transformers' lazy modules together, and one of them fails with
"cannot import name 'GPT2LMHeadModel'"; without the lock both would also build the same model.
The lock is re-entrant: building a captioner builds its encoder through another cached loader.

    >>> @loaded_once(maxsize=8)
    ... def captioner(name): ...
    >>> captioner.cache_clear()
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

LOADING = threading.RLock()


def loaded_once(maxsize: int = 8) -> Callable[[Callable[..., T]], Callable[..., T]]:
    def decorate(load: Callable[..., T]) -> Callable[..., T]:
        cached = functools.lru_cache(maxsize=maxsize)(load)

        @functools.wraps(load)
        def one_at_a_time(*args, **kwargs) -> T:
            with LOADING:
                return cached(*args, **kwargs)

        one_at_a_time.cache_clear = cached.cache_clear  # type: ignore[attr-defined]
        one_at_a_time.cache_info = cached.cache_info  # type: ignore[attr-defined]
        return one_at_a_time

    return decorate
