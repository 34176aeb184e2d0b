"""Keep freed memory in the process for reuse instead of handing it back to the kernel at once.

    >>> reuse_freed_memory()      # once, before running models; a no-op off glibc

PyTorch on CPU allocates and frees tens of megabytes of activations per layer. glibc serves
blocks that large with ``mmap`` and unmaps them on ``free``, so every layer of every batch pays
for fresh zeroed pages: on two cores the EfficientNet encoder spent half its time in page faults
(87 images/s at batch 16 on one thread; 163 with this setting; benchmarks/speed.py). Raising
glibc's mmap and trim thresholds keeps those blocks on the heap. The process's peak memory is
unchanged; memory freed after the peak is returned later, not never (``malloc_trim`` still runs
when the heap top exceeds the trim threshold). Threads share one arena, so the setting also
holds for models run on worker threads (capsight.novelty.pipeline). Call it before the process
starts any thread: a thread that allocated earlier keeps an arena of its own, which grows in
64 MB heaps and hands pages back eagerly, and glibc may hand that arena to a later thread too.
The ``capsight`` command calls it first thing; on the 70 s speed clip that halved the CLI's page
faults (400k to 210k) and saved ~0.2 s of its ~3 s.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
_MMAP_THRESHOLD = 256 * 1024 * 1024  # blocks below 256 MB come from the heap
_TRIM_THRESHOLD = 512 * 1024 * 1024  # keep up to 512 MB of free heap top before trimming


@functools.cache
def reuse_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds (once per process); False where not glibc."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    results = [
        mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD),
        mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD),
        # Threads' own arenas ignore the thresholds above (they grow in 64 MB mmapped heaps and
        # give pages back eagerly): one shared arena keeps the encoder thread fast too.
        mallopt(_M_ARENA_MAX, 1),
    ]
    return all(r == 1 for r in results)
