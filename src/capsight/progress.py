"""One progress callback for long work: the CLI draws a bar, the API reports job progress.

    def on_progress(fraction: float, message: str) -> None: ...

``fraction`` runs from 0.0 to 1.0 (monotonic); ``message`` says what is being done.
"""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[float, str], None]


def no_progress(fraction: float, message: str) -> None:
    """The default callback: report nothing."""


def span(progress: ProgressCallback | None, start: float, end: float) -> ProgressCallback | None:
    """``progress`` for one phase of longer work: the phase's 0..1 drawn as ``start``..``end``."""
    if progress is None:
        return None
    return lambda fraction, message: progress(start + (end - start) * fraction, message)


def check_progress(progress: object) -> None:
    """InvalidParameter unless ``progress`` is None or callable (3 was a TypeError once the work
    had started)."""
    from capsight.errors import InvalidParameter

    if progress is not None and not callable(progress):
        raise InvalidParameter(f"progress must be a function of (fraction, message), not "
                               f"{type(progress).__name__!r}")  # fmt: skip
    if progress is not None and not _binds(progress, (0.5, "text")):  # lambda: None failed mid-run
        raise InvalidParameter("progress must take two arguments, (fraction, message), e.g. "
                               "lambda fraction, message: print(f'{fraction:.0%} {message}')")  # fmt: skip


def check_video_progress(progress: object) -> None:
    """As ``check_progress``, for a batch's ``progress(i, fraction, message)`` (a callback of
    two arguments had failed with a TypeError mid-run)."""
    from capsight.errors import InvalidParameter

    if progress is not None and (not callable(progress) or not _binds(progress, (0, 0.5, "text"))):
        raise InvalidParameter("progress must be a function of (i, fraction, message), the i-th "
                               "video's progress, e.g. lambda i, fraction, message: print(i, "
                               "f'{fraction:.0%} {message}')", "progress")  # fmt: skip


def _binds(function, args: tuple) -> bool:
    """Whether ``function(*args)`` binds (True where its signature cannot be read)."""
    import inspect

    try:
        inspect.signature(function).bind(*args)
    except TypeError:
        return False
    except ValueError:  # a builtin without a signature
        return True
    return True
