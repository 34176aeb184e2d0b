"""``labels``: a sentence built from the encoder's ImageNet classes. No training needed.

It names up to two confident ImageNet classes ("a photo of a golden retriever and a tennis
ball"). It cannot describe actions, people (ImageNet has no "person" class), counts or
relations; it is the fallback when no trained captioner is installed.
"""

from __future__ import annotations

from capsight.captioning.base import Captioner, CaptionResult, DecodingOptions, register_captioner
from capsight.vision.encoder import EncodedImages, ImageEncoder


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


@register_captioner("labels", default_rank=100)
class LabelCaptioner(Captioner):
    name = "labels"
    decodes = False  # no DecodingOptions apply

    def __init__(self, second_label_ratio: float = 0.35) -> None:
        # A second class is named only when it is at least this fraction as likely as the first.
        self.second_label_ratio = second_label_ratio

    def caption(
        self, encoded: EncodedImages, decoding: DecodingOptions | None = None
    ) -> list[CaptionResult]:
        results = []
        for top in ImageEncoder.top_classes(encoded.probs, k=3):
            (first, p1), (second, p2) = top[0], top[1]
            text = f"a photo of {_article(first)} {first}"
            if p2 >= self.second_label_ratio * p1 and second.split()[-1] != first.split()[-1]:
                text += f" and {_article(second)} {second}"
            results.append(CaptionResult(text=text, score=None, tokens=text.split()))
        return results

    def describe(self) -> dict:
        return {
            **super().describe(),
            "kind": "ImageNet class names in a template (no trained language model)",
        }
