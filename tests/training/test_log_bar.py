"""Training's progress bars: in place on a terminal, one line per update in a log."""

from __future__ import annotations

import io

from capsight.training import log_bar


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_whole_lines_at_most_once_a_minute(monkeypatch):
    log = io.StringIO()  # not a terminal: a file the run is redirected to
    clock = iter(range(0, 10_000, 7))  # seconds: 7 apart, so a line per ~9 steps
    monkeypatch.setattr("tqdm.std.time", lambda: float(next(clock)))
    for _ in log_bar.progress_bar(range(50), desc="xe epoch 1", stream=log):
        pass
    lines = log.getvalue().splitlines()
    assert (
        "\r" not in log.getvalue()
        and lines
        and all(line.startswith("xe epoch 1") for line in lines)
    )
    assert lines[-1].startswith("xe epoch 1: 100%") and 3 <= len(lines) <= 10  # not one per step


def test_a_terminal_gets_tqdms_own_bar():
    terminal = _Terminal()
    for _ in log_bar.progress_bar(range(5), desc="xe epoch 1", stream=terminal, mininterval=0):
        pass
    assert "\r" in terminal.getvalue()  # redrawn in place
