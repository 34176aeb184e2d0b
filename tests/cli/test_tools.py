"""The ``python -m capsight.<module>`` tools, whose parsers live in ``capsight._cli.tools``."""

from __future__ import annotations

import importlib

import pytest

TOOLS = ["cached_eval", "conceptual_captions", "end_to_end", "endings", "ensemble_scst", "export",
         "features", "wordnet_export"]  # fmt: skip


@pytest.mark.parametrize("tool", TOOLS)
def test_each_tools_help_describes_the_tool_not_the_module_it_moved_to(tool, capsys, monkeypatch):
    """A parser that read its own module's docstring described "the command line of ..."."""
    main = importlib.import_module(f"capsight._cli.tools.{tool}").main
    monkeypatch.setattr("sys.argv", ["tool", "--help"])  # (wordnet_export reads sys.argv)
    with pytest.raises(SystemExit) as ended:
        main(["--help"]) if tool != "wordnet_export" else main()
    shown = capsys.readouterr().out
    assert ended.value.code == 0 and shown.startswith("usage: python -m capsight.")
    assert "The command line of" not in shown and "hands over" not in shown
