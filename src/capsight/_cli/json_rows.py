"""``--json`` output of the commands that go through many inputs (``caption``, ``classify``):
a JSON list, one input per line, written as batches finish."""

from __future__ import annotations

import contextlib
import json


def utf8_json(value, **options) -> str:
    """``json.dumps(value)`` with its non-ASCII letters as they are, or escaped where the text
    is not valid UTF-8: a file name that is not ("caf\\xe9.jpg", a lone surrogate in Python)
    would reach stdout, which writes names as their own bytes (``main._names_as_given``), as
    a byte no JSON reader accepts."""
    text = json.dumps(value, ensure_ascii=False, **options)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(value, **options)
    return text


class JsonRows:
    """``--json``'s list, one image per line (readable, and still one JSON document), written
    as the batches finish: everything had waited for the last batch, so a Ctrl-C on a folder of
    8,000 photos left an empty file. An input that could not be used has a row in its place,
    ``{"image", "error"}``, or ``{"error"}`` for a name that named no file.

        listing = JsonRows(sys.stdout)
        try:
            for batch in batches:
                rows += ...
                listing.write(rows)
        except BaseException:
            listing.abandon(rows)  # the rows so far, closed; nothing if none was written
            raise
        listing.finish(rows)
    """

    def __init__(self, out) -> None:
        self.out, self.written = out, 0

    def write(self, rows: list[dict]) -> None:
        """The rows from ``self.written`` on (``rows`` is the whole list so far)."""
        for row in rows[self.written :]:
            head = "[\n  " if self.written == 0 else ",\n  "
            self.out.write(head + utf8_json(row))
            self.written += 1
        self.out.flush()

    def finish(self, rows: list[dict]) -> None:
        """The rest of ``rows``, and the list closed (``[]`` for none)."""
        self.write(rows)
        self.out.write("\n]\n" if self.written else "[]\n")
        self.out.flush()

    def abandon(self, rows: list[dict]) -> None:
        """After an interruption or a failure: what can still be written of ``rows``, and the
        list closed, so a started list stays one JSON document; nothing when no row was written
        (a run that failed before its first input prints no list that reads "no inputs")."""
        with contextlib.suppress(Exception):  # (the failure may be this very stream)
            self.write(rows)
        if self.written:
            with contextlib.suppress(Exception):
                self.out.write("\n]\n")
                self.out.flush()
