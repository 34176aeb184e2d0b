"""Why a photo's class scores may say little about it: the notes ``capsight caption`` gives.

    >>> photo_note(Image.new("RGB", (640, 480), "black"))
    'a blank image (one flat colour): its scores say nothing about it'

Scores are shares of the classes asked about, so a blank image, an icon of 16 px or only the
first frame of an animation still gets a top class; classify had said nothing of any of them
where caption notes each (an audit, 2026-12-08).
"""

from __future__ import annotations

from PIL import Image

from capsight.captioning.facade import TINY_SIDE, tiny_size
from capsight.io.images import ANIMATED, full_size

BLANK = "blank"
TINY = "tiny"
FIRST_FRAME = "first frame"


def photo_issues(image) -> dict[str, str]:
    """{kind: sentence} for a decoded photo (``BLANK``, ``TINY``, ``FIRST_FRAME``); {} for
    anything else, and for inputs that are not PIL images (a tensor says none of this)."""
    if not isinstance(image, Image.Image):
        return {}
    from capsight.vision.blank import is_blank

    issues = {}
    if is_blank(image):
        issues[BLANK] = "a blank image (one flat colour): its scores say nothing about it"
    elif (size := tiny_size(*full_size(image))) is not None:
        issues[TINY] = (f"{size} (under {TINY_SIDE}): too small to show a class; its scores "
                        "are a guess")  # fmt: skip
    if image.info.get(ANIMATED):
        issues[FIRST_FRAME] = ("an animation (or a file of several pages): only its first frame "
                               "is classified")  # fmt: skip
    return issues


def photo_note(image) -> str | None:
    """``photo_issues`` as one sentence, or None."""
    return "; ".join(photo_issues(image).values()) or None
