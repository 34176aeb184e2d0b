"""File names in text output: control characters escaped, nothing else touched."""

from __future__ import annotations

import os

from capsight._cli.shown_names import shown_name


def test_control_characters_are_escaped_as_python_writes_them():
    assert shown_name("a\nb\rc\td\x1be\x7ff\x9bg.jpg") == "a\\nb\\rc\\td\\x1be\\x7ff\\x9bg.jpg"


def test_other_names_are_unchanged():
    for name in ("photo.jpg", "ünï 猫.jpg", "space d.jpg", os.fsdecode(b"caf\xe9.jpg"), "😀.png"):
        assert shown_name(name) == name


def test_error_lines_fold_line_ends_and_escape_other_control_characters():
    """str.split() had folded \\x1c and \\x85 into spaces too, naming another file (a review,
    2026-12-08)."""
    from capsight._cli.main import error_line

    assert error_line("a\x1cb\x85c.jpg:\n  no such\tfile") == (
        "capsight: error: a\\x1cb\\x85c.jpg: no such file"
    )


def test_a_name_mixing_bytes_and_characters_the_output_lacks_keeps_both():
    """An ASCII output hands the handler "\\udce9猫" as one run: the byte had come out escaped."""
    import codecs

    from capsight._cli import main

    try:
        codecs.lookup_error(main.NAMES_AS_GIVEN)
    except LookupError:
        codecs.register_error(main.NAMES_AS_GIVEN, main._name_bytes_or_escape)
    name = os.fsdecode(b"caf\xe9") + "猫.jpg"
    assert name.encode("ascii", main.NAMES_AS_GIVEN) == b"caf\xe9\\u732b.jpg"
