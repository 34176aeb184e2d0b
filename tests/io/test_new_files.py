"""Files written whole or not at all, never through a link at a guessable name."""

from __future__ import annotations

import errno

import pytest

from capsight.io.new_files import write_whole


def test_a_write_that_fails_partway_leaves_the_old_file_and_no_part(tmp_path):
    """A full disk left a cut-off attention PNG at the name asked for."""
    target = tmp_path / "sheet.png"

    def half_then_full(file):
        file.write(b"half a picture")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        write_whole(target, half_then_full)
    assert list(tmp_path.iterdir()) == []  # nothing at the name, no temporary file either
    target.write_bytes(b"the earlier picture")
    with pytest.raises(OSError):
        write_whole(target, half_then_full)
    assert target.read_bytes() == b"the earlier picture" and len(list(tmp_path.iterdir())) == 1
    write_whole(target, lambda file: file.write(b"the new picture"))
    assert target.read_bytes() == b"the new picture" and len(list(tmp_path.iterdir())) == 1


def test_a_link_at_the_name_is_replaced_not_written_through(tmp_path):
    elsewhere = tmp_path / "elsewhere.txt"
    elsewhere.write_text("keep me")
    (tmp_path / "sheet.png").symlink_to(elsewhere)
    write_whole(tmp_path / "sheet.png", lambda file: file.write(b"png"))
    assert elsewhere.read_text() == "keep me" and (tmp_path / "sheet.png").read_bytes() == b"png"
