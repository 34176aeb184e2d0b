"""A tqdm progress bar on stderr, driven by the library's ``ProgressCallback``.

    >>> with ProgressBar(enabled=True) as on_progress:
    ...     analyze_video("clip.mp4", progress=on_progress)
    sampling frames  42%|████▏     | 00:03<00:04

The library reports ``(fraction 0..1, message)``; the bar shows the fraction as a percentage and
the message as its label. Disabled (a no-op callback) with ``--quiet`` or when stderr is not a
terminal, so logs and pipes stay clean.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import IO

_STEPS = 1000  # the bar's resolution: fraction * _STEPS whole steps


class ProgressBar:
    """Context manager yielding a ``ProgressCallback`` that draws on ``file`` (stderr)."""

    def __init__(
        self,
        enabled: bool = True,
        file: IO[str] | None = None,
        min_interval: float = 0.1,
        tick: float = 1.0,
    ) -> None:
        self.file = file if file is not None else sys.stderr
        self.enabled = enabled
        self.min_interval = min_interval  # seconds between redraws
        # Seconds between redraws with no report: the elapsed clock keeps moving through a long
        # step that reports nothing (picking an hour's novel moments, 8 s at 99%, had looked hung).
        self.tick = tick
        self._ticking: threading.Event | None = None
        self._bar = None
        self._done = 0
        self._stderr: IO[str] | None = None  # sys.stderr as it was, while a bar is drawn there

    @staticmethod
    def wanted(quiet: bool, file: IO[str] | None = None) -> bool:
        """Draw a bar unless ``--quiet`` or the stream is not a terminal (a pipe or a log)."""
        stream = file if file is not None else sys.stderr
        return not quiet and bool(getattr(stream, "isatty", lambda: False)())

    def __enter__(self):
        if not self.enabled:
            return _ignore
        from tqdm import tqdm

        width, height = _terminal_size(self.file)
        self._bar = tqdm(
            total=_STEPS,
            file=self.file,
            leave=False,
            dynamic_ncols=width is None,
            ncols=width,
            nrows=height,
            mininterval=self.min_interval,
            bar_format="{desc} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}",
        )
        if self.file is sys.stderr:  # error lines printed meanwhile go above the bar, not onto it
            self._stderr = sys.stderr
            sys.stderr = _AboveTheBar(self.file)
        self._ticking = threading.Event()
        self._ticker = threading.Thread(
            target=self._tick, args=(self._bar, self._ticking), daemon=True
        )
        self._ticker.start()
        return self

    def _tick(self, bar, stop: threading.Event) -> None:
        while not stop.wait(self.tick):
            try:
                bar.refresh()  # (tqdm's own lock keeps it from drawing over a report's redraw)
            except Exception:  # (a closed or broken stderr: the bar is of no use any more)
                return

    @property
    def drawn(self) -> bool:
        """Whether the bar is on the screen now (entered, enabled, not yet closed)."""
        return self._bar is not None

    def __call__(self, fraction: float, message: str) -> None:
        if self._bar is None:
            return
        target = round(min(max(float(fraction), 0.0), 1.0) * _STEPS)
        if message:
            self._bar.set_description_str(message, refresh=False)
        if target > self._done:
            self._bar.update(target - self._done)
            self._done = target
        else:
            self._bar.refresh()

    def __exit__(self, *exc) -> None:
        if self._ticking is not None:  # stopped, and done, before the bar is closed: a last
            self._ticking.set()  # tick had redrawn the bar after close() cleared its line
            self._ticker.join()
            self._ticking = None
        if self._stderr is not None:
            sys.stderr.flush()
            sys.stderr, self._stderr = self._stderr, None
        if self._bar is not None:
            self._bar.close()
            self._bar = None


class _AboveTheBar:
    """``sys.stderr`` while a bar is drawn there: each write clears the bar first and redraws it
    after (``error: missing.jpg`` was appended to the bar's line)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.pending = ""  # print() writes the line and its newline apart: whole lines go out

    def write(self, text: str) -> int:
        from tqdm import tqdm

        self.pending += text
        if "\n" in self.pending:
            lines, _, self.pending = self.pending.rpartition("\n")
            with tqdm.external_write_mode(file=self.stream):
                self.stream.write(lines + "\n")
        return len(text)

    def flush(self) -> None:
        if self.pending:
            self.write("\n")
        self.stream.flush()

    def __getattr__(self, name: str):
        return getattr(self.stream, name)


def _terminal_size(stream: IO[str]) -> tuple[int | None, int | None]:
    """(columns, rows) for tqdm: None to follow the terminal as it changes; 80 columns or 24
    rows where the terminal reports none (0, as a bare pseudo-terminal may), for which tqdm
    would draw nothing (a bar at or below the last row is hidden)."""
    try:
        size = os.get_terminal_size(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return None, None
    return (None if size.columns > 0 else 80), (None if size.lines > 0 else 24)


def _ignore(fraction: float, message: str) -> None:
    """The callback used when the bar is off."""
