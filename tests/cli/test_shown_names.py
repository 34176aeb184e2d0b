"""File names in text output: control characters escaped, nothing else touched."""

from __future__ import annotations

import os

from capsight._cli.shown_names import shown_name


def test_control_characters_are_escaped_as_python_writes_them():
    assert shown_name("a\nb\rc\td\x1be\x7ff\x9bg.jpg") == "a\\nb\\rc\\td\\x1be\\x7ff\\x9bg.jpg"


def test_other_names_are_unchanged():
    for name in ("photo.jpg", "ünï 猫.jpg", "space d.jpg", os.fsdecode(b"caf\xe9.jpg"), "😀.png"):
        assert shown_name(name) == name
