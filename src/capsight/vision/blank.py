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

# Grey levels (0-255): every channel's standard deviation below BLANK_SPREAD, and no pixel
# further than BLANK_RANGE from the darkest, is one flat colour, JPEG and sensor noise and all.
# The spread alone would miss a small thing on a plain ground (a line of text on a white page); the
# least varied of 8,446 real photos here (Flickr8k, COCO, the labelled set; a skier on snow) has
# a spread of 10.4 in luminance.
BLANK_SPREAD = 3.0
BLANK_RANGE = 48
BLANK_CAPTION = "a blank image"


def is_blank(image: Image.Image) -> bool:
    """True when ``image`` (RGB) is one flat colour: in every channel the standard deviation is
    under ``BLANK_SPREAD`` grey levels and the range under ``BLANK_RANGE``."""
    stats = ImageStat.Stat(image)
    return max(stats.stddev) < BLANK_SPREAD and max(high - low for low, high in stats.extrema) < BLANK_RANGE
