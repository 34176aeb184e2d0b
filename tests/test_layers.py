"""How the package is layered: what only some of its folders may do."""

from __future__ import annotations

import re
from pathlib import Path

import capsight


def test_only_the_cli_package_parses_command_lines():
    """The library never parses argv (STYLE.md: a private ``_cli`` package): each
    ``python -m capsight.<module>`` tool's parser lives in ``capsight._cli``, its module keeps
    a two-line ``__main__`` hand-over."""
    package = Path(capsight.__file__).parent
    parsing = [
        str(path.relative_to(package))
        for path in package.rglob("*.py")
        if "_cli" not in path.relative_to(package).parts
        and re.search(r"^\s*(import argparse|from argparse import)", path.read_text(), re.M)
    ]
    assert parsing == []
