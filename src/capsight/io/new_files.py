"""Files that must be new: created, never opened through whatever already has their name.

    >>> with os.fdopen(create_new(folder / f".report.{secrets.token_hex(6)}.part"), "wb") as f:
    ...     f.write(data)

In a folder others can write to, a link planted at the name a program is about to write would
send its bytes to the link's target. ``O_EXCL`` refuses any existing name, a link included.
"""

from __future__ import annotations

import os
from pathlib import Path


def create_new(path: Path) -> int:
    """A descriptor of a new file at ``path``, open for writing in binary (mode as the umask
    allows); FileExistsError when anything has that name already."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)  # (Windows: no \r\n)
    return os.open(path, flags, 0o666)
