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

# Grey levels (0-255): every channel's standard deviation below BLANK_SPREAD, and its pixels
# within BLANK_RANGE of each other, is one flat colour, JPEG and sensor noise and all. The range
# leaves out the extreme OUTLIERS share at each end (a hot pixel on a black frame); the spread alone
# would miss a small thing on a plain ground (a line of text on a white page). The least varied of
# 8,446 real photos here (Flickr8k, COCO, the labelled set; a skier on snow) has a spread of 10.4
# in luminance.
BLANK_SPREAD = 3.0
BLANK_RANGE = 48
OUTLIERS = 1e-5  # 10 pixels of a megapixel
BLANK_CAPTION = "a blank image"


def is_blank(image: Image.Image) -> bool:
    """True when ``image`` (RGB) is one flat colour: in every channel the standard deviation is
    under ``BLANK_SPREAD`` grey levels and the range under ``BLANK_RANGE``."""
    stats = ImageStat.Stat(image)
    if max(stats.stddev) >= BLANK_SPREAD:
        return False
    histogram = image.histogram()
    return all(_spread(histogram[i : i + 256]) < BLANK_RANGE for i in range(0, len(histogram), 256))


def _spread(counts: list[int]) -> int:
    """One channel's range of values, its extreme ``OUTLIERS`` share at each end left out."""
    skip = int(sum(counts) * OUTLIERS)
    low = high = 0
    seen = 0
    for value, count in enumerate(counts):  # the lowest value past the dark outliers
        seen += count
        if seen > skip:
            low = value
            break
    seen = 0
    for value in range(len(counts) - 1, -1, -1):  # and the highest before the bright ones
        seen += counts[value]
        if seen > skip:
            high = value
            break
    return high - low
