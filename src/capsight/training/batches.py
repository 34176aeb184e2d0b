"""Training batches on cached features: B images, k captions each, as padded id tensors.

    >>> data = CaptionBatches.from_corpus(corpus.split("train"), cache, vocab, flip_cache=None)
    >>> for grid, captions, rows in data.epoch(batch_images=32, captions_per_image=5, seed=0):
    ...     grid.shape, captions.shape         # (32, 49, 1280) float32, (160, T) with <bos>/<eos>

Each epoch visits every image once, in a seeded random order. An image with more than k
captions gets k of them drawn at random; one with fewer repeats some. With a mirrored-photo
cache, each image is mirrored with probability 1/2 and its captions swap "left" and "right".
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from capsight.captioning.options import MAX_LENGTH
from capsight.captioning.vocabulary import PAD_ID, Vocabulary, tokenize
from capsight.errors import DatasetError
from capsight.training.datasets import CaptionedImage
from capsight.training.features import FeatureCache


@dataclass
class CaptionBatches:
    keys: list[str]
    # What the model reads (``CaptionModel.feature_input``): the grid (N, P, 1280), or hidden
    # maps (N, C, h, w) for fine-tuned encoder blocks; fp16, in memory.
    grid: torch.Tensor
    grid_flip: torch.Tensor | None  # the same of the mirrored photos
    captions: list[torch.Tensor]  # per image (n_i, T_i) ids with <bos>/<eos>, padded
    references: list[list[str]]  # per image, normalised reference captions (for CIDEr)
    swap: torch.Tensor | None  # (V,) id map exchanging "left" and "right"

    @classmethod
    def from_corpus(
        cls,
        images: list[CaptionedImage],
        cache: FeatureCache,
        vocab: Vocabulary,
        flip_cache: FeatureCache | None = None,
        max_length: int = 22,
        features: str = "grid",
    ) -> CaptionBatches:
        keys = [im.key for im in images]
        bad = [k for k in keys if k in cache.unreadable]
        if bad:  # their rows hold a black photo's features: never train on or score them
            raise DatasetError(
                f"{len(bad)} of these photos could not be read when their features were cached "
                f"(first: {cache.unreadable[bad[0]]}); leave them out of the dataset"
            )
        grid = torch.from_numpy(np.ascontiguousarray(cache.features(features)[cache.rows(keys)]))
        grid_flip = None
        if flip_cache is not None:
            rows = flip_cache.rows(keys)
            grid_flip = torch.from_numpy(np.ascontiguousarray(flip_cache.features(features)[rows]))
        captions, references = caption_targets(images, vocab, max_length)
        swap = left_right_swap(vocab)
        return cls(keys, grid, grid_flip, captions, references, swap)

    def __len__(self) -> int:
        return len(self.keys)

    def epoch(
        self,
        batch_images: int,
        captions_per_image: int,
        seed: int,
        shard: tuple[int, int] = (0, 1),
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Yield (grid (B, P, D) or hidden maps (B, C, h, w), float32; captions (B*k, T); image
        rows (B,)) for one epoch."""
        gen = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(self), generator=gen)
        rank, world = shard
        order = order[rank::world]
        for start in range(0, len(order), batch_images):
            rows = order[start : start + batch_images]
            grid = self.grid[rows].float()  # (B, P, D) or (B, C, h, w)
            mirrored = torch.zeros(len(rows), dtype=torch.bool)
            if self.grid_flip is not None:
                mirrored = torch.rand(len(rows), generator=gen) < 0.5
                grid[mirrored] = self.grid_flip[rows[mirrored]].float()
            captions = pick_captions(
                self.captions, rows, mirrored, captions_per_image, gen, self.swap
            )
            yield grid, captions, rows


def caption_targets(
    images: list[CaptionedImage], vocab: Vocabulary, max_length: int = 22
) -> tuple[list[torch.Tensor], list[list[str]]]:
    """Per image: its captions as padded ids with <bos>/<eos> (n_i, T_i), cut to ``max_length``
    words, and the same captions as normalised text (the CIDEr references)."""
    captions, references = [], []
    for im in images:
        token_lists = [tokenize(c)[:max_length] for c in im.captions] or [[]]
        ids = [vocab.encode(t, add_bos_eos=True) for t in token_lists]
        if not isinstance(vocab, Vocabulary):  # a GPT-2 tokenizer: words may be several tokens
            ids = [i if len(i) <= MAX_LENGTH + 1 else [*i[:MAX_LENGTH], i[-1]] for i in ids]
        width = max(len(i) for i in ids)
        captions.append(torch.tensor([i + [PAD_ID] * (width - len(i)) for i in ids]))
        references.append([" ".join(t) for t in token_lists])
    return captions, references


def left_right_swap(vocab) -> torch.Tensor | None:
    """(V,) id map exchanging "left" and "right" (a mirrored photo's captions); None when the
    vocabulary lacks either word, or (a GPT-2 tokenizer's) has no single token for it."""
    left, right = _word_id(vocab, "left"), _word_id(vocab, "right")
    if left is None or right is None:
        return None
    swap = torch.arange(len(vocab))
    swap[left], swap[right] = right, left
    return swap


def _word_id(vocab, word: str) -> int | None:
    if isinstance(vocab, Vocabulary):
        return vocab.stoi.get(word)
    ids = vocab.encode([word])  # capsight.captioning.prefix_gpt2.TokenizerVocabulary
    unknown = getattr(vocab.tokenizer, "unk_token_id", None)
    return ids[0] if len(ids) == 1 and ids[0] != unknown else None


def pick_captions(
    captions: list[torch.Tensor], rows: torch.Tensor, mirrored: torch.Tensor, captions_per_image: int,
    gen: torch.Generator, swap: torch.Tensor | None,
) -> torch.Tensor:  # fmt: skip
    """k captions for each image row, drawn at random (repeats when an image has fewer), with
    left and right exchanged for mirrored photos: (B*k, T) padded ids, rows of one image adjacent."""
    chosen = []
    for r, m in zip(rows.tolist(), mirrored.tolist(), strict=False):
        caps = captions[r]  # (n, T)
        pick = torch.randperm(len(caps), generator=gen)
        if len(pick) < captions_per_image:
            extra = torch.randint(len(caps), (captions_per_image - len(pick),), generator=gen)
            pick = torch.cat([pick, extra])
        sel = caps[pick[:captions_per_image]]
        if m and swap is not None:
            sel = swap[sel]
        chosen.append(sel)
    width = max(c.shape[1] for c in chosen)
    out = torch.full((len(chosen) * captions_per_image, width), PAD_ID, dtype=torch.long)
    for i, c in enumerate(chosen):
        out[i * captions_per_image : (i + 1) * captions_per_image, : c.shape[1]] = c
    return out
