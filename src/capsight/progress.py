"""One progress callback for long work: the CLI draws a bar, the API reports job progress.

    def on_progress(fraction: float, message: str) -> None: ...

``fraction`` runs from 0.0 to 1.0 (monotonic); ``message`` says what is being done.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """The default callback: report nothing."""
