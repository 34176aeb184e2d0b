"""Image arguments: files kept, folders expanded, and what cannot be read named up front."""

from __future__ import annotations

import os
from pathlib import Path

from capsight._cli.image_args import expand_image_args


def test_folders_expand_and_missing_paths_are_named_before_any_work(tmp_path):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for name in ("b.jpg", "a.png", "sub/c.JPEG", "notes.txt", ".hidden.jpg"):
        (photos / name).write_bytes(b"x")
    empty = tmp_path / "empty"
    empty.mkdir()
    missing = tmp_path / "gone.jpg"
    paths, problems = expand_image_args([str(photos), str(missing), str(empty)])
    assert paths == [str(photos / "a.png"), str(photos / "b.jpg"), str(photos / "sub" / "c.JPEG")]
    assert problems[0] == f"{missing}: no such file"
    assert problems[1].startswith(f"{empty}: a folder with no images in it")
    assert len(problems) == 2


def test_a_folder_is_expanded_to_other_photo_kinds_too(tmp_path):
    """.jfif, .jpe and .avif photos caption when named, and were passed over in a folder."""
    for name in ("a.jfif", "b.jpe", "c.avif", "d.heic", "e.webp"):
        (tmp_path / name).write_bytes(b"x")
    paths, problems = expand_image_args([str(tmp_path)])
    assert [Path(p).name for p in paths] == ["a.jfif", "b.jpe", "c.avif", "d.heic", "e.webp"]
    assert problems == []


def test_a_photo_of_no_suffix_in_a_folder_is_found_by_its_first_bytes(tmp_path):
    """A JPEG saved as IMG_0001 had been left out of its folder without a word."""
    (tmp_path / "IMG_0001").write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"x" * 100)
    (tmp_path / "LICENSE").write_text("MIT License ...")  # no suffix, not an image: passed over
    (tmp_path / "BMI").write_text("BMI by age\n")  # starts as a BMP does ("BM"): text all the same
    (tmp_path / "notes.dat").write_bytes(b"\xff\xd8\xff\xe0")  # another suffix: as before
    os.mkfifo(tmp_path / "pipe")  # no suffix, not a regular file: never opened (it would block)
    paths, problems = expand_image_args([str(tmp_path)])
    assert paths == [str(tmp_path / "IMG_0001")] and problems == []


def test_an_image_named_twice_is_read_once(tmp_path):
    from capsight._cli.image_args import expand_image_args

    (tmp_path / "photos").mkdir()
    for name in ("a.jpg", "b.png"):
        (tmp_path / "photos" / name).write_bytes(b"x")
    a = str(tmp_path / "photos" / "a.jpg")
    paths, problems = expand_image_args(
        [a, str(tmp_path / "photos"), f"{tmp_path}/photos/../photos/a.jpg"]
    )
    assert paths == [a, str(tmp_path / "photos" / "b.png")] and problems == []
    # a link keeps its line
    (tmp_path / "photos" / "c.jpg").symlink_to(tmp_path / "photos" / "a.jpg")
    paths, _ = expand_image_args([str(tmp_path / "photos")])
    assert [p.rsplit("/", 1)[1] for p in paths] == ["a.jpg", "b.png", "c.jpg"]


def test_a_linked_folder_is_read_once_and_a_link_back_up_ends(tmp_path):
    """An album linked into a folder had been passed over without a word (an audit,
    2026-12-08); links back up, or to a folder already read, must not loop or repeat."""
    from capsight._cli.image_args import expand_image_args

    album, photos = tmp_path / "album", tmp_path / "photos"
    album.mkdir()
    photos.mkdir()
    (album / "x.jpg").write_bytes(b"x")
    (photos / "a.jpg").write_bytes(b"x")
    (photos / "2019").symlink_to(album)
    (photos / "again").symlink_to(album)  # the same album twice: read under its first name
    (photos / "up").symlink_to(photos)
    (album / "loop").symlink_to(tmp_path)  # from inside the album, up past where it started
    paths, problems = expand_image_args([str(photos)])
    assert problems == []
    assert paths == [str(photos / "2019" / "x.jpg"), str(photos / "a.jpg")]
    # a folder whose only photos are in a linked album has images, not "no images in it"
    only = tmp_path / "only"
    only.mkdir()
    (only / "album").symlink_to(album)
    paths, problems = expand_image_args([str(only)])
    assert paths == [str(only / "album" / "x.jpg")] and problems == []
