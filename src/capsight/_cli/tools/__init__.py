"""The developer tools run as ``python -m capsight.<module>`` (feature caching, cached
evaluation, export, ensemble SCST, end-to-end training, Conceptual Captions fetching, endings,
WordNet export): their argument parsing and printing, apart from the library modules they run.

    >>> import capsight.training.export as export
    >>> parser = tool_parser(export.__name__, export.__doc__)   # usage: python -m capsight.training.export
"""

from __future__ import annotations

import argparse


def tool_parser(module: str, description: str, **options) -> argparse.ArgumentParser:
    """The parser of ``python -m <module>``: that usage line, the first paragraph of
    ``description`` (a module's docstring, say) on one line, and no option read from its first
    letters (as ``capsight._cli.parser``'s: a mistyped option is refused, not taken for another)."""
    summary = " ".join(description.split("\n\n")[0].split())
    return argparse.ArgumentParser(
        allow_abbrev=False, prog=f"python -m {module}", description=summary, **options
    )
