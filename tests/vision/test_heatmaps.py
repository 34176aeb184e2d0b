"""Attention pictures: titles wrap to the picture's width instead of being cut."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageFont

from capsight.vision.heatmaps import _title_lines, attention_sheet, titled

FONT = ImageFont.load_default(size=18)
LONG = "show-and-tell (no attention): where the encoder saw 'Egyptian cat' in this photo"


def test_a_long_title_wraps_onto_lines_that_fit():
    lines = _title_lines(LONG, 224, FONT)
    assert len(lines) > 1 and " ".join(lines) == LONG  # every word kept, in order
    assert all(FONT.getlength(line) <= 224 - 20 for line in lines)
    word = _title_lines("a" * 80, 224, FONT)
    assert len(word) == 1 and word[0].endswith("...") and FONT.getlength(word[0]) <= 204


def test_the_band_grows_with_the_title():
    picture = Image.new("RGB", (224, 224), "white")
    assert titled(picture, "a dog").size == (224, 264)
    wrapped = titled(picture, LONG)
    assert wrapped.width == 224 and wrapped.height > 264
    assert np.array_equal(np.asarray(wrapped)[-224:], np.asarray(picture))  # the picture, whole


def test_a_narrow_attention_sheet_keeps_its_whole_title():
    photo = Image.new("RGB", (300, 200), "grey")
    short = attention_sheet(photo, np.full((1, 49), 1 / 49), ["dog"], (7, 7), title="a dog")
    long = attention_sheet(photo, np.full((1, 49), 1 / 49), ["dog"], (7, 7), title=LONG)
    assert long.width == short.width and long.height > short.height


def test_a_strip_of_a_photo_is_shown_wide_enough_to_see_its_map():
    from capsight.vision.heatmaps import viewable

    assert viewable(Image.new("RGB", (10000, 100)), 200).size == (200, 67)  # stretched to 3:1
    assert viewable(Image.new("RGB", (100, 10000)), 200).size == (67, 200)
    assert viewable(Image.new("RGB", (1, 1)), 200).size == (200, 200)  # a dot is enlarged
    assert viewable(Image.new("RGB", (300, 200)), 200).size == (200, 133)  # a photo keeps its shape
    sheet = attention_sheet(
        Image.new("RGB", (10000, 100)), np.full((2, 49), 1 / 49), ["a", "strip"], (7, 7)
    )
    assert sheet.height > 2 * 67


def test_a_python_caller_gets_a_sheet_from_a_path_or_one_line_for_a_mistake(tmp_path):
    """From Python: a path had been an AttributeError ('str' has no 'copy'), a caption
    without attention a TypeError, and a wrong grid a reshape ValueError."""
    import pytest

    from capsight.errors import InvalidParameter

    photo = tmp_path / "p.png"
    Image.new("RGB", (90, 60), (120, 80, 40)).save(photo)
    weights = np.random.default_rng(0).random((3, 49)).astype(np.float32)
    sheet = attention_sheet(str(photo), weights, ["a", "brown", "dog"])  # 7x7 by default
    assert sheet.width > 0 and sheet.height > 0
    assert attention_sheet(np.zeros((60, 90, 3), np.uint8), weights, ["a"]).size
    with pytest.raises(InvalidParameter, match="^this caption has no attention: only Show"):
        attention_sheet(str(photo), None, ["a"])
    with pytest.raises(InvalidParameter, match=r"^grid_size \(9, 9\) has 81 cells, but the "
                                               r"attention weighs 49"):  # fmt: skip
        attention_sheet(str(photo), weights, ["a"], (9, 9))
