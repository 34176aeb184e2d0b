"""Where a warning for a library caller points: at the caller's own line, not into capsight.

``warnings.warn(..., stacklevel=2)`` names the function that called the one warning; when that
is capsight's own facade (``capsight.caption`` calls ``describe_images``), the warning named
``facade.py`` and the user's line was nowhere. (Python 3.12's ``skip_file_prefixes`` does this;
capsight runs on 3.11.)

    >>> warnings.warn("...", DecodingIgnored, stacklevel=callers_level())
"""

from __future__ import annotations

import os
import sys

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
_PYTHONS_OWN = os.path.dirname(os.__file__) + os.sep  # the standard library (site-packages aside)


def callers_level() -> int:
    """The ``stacklevel`` of the first frame outside the capsight package, counted from the
    function that calls this one (1 is that function itself); where capsight's own code began
    the call (a server thread: the first frame outside is Python's ``threading``), the outermost
    of capsight's frames instead."""
    frame, level = sys._getframe(1), 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    outside = frame.f_code.co_filename
    if outside.startswith(_PYTHONS_OWN) and "site-packages" not in outside and level > 1:
        return level - 1
    return level
