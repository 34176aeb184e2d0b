"""Checking that a folder can take the files a command will write, before the slow work starts.

    >>> make_writable_folder(Path("out/clip"))     # made if missing; OSError if it cannot be written

A permission check is not enough: root passes it for /proc, and a path under a file fails only
when something is written there. So a file is written and removed.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from capsight.io.new_files import create_new


def make_writable_folder(folder: Path) -> None:
    """Create ``folder`` (and its parents), then write and remove a file there; raises OSError
    (FileExistsError or NotADirectoryError when a parent is a file) when it cannot be done."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".capsight-write-check-{secrets.token_hex(6)}"  # one per call: torchrun ranks
    os.close(create_new(probe))
    probe.unlink()
