"""Files that must be new: created, never opened through whatever already has their name.

    >>> with os.fdopen(create_new(folder / f".report.{secrets.token_hex(6)}.part"), "wb") as f:
    ...     f.write(data)
    >>> write_whole(folder / "sheet.png", lambda f: picture.save(f, format="PNG"))

In a folder others can write to, a link planted at the name a program is about to write would
send its bytes to the link's target. ``O_EXCL`` refuses any existing name, a link included.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def create_new(path: Path) -> int:
    """A descriptor of a new file at ``path``, open for writing in binary (mode as the umask
    allows); FileExistsError when anything has that name already."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)  # (Windows: no \r\n)
    return os.open(path, flags, 0o666)


def write_whole(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """``write`` a file into a new, randomly named file beside ``path``, then rename it into
    place: a full disk or a kill partway leaves ``path`` as it was (a cut-off PNG had stayed
    behind), and nothing is written through a link at a guessable name. OSError as raised,
    naming ``path`` where the failed write named no file (a full disk: "No space left")."""
    part = path.with_name(f".{path.name}.{secrets.token_hex(6)}.part")
    try:
        with os.fdopen(create_new(part), "wb") as file:
            write(file)
        os.replace(part, path)
    except OSError as error:
        if error.filename is None and error.errno is not None:
            raise OSError(error.errno, error.strerror, str(path)) from None
        raise
    finally:
        part.unlink(missing_ok=True)  # (gone once renamed)
