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

    def error(self, message: str) -> NoReturn:
        from capsight._cli.main import error_line

        print(error_line(f"{message} (see `{self.prog} --help`)"), file=sys.stderr)
        raise SystemExit(2)
