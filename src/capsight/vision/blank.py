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

import numpy as np
from PIL import Image

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
    under ``BLANK_SPREAD`` grey levels and the range under ``BLANK_RANGE``. One pass over the
    pixels (their histogram); the rest is 256 numbers a channel."""
    counts = np.asarray(image.histogram(), np.float64).reshape(-1, 256)  # (channels, 256)
    total = counts.sum(axis=1, keepdims=True)  # (channels, 1)
    levels = np.arange(256.0)
    mean = (counts * levels).sum(axis=1, keepdims=True) / total
    spread = np.sqrt((counts * (levels - mean) ** 2).sum(axis=1) / total[:, 0])  # (channels,)
    if spread.max() >= BLANK_SPREAD:
        return False
    skip = np.floor(total * OUTLIERS)  # (channels, 1): the outliers left out at each end
    low = (np.cumsum(counts, axis=1) > skip).argmax(axis=1)  # first level past the dark ones
    # last before the bright
    high = 255 - (np.cumsum(counts[:, ::-1], axis=1) > skip).argmax(axis=1)
    return bool((high - low).max() < BLANK_RANGE)
