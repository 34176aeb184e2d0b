"""``--json`` output of the commands that go through many inputs (``caption``, ``classify``):
a JSON list, one input per line, written as batches finish."""

from __future__ import annotations

import json


class JsonRows:
    """``--json``'s list, one image per line (readable, and still one JSON document), written
    as the batches finish and closed however the run ends: everything had waited for the last
    batch, so a Ctrl-C on a folder of 8,000 photos left an empty file. An input that could not
    be used has a row in its place, ``{"image", "error"}``, or ``{"error"}`` for a name that
    named no file."""

    def __init__(self, out) -> None:
        self.out, self.written = out, 0

    def write(self, rows: list[dict]) -> None:
        """The rows from ``self.written`` on (``rows`` is the whole list so far)."""
        for row in rows[self.written :]:
            head = "[\n  " if self.written == 0 else ",\n  "
            self.out.write(head + json.dumps(row, ensure_ascii=False))
            self.written += 1
        self.out.flush()

    def close(self) -> None:
        self.out.write("\n]\n" if self.written else "[]\n")
        self.out.flush()
