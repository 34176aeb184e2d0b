"""A blank image (one flat colour) is told apart from any real photo, however plain."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from capsight.vision.blank import is_blank

SKIER = Path(__file__).parents[2] / "../shared/data/flickr8k/images/3173014908_b3e69594b6.jpg"


def _jpeg(image: Image.Image) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=75)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255), (128, 128, 128), (200, 30, 90)])
def test_one_flat_colour_is_blank_even_through_jpeg(colour):
    assert is_blank(Image.new("RGB", (640, 480), colour))
    assert is_blank(_jpeg(Image.new("RGB", (640, 480), colour)))
    assert is_blank(Image.new("RGB", (1, 1), colour))


def test_faint_sensor_noise_is_blank_and_anything_more_is_not():
    rng = np.random.default_rng(0)
    noisy = np.clip(20 + rng.normal(0, 1.5, (120, 160, 3)), 0, 255).astype(np.uint8)  # lens cap on
    assert is_blank(Image.fromarray(noisy))
    gradient = np.tile(np.linspace(100, 140, 160, dtype=np.float32), (120, 1))  # (120, 160)
    assert not is_blank(Image.fromarray(np.stack([gradient] * 3, -1).astype(np.uint8)))


def test_a_hot_pixel_does_not_make_a_black_frame_a_picture():
    frame = Image.new("RGB", (4000, 3000), (3, 3, 3))
    frame.putpixel((1234, 567), (255, 255, 255))
    assert is_blank(frame)


def test_a_small_thing_on_a_plain_ground_is_not_blank():
    page = Image.new("RGB", (2000, 1500), (255, 255, 255))
    page.paste((0, 0, 0), (100, 100, 400, 112))  # a line of text, about: 0.1% of the pixels
    assert not is_blank(page)
    square = Image.new("RGB", (1000, 1000), (255, 255, 255))
    square.paste((0, 0, 0), (500, 500, 510, 510))
    assert not is_blank(square)


def test_colour_alone_is_enough_to_not_be_blank():
    """Red beside green of about the same luminance: flat in grey, not in colour."""
    flag = np.zeros((100, 200, 3), np.uint8)
    flag[:, :100] = (200, 0, 0)
    flag[:, 100:] = (0, 102, 0)  # luminance ~60 both sides
    assert not is_blank(Image.fromarray(flag))


def test_real_photos_are_not_blank(photo):
    for name in ("chelsea", "coffee", "astronaut"):
        assert not is_blank(photo(name))


@pytest.mark.skipif(not SKIER.exists(), reason="../shared/data/flickr8k is not here")
def test_the_plainest_flickr8k_photo_is_not_blank():
    """A skier on a snowfield, the least varied of 8,446 real photos here."""
    assert not is_blank(Image.open(SKIER).convert("RGB"))
