"""Errors a user can cause. Each says what went wrong and what to do about it.

The CLI prints ``str(error)`` on one line and exits with status 2; the HTTP API answers 4xx with
``{"error": str(error)}``. Anything that is *not* a ``CapsightError`` is a bug in capsight.
"""

from __future__ import annotations

import numbers


class CapsightError(Exception):
    """Base class for every error caused by input, options or missing optional packages."""


class InputNotFound(CapsightError):
    """A path that does not exist or is a directory where a file was expected."""


class ImageLoadError(CapsightError):
    """A file that cannot be read as an image (corrupt, truncated, not an image, too large)."""


class VideoOpenError(CapsightError):
    """A file that cannot be opened or decoded as a video, or has no video stream."""


class InvalidParameter(CapsightError):
    """An option outside its allowed range or set. ``parameter``, when given, is the Python
    argument at fault and the message opens with its name (``every must be ...``); the CLI
    writes its flag there instead (``--every must be ...``)."""

    def __init__(self, message: str = "", parameter: str | None = None):
        super().__init__(message)
        self.parameter = parameter


class ModelNotFound(CapsightError):
    """A model name that is not registered, or weights that are not installed."""


class DatasetError(CapsightError):
    """A caption dataset file that is malformed or does not match its images."""


class MissingDependency(CapsightError):
    """An optional package or program (pycocoevalcap, Java, mlflow) that a feature needs."""


# Warnings the library gives (``warnings.warn``): what a result will not show. One base, here
# with the errors, so a caller filters them without importing the modules that give them.
class CapsightWarning(UserWarning):
    """A note about a result: something asked for had no effect, or the result is a guess."""


class DecodingIgnored(CapsightWarning):
    """Decoding options were given to ``labels``, which names classes and decodes nothing."""


class ClassesIndistinct(CapsightWarning):
    """Some of the classes look the same to the engine and score alike on every photo."""


def check_count(name: str, value: object, least: int) -> int:
    """``value`` as a plain int when it is a whole number >= ``least`` (NumPy integers too, as
    ``DecodingOptions`` takes them; not True), else InvalidParameter naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        parameter = name if name.isidentifier() else None
        raise InvalidParameter(
            f"{name} must be a whole number >= {least}, got {value!r}", parameter
        )
    return int(value)


def name_hint(name: object, names) -> str:
    """ " (names are lower case: did you mean 'minilm'?)" for a captioner or embedder named in
    capitals ("MiniLM"), " (did you mean 'show-attend-tell'?)" for one a letter or two off,
    else "": a bare "unknown" had not said why a name that reads right was refused."""
    if not isinstance(name, str):
        return ""
    same = [n for n in names if n == name.lower()]
    if same:
        return f" (names are lower case: did you mean {same[0]!r}?)"
    import difflib

    close = difflib.get_close_matches(name.lower(), [str(n) for n in names], n=1, cutoff=0.8)
    return f" (did you mean {close[0]!r}?)" if close else ""


def quoted(value: str, limit: int = 60) -> str:
    """``value`` as a message quotes it: ``repr``, cut to ``limit`` characters with "..." (a
    whole file sent as one name or class list would otherwise be the message)."""
    return repr(value if len(value) <= limit else value[: limit - 3] + "...")


def check_decoded(text: str, what: str) -> None:
    """InvalidParameter for ``text`` holding bytes that were not UTF-8: Python keeps such bytes of
    a command line as lone surrogates, which no encoder takes (a UnicodeEncodeError traceback
    when the text was embedded or stored)."""
    if any("\ud800" <= c <= "\udfff" for c in text):
        raise InvalidParameter(f"{what} {quoted(text, 40)} is not valid UTF-8 text; type it again, "
                               "or set the terminal to UTF-8")  # fmt: skip
