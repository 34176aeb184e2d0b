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
    assert attention_sheet(np.zeros((60, 90, 3), np.uint8), weights[:1], ["a"]).size
    with pytest.raises(InvalidParameter, match=r"^1 words for 3 rows of attention: give a "
                                               r"caption's tokens with its attention"):  # fmt: skip
        attention_sheet(str(photo), weights, ["a"])  # (it had drawn one tile, silently)
    with pytest.raises(InvalidParameter, match="^this caption has no attention: only Show"):
        attention_sheet(str(photo), None, ["a"])
    with pytest.raises(InvalidParameter, match=r"^grid_size \(9, 9\) has 81 cells, but the "
                                               r"attention weighs 49"):  # fmt: skip
        attention_sheet(str(photo), weights, ["a", "brown", "dog"], (9, 9))


def test_one_colour_scale_for_the_whole_caption_so_spread_out_attention_looks_faint():
    """Each tile had been stretched to its own range: "the", its weight spread over the photo
    (peak 0.035 against 0.020 uniform), looked as sharply placed as "dog"."""
    photo = Image.new("RGB", (200, 200), (128, 128, 128))
    focused = np.full(49, 0.2 / 48, np.float32)
    focused[24] = 0.8
    spread = np.full(49, 1 / 49, np.float32)
    spread[0] += 0.015  # a little above the rest, as a function word's map is
    sheet = np.asarray(attention_sheet(photo, np.stack([focused, spread]), ["dog", "the"]))
    tile_y = 40 + 100  # the middle of the first row of tiles (under the 40 px band)
    dog = sheet[tile_y, 8 + 100].astype(int)  # the centre of the first tile: its peak
    the = sheet[40 + 14, 8 + 208 + 14].astype(int)  # the corner cell of the second: its peak
    grey = np.array([128, 128, 128])
    assert np.abs(dog - grey).sum() > 150  # full colour
    assert np.abs(the - grey).sum() < 60  # faint: not another full-colour blob


def test_a_portrait_gets_taller_tiles_and_more_of_them_a_row():
    """Tiles had been sized by the long side in square slots: a portrait's were 150 px wide in
    208 px slots, a tall strip's 67."""
    weights = np.full((8, 49), 1 / 49, np.float32)
    words = [f"w{i}" for i in range(8)]
    square = attention_sheet(Image.new("RGB", (300, 300)), weights, words)
    portrait = attention_sheet(Image.new("RGB", (300, 400)), weights, words)
    strip = attention_sheet(Image.new("RGB", (100, 2000)), weights, words)
    assert square.width == 4 * 208 + 8
    assert portrait.width <= square.width and (portrait.width - 8) / 4 - 8 > 165  # 4 a row
    assert strip.width <= square.width and strip.height == 40 + 2 * (346 + 42)  # 6 a row, 115 px
    landscape = attention_sheet(Image.new("RGB", (400, 300)), weights, words)  # as before
    assert landscape.size == (4 * 208 + 8, 40 + 2 * (150 + 42))
