"""Whether a photo's top class stands out from the rest, or the scores are a toss-up.

    >>> stands_out([0.52, 0.48])     # False: a near tie reads as no answer
    >>> stands_out([0.21, 0.04, ...])  # True: among many classes, 5x the next is a clear lead

The scores are shares of the classes asked about, so a photo of none of them still has a
"winner"; the web page shows no headline and the CLI a note where none stands out.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable

# The top class is a clear winner only this far ahead of the next: 52% against 48% is a
# toss-up, 49% against 2% of a thousand classes is not.
CLEAR_MARGIN = 0.2
# ... or this many times the next's share, with at least CLEAR_FLOOR of its own: among many
# classes a lead of 20 points is rare, and 21% against 4% of ImageNet's thousand is a clear one.
CLEAR_RATIO, CLEAR_FLOOR = 3.0, 0.1


def top_two(scores: Iterable[float]) -> tuple[float, float]:
    """The best score and the next (0 where there is none)."""
    best = heapq.nlargest(2, scores) + [0.0, 0.0]
    return best[0], best[1]


def stands_out(scores: Iterable[float]) -> bool:
    """Whether the best of ``scores`` is a clear winner (``CLEAR_MARGIN`` ahead of the next, or
    ``CLEAR_RATIO`` times its share with at least ``CLEAR_FLOOR``)."""
    top, second = top_two(scores)
    return top - second >= CLEAR_MARGIN - 1e-9 or (
        top >= CLEAR_FLOOR and top >= CLEAR_RATIO * second
    )
