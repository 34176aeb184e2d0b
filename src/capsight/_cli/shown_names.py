"""A file name as a line of text output shows it: control characters escaped.

    >>> shown_name("new\\nline.jpg")
    'new\\\\nline.jpg'

A name may hold any character but "/" and NUL. A newline in one had split its result over two
lines (a reader of ``capsight caption photos/ > captions.txt`` then takes the second half for a
name of its own), and an escape sequence reached the terminal as a command. Such characters are
written as Python writes them in a string (``\\n``, ``\\x1b``); everything else is left as it is,
bytes that are not UTF-8 included (stdout writes them back as they came: ``capsight._cli.main``).
"""

from __future__ import annotations

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _control(c: str) -> bool:
    code = ord(c)
    return code < 0x20 or 0x7F <= code < 0xA0


def shown_name(name: str) -> str:
    """``name`` with its control characters (C0, DEL and C1) escaped; unchanged without any."""
    if not any(map(_control, name)):
        return name
    return "".join(_ESCAPES.get(c, f"\\x{ord(c):02x}") if _control(c) else c for c in name)
