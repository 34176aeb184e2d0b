"""The CLIP engine: any ``transformers`` CLIP checkpoint a user names (a folder, or a hub id
already in the local Hugging Face cache).

    >>> engine = ClipEngine("/models/clip-vit-base-patch32")       # CLIPModel.from_pretrained
    >>> clf = engine.build(parse_classes("cat, dog"))               # prompt-ensembled text side
    >>> clf(images)                                                 # (N, 2) probabilities

Only runs when a user names CLIP weights (``--engine clip --clip PATH``): capsight never
downloads them by itself. The text side is computed once at build time, so the classifier that
travels holds the vision tower and a (C, D) matrix of class embeddings, nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from capsight.classify.class_sets import ClassList, as_class_list
from capsight.classify.classifier import ImageClassifier, resize_images
from capsight.classify.templates import CLIP_TEMPLATES, fill_template, resolve_templates
from capsight.errors import ModelNotFound
from capsight.hub_cache import cached_folder
from capsight.progress import ProgressCallback

_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipVision(nn.Module):
    """CLIP's vision tower and projection: normalised pixels -> unit image embeddings."""

    def __init__(self, vision_model: nn.Module, projection: nn.Module) -> None:
        super().__init__()
        self.vision_model = vision_model
        self.visual_projection = projection

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        pooled = self.vision_model(pixel_values=pixels).pooler_output  # (N, hidden)
        embedded = self.visual_projection(pooled)  # (N, D)
        return embedded / embedded.norm(dim=-1, keepdim=True)  # (N, D)


class ClipClassifier(ImageClassifier):
    def __init__(
        self,
        vision: ClipVision,
        text_embeddings: torch.Tensor,  # (C, D) unit rows
        logit_scale: float,
        labels: list[str],
        resolution: int,
        mean: Sequence[float],
        std: Sequence[float],
    ) -> None:
        super().__init__(labels, "clip", borrowed=("vision",))
        self.vision = vision
        self.resolution = resolution
        self.logit_scale = logit_scale
        self.register_buffer("text_embeddings", text_embeddings)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = resize_images(images, self.resolution, "bicubic").clamp(0, 1)  # (N, 3, R, R)
        x = (x - self.mean) / self.std
        image = self.vision(x)  # (N, D)
        return (self.logit_scale * image @ self.text_embeddings.T).softmax(dim=-1)  # (N, C)


class ClipEngine:
    name = "clip"
    default_templates = CLIP_TEMPLATES

    def __init__(self, path_or_id: str) -> None:
        from transformers import AutoTokenizer, CLIPModel

        # A folder, or a hub id already in the local Hugging Face cache (as its folder there:
        # given the id, transformers looks it up online even with local_files_only); never the
        # network (offline it would retry for half a minute before failing).
        folder = cached_folder(path_or_id)
        if folder is None:
            raise ModelNotFound(
                f"cannot load CLIP weights from {path_or_id!r}: no such folder, nor a hub id in "
                "the local Hugging Face cache (capsight downloads nothing); give a folder "
                "holding a saved transformers CLIPModel and its tokenizer"
            )
        try:
            self.model = CLIPModel.from_pretrained(folder, local_files_only=True).eval()
            self.tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelNotFound(
                f"cannot load CLIP weights from {path_or_id!r} ({first}); give a folder holding a "
                "saved transformers CLIPModel and its tokenizer"
            ) from None
        self.path = str(path_or_id)
        self.mean, self.std = _normalisation(folder)
        self.resolution = int(self.model.config.vision_config.image_size)

    @torch.no_grad()
    def text_embeddings(
        self,
        labels: Sequence[str],
        templates: Sequence[str],
        progress: ProgressCallback | None = None,
    ) -> torch.Tensor:
        """(C, D) prompt-ensembled, unit-norm text embeddings."""
        texts = [fill_template(t, label) for label in labels for t in templates]
        rows = []
        for start in range(0, len(texts), 256):
            if progress is not None:
                progress(start / len(texts), f"embedding {len(texts):,} class prompts")
            batch = self.tokenizer(
                texts[start : start + 256],
                padding=True,
                truncation=True,
                return_tensors="pt",
                max_length=self.model.config.text_config.max_position_embeddings,
            )
            out = self.model.text_model(
                input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
            )
            rows.append(self.model.text_projection(out.pooler_output))  # (B, D)
        embedded = F.normalize(torch.cat(rows), dim=-1).view(len(labels), len(templates), -1)
        return F.normalize(embedded.mean(dim=1), dim=-1)  # (C, D)

    def build(
        self,
        classes: ClassList,
        templates: Sequence[str] | str | None = None,
        progress: ProgressCallback | None = None,
    ) -> ClipClassifier:
        classes = as_class_list(classes)
        templates = resolve_templates(templates, self.default_templates)
        text = self.text_embeddings(classes.labels, templates, progress)
        vision = ClipVision(self.model.vision_model, self.model.visual_projection).eval()
        scale = float(self.model.logit_scale.detach().exp().clamp(max=100))
        return ClipClassifier(
            vision, text, scale, list(classes.labels), self.resolution, self.mean, self.std
        ).eval()


def _normalisation(path_or_id: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Pixel mean/std from a local preprocessor_config.json, else OpenAI CLIP's."""
    config = Path(path_or_id) / "preprocessor_config.json"
    if config.is_file():
        try:
            data = json.loads(config.read_text("utf-8"))
            return tuple(data["image_mean"]), tuple(data["image_std"])
        except (ValueError, KeyError, TypeError):
            pass
    return _OPENAI_MEAN, _OPENAI_STD
