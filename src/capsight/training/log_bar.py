"""Training's progress bars, readable in a log as well as on a terminal.

    >>> for batch in progress_bar(batches, total=steps, desc="xe epoch 1"):
    ...     ...

On a terminal: tqdm's bar, redrawn in place. Redirected to a file (``nohup capsight train ... >
train.log 2>&1 &``, a job scheduler's log): one plain line per update, at most every
``LOG_INTERVAL_S`` seconds, instead of tqdm's carriage-return redraws, which pile up in the file
as one endless line of ``^M``-separated frames.
"""

from __future__ import annotations

import sys
from typing import IO

LOG_INTERVAL_S = 60.0  # seconds between a bar's lines in a log


class _Lines:
    """A stream for tqdm that writes each redraw as a line of its own."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, text: str) -> None:
        text = text.replace("\r", "").rstrip("\n")
        if text.strip():  # tqdm also writes bare "\r" and "\n" to clear and end its line
            self.stream.write(text + "\n")

    def flush(self) -> None:
        self.stream.flush()


def progress_bar(iterable=None, *, stream: IO[str] | None = None, **options):
    """``tqdm(iterable, **options)`` on ``stream`` (stderr): as is on a terminal, line by line
    in a log."""
    from tqdm import tqdm

    stream = stream if stream is not None else sys.stderr
    if not getattr(stream, "isatty", lambda: False)():
        options["mininterval"] = max(float(options.get("mininterval", 0.1)), LOG_INTERVAL_S)
        options["file"] = _Lines(stream)
        options.setdefault("ascii", True)  # no block characters in a log
    else:
        options.setdefault("file", stream)
    return tqdm(iterable, **options)
