"""The progress bar draws the library's (fraction, message) reports, and stays off in pipes."""

from __future__ import annotations

import io
import os
import select
import sys

import pytest

from capsight._cli.progress_bar import ProgressBar


def test_the_bar_shows_the_fraction_and_the_message():
    stream = io.StringIO()
    with ProgressBar(enabled=True, file=stream, min_interval=0) as on_progress:
        on_progress(0.0, "opening")
        on_progress(0.42, "sampling frames")
        on_progress(0.30, "going backwards is ignored")
        on_progress(1.0, "done")
    drawn = stream.getvalue()
    assert "sampling frames" in drawn and " 42%" in drawn and "100%" in drawn


def test_an_error_line_printed_under_way_starts_its_own_line(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    with ProgressBar(enabled=True, min_interval=0) as on_progress:
        on_progress(0.3, "captioning")
        print("capsight: error: missing.jpg: no such file", file=sys.stderr)
        on_progress(0.6, "captioning")
    assert sys.stderr is stream  # restored
    drawn = stream.getvalue()
    before = drawn[: drawn.index("capsight: error:")]
    assert before.endswith("\r") or before.endswith("\n")  # the bar's line cleared first
    assert "capsight: error: missing.jpg: no such file\n" in drawn
    assert drawn.index("missing.jpg") < drawn.rindex(" 60%")  # and the bar drawn again after


def test_disabled_bar_writes_nothing():
    stream = io.StringIO()
    with ProgressBar(enabled=False, file=stream) as on_progress:
        on_progress(0.5, "half")
    assert stream.getvalue() == ""


def test_wanted_only_on_a_terminal_and_not_quiet():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert ProgressBar.wanted(quiet=False, file=Tty())
    assert not ProgressBar.wanted(quiet=True, file=Tty())
    assert not ProgressBar.wanted(quiet=False, file=io.StringIO())


def test_a_terminal_that_reports_no_width_still_gets_a_bar(monkeypatch):
    pty = pytest.importorskip("pty")
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))  # 0 columns
    with os.fdopen(slave, "w") as stream:
        monkeypatch.setattr(sys, "stderr", stream)  # tqdm sizes itself from the terminal on stderr
        with ProgressBar(enabled=True, min_interval=0) as on_progress:
            on_progress(0.42, "sampling frames")
        stream.flush()
        drawn = ""
        while select.select([master], [], [], 0.5)[0]:  # what the bar wrote (never blocks)
            drawn += os.read(master, 65536).decode()
    os.close(master)
    assert "sampling frames" in drawn and "42%" in drawn


def test_the_elapsed_clock_moves_through_a_step_that_reports_nothing():
    """Picking an hour's novel moments (8 s at 99%, no report) froze the whole bar, clock too:
    it looked hung. The bar is redrawn every ``tick`` seconds all the same."""
    import threading

    stream = io.StringIO()
    with ProgressBar(enabled=True, file=stream, min_interval=0, tick=0.01) as on_progress:
        on_progress(0.99, "picking the novel moments of 3,600")
        redrawn = threading.Event()
        bar = on_progress._bar
        refresh = bar.refresh

        def counting_refresh(*args, **kwargs):
            redrawn.set()
            return refresh(*args, **kwargs)

        bar.refresh = counting_refresh
        assert redrawn.wait(10)  # (no report came meanwhile)
    ticks_after = stream.getvalue()
    assert ticks_after.count("picking the novel moments") >= 2
