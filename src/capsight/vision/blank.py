"""Blank images: one flat colour, nothing in them a captioner could describe.

    >>> is_blank(Image.new("RGB", (640, 480), (0, 0, 0)))
    True
    >>> is_blank(Image.open("dog.jpg"))
    False

A captioner trained on photos describes whatever it is given: it called a black image "a person
in a blue shirt is holding a camera" with the same confidence as a real photo. Callers that caption
photos (``captioning.facade.describe_images``) say ``BLANK_CAPTION`` for these instead. Video
frames have their own, looser test (``novelty.frames.sharpness``), taken after exposure
normalisation: a fade's dim frames count as flat there.
"""

from __future__ import annotations

from PIL import Image, ImageStat

# Grey levels (0-255): every channel's standard deviation below this is one flat colour, JPEG
# noise and all. The least varied of 8,446 real photos here (Flickr8k, COCO, the labelled set;
# a skier on snow) has 10.4 in luminance.
BLANK_SPREAD = 3.0
BLANK_CAPTION = "a blank image"


def is_blank(image: Image.Image) -> bool:
    """True when ``image`` (RGB) is one flat colour: every channel varies by under
    ``BLANK_SPREAD`` grey levels."""
    return max(ImageStat.Stat(image).stddev) < BLANK_SPREAD
