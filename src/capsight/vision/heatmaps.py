"""Where a model looked: attention weights or a class activation map laid over the photo.

    >>> overlay = heatmap_overlay(photo, weights, grid_size=(7, 7))   # weights: (49,)
    >>> overlay.size == photo.size
    True
    >>> cam = class_activation_map(encoded.grid[0], fc_weight, class_index=281)   # (49,)
    >>> result = capsight.caption("cat.jpg", model="show-attend-tell")[0]
    >>> attention_sheet("cat.jpg", result.attention, result.tokens, title=result.text).save("a.png")

A captioner with attention gives one weight per grid cell for every word it wrote. A captioner
without attention (``labels``) still has a spatial story: the class activation map (Zhou et al.,
2016) of its top ImageNet class, the classifier's weights dotted with every grid cell's features,
which is exact for a network ending in global average pooling and a linear layer, as
EfficientNet-Lite does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

if TYPE_CHECKING:
    from capsight.io.image_inputs import ImageInput

# The narrowest a picture of where a model looked gets, as a share of its long side: the encoder
# sees every photo squashed to a square, so a 100:1 strip is shown stretched to 3:1 rather than
# as a line of a few pixels no map can be seen on.
MIN_SIDE_RATIO = 1 / 3


def viewable(image: Image.Image, side: int) -> Image.Image:
    """A copy of ``image`` ``side`` pixels on its long side (a small one enlarged), its short
    side stretched to at least ``MIN_SIDE_RATIO`` of that (aspect ratios up to 3:1 are kept)."""
    small = image.copy()
    small.thumbnail((side, side))  # a large photo shrinks fast (reduce, then resample)
    scale = side / max(small.size)
    width, height = (max(1, round(n * scale)) for n in small.size)
    least = max(1, round(side * MIN_SIDE_RATIO))
    size = (max(width, least), max(height, least))
    return small if size == small.size else small.resize(size, Image.BICUBIC)


def class_activation_map(
    grid: torch.Tensor, fc_weight: torch.Tensor, class_index: int
) -> np.ndarray:
    """One image's grid (P, C) and the classifier weight (K, C) -> class evidence per cell (P,)."""
    cam = grid.float() @ fc_weight[class_index].float()  # (P,)
    return cam.numpy()


def heatmap_overlay(
    image: Image.Image,
    weights: np.ndarray | torch.Tensor,
    grid_size: tuple[int, int],
    alpha: float = 0.55,
    colormap: str = "inferno",
    peak: float | None = None,
) -> Image.Image:
    """Blend ``weights`` (h*w,) as a smooth colour map over ``image`` (RGB, same size out).
    ``peak``: the weight shown at full colour, from 0 (one scale for several maps: a spread-out
    map looks faint); None stretches this map's own lowest to highest."""
    from matplotlib import colormaps

    h, w = grid_size
    values = np.asarray(weights, dtype=np.float32).reshape(h, w)  # (h, w)
    if peak is None:
        values = values - values.min()
        peak = float(values.max())
    values = values / peak if peak > 0 else values
    heat = Image.fromarray(values, mode="F").resize(image.size, Image.BICUBIC)
    heat_arr = np.clip(np.asarray(heat), 0.0, 1.0)  # (H, W) in [0, 1]
    coloured = colormaps[colormap](heat_arr)[..., :3]  # (H, W, 3) in [0, 1]
    base = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0  # (H, W, 3)
    # Stronger evidence shows more colour; the rest of the photo stays readable.
    mix = alpha * heat_arr[..., None] ** 0.8  # (H, W, 1)
    out = base * (1 - mix) + coloured * mix
    return Image.fromarray((out * 255).round().astype(np.uint8))


def attention_sheet(
    image: ImageInput,
    attention: np.ndarray | torch.Tensor | None,
    words: list[str],
    grid_size: tuple[int, int] | None = None,
    tile: int = 200,
    columns: int = 4,
    title: str | None = None,
) -> Image.Image:
    """One picture for a whole caption: a tile per word, its attention laid over the photo.
    ``image``: anything ``capsight.caption`` takes (a path, a PIL image, an array);
    ``attention`` and ``words``: a caption's ``attention`` and ``tokens``; ``grid_size``: the
    encoder's grid (``capsight.encode_images(...).grid_size``), by default the square the
    attention's width makes (7x7 for 49 cells). ``title`` is written in the band above the
    tiles (left empty for a viewer's own label). InvalidParameter for a caption without
    attention (only Show, Attend and Tell captioners attend), a grid that does not fit it, or
    other than one word per row of weights.

    All the tiles share one colour scale, from 0 to the caption's highest weight: a word whose
    attention is spread over the photo ("a", "the") looks faint, where each tile stretched to
    its own range had shown it as sharply placed as "dog". ``columns`` tiles make a row for a
    square or landscape photo; a portrait's narrower tiles are taller and more fit a row."""
    from PIL import ImageDraw, ImageFont

    from capsight.errors import InvalidParameter
    from capsight.io.image_inputs import as_rgb_image

    if attention is None:
        raise InvalidParameter(
            "this caption has no attention: only Show, Attend and Tell captioners attend "
            "(capsight models); show-and-tell and labels do not", "attention"
        )  # fmt: skip
    weights = np.asarray(attention, dtype=np.float32)  # (T, h*w)
    if weights.ndim != 2:
        raise InvalidParameter(f"attention is one row of weights per word, (words, cells); got "
                               f"shape {weights.shape}", "attention")  # fmt: skip
    cells = weights.shape[1]
    if grid_size is None:
        side = round(cells**0.5)
        grid_size = (side, side)
    if grid_size[0] * grid_size[1] != cells:
        raise InvalidParameter(
            f"grid_size {tuple(grid_size)} has {grid_size[0] * grid_size[1]} cells, but the "
            f"attention weighs {cells}: give the grid of the captioner's encoder", "grid_size"
        )  # fmt: skip
    words = list(words)
    if len(words) != len(weights):  # (the sheet had silently drawn the fewer of the two)
        raise InvalidParameter(f"{len(words)} words for {len(weights)} rows of attention: give a "
                               "caption's tokens with its attention", "words")  # fmt: skip
    image = as_rgb_image(image)  # (a PIL image upright by its EXIF tag too, as caption has it)
    thumb = viewable(image, _tile_side(image.size, tile))
    row_width = columns * (tile + 8)  # a square photo's row; narrower tiles fit more in it
    columns = max(1, row_width // (thumb.width + 8))
    peak = float(weights.max()) if weights.size else 0.0
    # The words at 24 px: the page shows the 840 px sheet in a column a phone makes ~350 px
    # wide, where 18 px words were ~7 px tall.
    word_font = ImageFont.load_default(size=24)
    label_h = 34
    rows = max(1, -(-len(words) // columns))
    cols = min(columns, max(1, len(words)))
    width = cols * (thumb.width + 8) + 8
    font = ImageFont.load_default(size=18)
    lines = _title_lines(title, width, font) if title else []
    top = _band_height(lines)  # the title, or room for a viewer's own label, above the first row
    sheet = Image.new("RGB", (width, top + rows * (thumb.height + label_h + 8)), (248, 250, 252))
    draw = ImageDraw.Draw(sheet)
    _draw_title(draw, lines, font)
    for i, word in enumerate(words):
        x = 8 + (i % columns) * (thumb.width + 8)
        y = top + (i // columns) * (thumb.height + label_h + 8)
        sheet.paste(heatmap_overlay(thumb, weights[i], grid_size, peak=peak), (x, y))
        draw.text((x + 2, y + thumb.height + 4), word, fill=(30, 27, 75), font=word_font)
    return sheet


def _tile_side(size: tuple[int, int], tile: int) -> int:
    """The long side of a word's tile: ``tile`` for a square or landscape photo (``columns`` of
    them a row), longer for a portrait, so each of its tiles has about the area of a square
    one (a portrait's tiles had been 150 px wide and a strip's 67, in slots 208 px wide), at
    most 1.75 times ``tile``."""
    if size[0] >= size[1]:
        return tile
    ratio = max(MIN_SIDE_RATIO, min(size) / max(max(size), 1))
    return min(round(tile / ratio**0.5), round(tile * 1.75))


def titled(picture: Image.Image, title: str) -> Image.Image:
    """``picture`` below a band with ``title`` in it (wrapped to the width), as attention sheets are."""
    from PIL import ImageDraw, ImageFont

    font = ImageFont.load_default(size=18)
    lines = _title_lines(title, picture.width, font)
    band = _band_height(lines)
    out = Image.new("RGB", (picture.width, picture.height + band), (248, 250, 252))
    out.paste(picture, (0, band))
    _draw_title(ImageDraw.Draw(out), lines, font)
    return out


_LINE_HEIGHT = 24


def _title_lines(title: str, width: int, font) -> list[str]:
    """``title`` broken into lines that fit ``width`` (a single word too long for it is cut)."""
    limit = width - 20
    lines: list[str] = []
    for word in title.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= limit:
            lines[-1] += f" {word}"
            continue
        if font.getlength(word) > limit:
            while len(word) > 1 and font.getlength(word + "...") > limit:
                word = word[:-1]
            word += "..."
        lines.append(word)
    return lines


def _band_height(lines: list[str]) -> int:
    return max(40, 16 + _LINE_HEIGHT * len(lines))


def _draw_title(draw, lines: list[str], font) -> None:
    for i, line in enumerate(lines):
        draw.text((10, 10 + i * _LINE_HEIGHT), line, fill=(30, 27, 75), font=font)
