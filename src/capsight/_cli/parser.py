"""``OneLineParser``: argparse that reports a usage error as the one line every capsight error is.

    $ capsight video clip.mp4 --window 1.5
    capsight: error: argument --window: invalid int value: '1.5' (see `capsight video --help`)

Plain argparse prints its usage block first; the subcommand parsers inherit this class, so every
bad option of every command gives one ``capsight: error:`` line and exit status 2.

Options are never abbreviated: plain argparse reads ``train --captions 5`` as
``--captions-per-image 5``, so a mistyped or imagined option would run with a value meant for
something else. Here it is an unrecognised argument.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_known_args(self, args=None, namespace=None):
        self._given = list(sys.argv[1:] if args is None else args)  # for error()'s advice
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        from capsight._cli.main import error_line

        print(error_line(f"{message}{_close_choice(message)} (see `{self.prog} --help`)"
                         f"{self._dashed_file()}"), file=sys.stderr)  # fmt: skip
        raise SystemExit(2)

    def _dashed_file(self) -> str:
        """Advice for a file whose name starts with a dash, which argparse reads as an option
        ("the following arguments are required: IMAGE" for `capsight caption -x.jpg`)."""
        from pathlib import Path

        for arg in getattr(self, "_given", ()):
            if arg == "--":
                break
            if len(arg) > 1 and arg.startswith("-") and "=" not in arg and Path(arg).exists():
                return f"; {arg} is a file here: write ./{arg}, or put -- before it"
        return ""


def _close_choice(message: str) -> str:
    """ "; did you mean 'caption'?" after argparse's "invalid choice: 'captoin' (choose from
    ...)", for a choice a letter or two off (Python 3.14's argparse says as much itself)."""
    import difflib
    import re

    found = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)$", message)
    if found is None or "did you mean" in message:
        return ""
    choices = re.findall(r"'([^']*)'", found.group(2)) or found.group(2).split(", ")
    close = difflib.get_close_matches(found.group(1), choices, n=1, cutoff=0.7)
    return f"; did you mean {close[0]!r}?" if close else ""
