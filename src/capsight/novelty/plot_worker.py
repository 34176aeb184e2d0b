"""Draw ``novelty.png`` in a low-priority child process that imports matplotlib while the
analysis runs.

    >>> plotter = PlotWorker()                  # starts `python -m capsight.novelty.plot_worker`
    >>> analysis = analyze_video("clip.mp4")
    >>> png = plotter.render(analysis)          # bytes, or None: then draw it in-process
    >>> write_outputs(analysis, "out/clip", plot_png=png)

Importing matplotlib costs ~0.3 CPU-s of pure Python. In the CLI that time is taken from the
analysis, which already keeps both cores busy. The child runs at the lowest priority (nice 19),
so it imports matplotlib only in CPU time nobody else wants (mostly after the decoder process
has finished), says so with one byte, then waits for the analysis as JSON on stdin and writes
the PNG to stdout.

Anything that goes wrong (no process, not ready yet, a crash, a timeout) makes ``render``
return None, and the caller draws the plot itself: the worker can make a run faster, never
make it fail or wait long (posix only: elsewhere there is no worker).
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading

from capsight.novelty.analysis import Analysis

_TIMEOUT_S = 5.0  # drawing takes ~0.2 s; past this, draw in-process instead
_READY = b"R"  # the child's first byte: matplotlib is imported


class PlotWorker:
    """One plot, drawn by a child process; see the module docstring."""

    def __init__(self) -> None:
        self._child: subprocess.Popen | None = None
        if os.name != "posix":
            return
        try:
            self._child = subprocess.Popen(
                [sys.executable, "-m", "capsight.novelty.plot_worker"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                preexec_fn=_lowest_priority,
            )  # fmt: skip
        except OSError:
            self._child = None

    def render(self, analysis: Analysis) -> bytes | None:
        """``novelty.png`` of ``analysis`` from the child, or None when it could not draw it.

        A child that has not finished importing matplotlib yet (a busy machine starved it) is
        dropped at once rather than waited for: drawing here is then just as fast."""
        child, self._child = self._child, None
        if child is None:
            return None
        try:
            ready, _, _ = select.select([child.stdout], [], [], 0)
            if not ready or child.stdout.read(1) != _READY:
                raise OSError("plot worker not ready")
            request = json.dumps(analysis.to_dict()).encode()
            result: list[bytes] = []
            # communicate() on a thread: a stuck child must not block the caller.
            reader = threading.Thread(
                target=lambda: result.append(child.communicate(request)[0]), daemon=True
            )
            reader.start()
            reader.join(_TIMEOUT_S)
            png = result[0] if result and child.returncode == 0 else b""
        except (OSError, ValueError):
            png = b""
        if child.poll() is None:
            child.kill()
            child.wait()
        return png if png.startswith(b"\x89PNG") else None

    def close(self) -> None:
        """Stop the child without a plot (the analysis failed)."""
        child, self._child = self._child, None
        if child is not None:
            child.kill()
            child.wait()

    def __enter__(self) -> PlotWorker:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _lowest_priority() -> None:
    os.nice(19)


def main() -> int:
    from capsight.novelty.reports import preload_plotting, render_plot_png

    preload_plotting()
    sys.stdout.buffer.write(_READY)
    sys.stdout.buffer.flush()
    request = sys.stdin.buffer.read()
    if not request:  # the parent gave up: nothing to draw
        return 0
    png = render_plot_png(Analysis.from_dict(json.loads(request)))
    sys.stdout.buffer.write(png)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
