"""Prompt templates: how a class name becomes the sentences its text embedding averages over.

    >>> fill_template("a photo of a {}.", "apple")
    'a photo of an apple.'
    >>> resolve_templates(None, CLIP_TEMPLATES)[:1]
    ('a photo of a {}.',)

Several templates at once are averaged in embedding space (prompt ensembling: the CLIP paper
found it worth about 5 points of ImageNet accuracy over a single template).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from capsight.errors import InvalidParameter, quoted

# Seven of the 80 CLIP ImageNet prompts, the subset its authors found best together, plus the plain
# "a photo of a {}." baseline.
CLIP_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
)

# For the offline engine both sides of the comparison are sentences for the same text embedder,
# so templates that describe a photo's content (not its style) work best; see docs/classify.md.
OFFLINE_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a close-up photo of a {}.",
    "a photo of the {}.",
)

_A_BEFORE_VOWEL = re.compile(r"\ba \{\}")


def fill_template(template: str, label: str) -> str:
    """Put ``label`` into ``template``, turning "a {}" into "an {}" before a vowel sound."""
    if label[:1].lower() in "aeiou":
        template = _A_BEFORE_VOWEL.sub("an {}", template)
    return template.replace("{}", label)


MAX_TEMPLATE = 200  # characters: a prompt is a short sentence (and is copied per class)


def resolve_templates(
    templates: Sequence[str] | str | None, default: Sequence[str]
) -> tuple[str, ...]:
    """None -> the engine's default set; a string or list -> checked templates (each needs "{}")."""
    if templates is None:
        return tuple(default)
    if isinstance(templates, str):
        templates = [templates]
    if not isinstance(templates, (list, tuple)) or not all(isinstance(t, str) for t in templates):
        raise InvalidParameter("templates must be a string or a list of strings such as "
                               f"'a photo of a {{}}.', got {quoted(repr(templates))}")  # fmt: skip
    out = tuple(t.strip() for t in templates if t.strip())
    if not out:
        raise InvalidParameter("no template given; pass one like 'a photo of a {}.'")
    for template in out:
        if len(template) > MAX_TEMPLATE:
            raise InvalidParameter(f"template {quoted(template, 40)} has {len(template):,} "
                                   f"characters; at most {MAX_TEMPLATE}")  # fmt: skip
        if template.count("{}") != 1:
            raise InvalidParameter(
                f"template {quoted(template)} must contain '{{}}' exactly once, where the class name goes"
            )
    return out
