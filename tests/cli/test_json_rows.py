"""--json's streamed list: one JSON document however the run ends."""

from __future__ import annotations

import io
import json

from capsight._cli.json_rows import JsonRows


def strict_stdout() -> io.TextIOWrapper:
    return io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")


def text_of(out: io.TextIOWrapper) -> str:
    out.flush()
    return out.buffer.getvalue().decode("utf-8")


def test_a_run_that_ends_well_is_one_list_empty_or_not():
    out = io.StringIO()
    JsonRows(out).finish([])
    assert json.loads(out.getvalue()) == []
    out, rows = io.StringIO(), [{"image": "a.jpg"}]
    listing = JsonRows(out)
    listing.write(rows)
    rows.append({"image": "b.jpg", "error": "b.jpg: not an image"})
    listing.finish(rows)
    assert json.loads(out.getvalue()) == rows


def test_an_interrupted_run_keeps_its_rows_and_one_that_never_started_prints_nothing():
    out = io.StringIO()
    listing = JsonRows(out)
    listing.write([{"image": "a.jpg"}])
    listing.abandon([{"image": "a.jpg"}, {"image": "b.jpg"}])
    assert [r["image"] for r in json.loads(out.getvalue())] == ["a.jpg", "b.jpg"]
    out = io.StringIO()
    JsonRows(out).abandon([])  # a model that would not load: no "[]" that reads "no inputs"
    assert out.getvalue() == ""


def test_a_file_name_that_is_not_utf8_is_escaped_not_a_broken_list():
    """caf\\udce9.jpg (a Latin-1 name read by Python) on a strict UTF-8 stdout had raised
    mid-list, and the list was left open."""
    out = strict_stdout()
    listing = JsonRows(out)
    rows = [{"image": "ok.jpg"}, {"image": "caf\udce9.jpg"}]
    listing.finish(rows)
    assert [r["image"] for r in json.loads(text_of(out))] == ["ok.jpg", "caf\udce9.jpg"]
