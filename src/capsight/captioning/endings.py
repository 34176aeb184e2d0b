"""Which words may end a caption, and which may start one, learned from the training captions.

    >>> endings = Endings.learn(vocab.encode(tokenize(c)) for c in training_captions)
    >>> endings.allows(vocab.encode(["a", "dog", "on", "the", "grass"]))   # True
    >>> endings.allows(vocab.encode(["a", "man", "in", "a", "red"]))       # False
    >>> vocab.stoi["at"] in endings.first_words                            # False

Models fine-tuned on CIDEr (self-critical training) learn that stopping early costs little, and
now and then end mid-phrase: "a man in a red", "a dog runs through a wooden". Decoding with
``DecodingOptions.complete_endings`` forbids ``<eos>`` unless the caption's last two words ended
a training caption, or its last word ends at least ``MIN_END_RATE`` of the training captions
it appears in ("grass", "water", "shirt"). On the Flickr8k test photos this catches every
dangling ending of the shipped model and changes nothing else; it would also have refused
about 6% of the human validation captions' endings, which are more varied than a model's.

The same option keeps a caption from starting mid-phrase. On COCO photos, unlike its training
photos, the Show and Tell baseline began 12 captions of 80 with the tail of a sentence: "at
night", "of people", "and white dog is running through the grass". A caption's first word must
have started at least ``MIN_STARTS`` training captions and ``MIN_START_RATE`` of those it appears
in: 143 words on Flickr8k ("a", "two", "the", "dog", ...; not "at", "on", "with", "red"), which
start 98.4% of its training captions. A file learned before 2026-12-06 has no first words, and
then any word may start a caption.

Saved as ``endings.json`` next to a checkpoint's ``vocab.json`` (word ids of that vocabulary).
Build it for an older checkpoint with

    python -m capsight.captioning.endings ../shared/data/flickr8k runs/sat/best
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from capsight.captioning.vocabulary import UNK_ID
from capsight.errors import ModelNotFound

FILE = "endings.json"
FORMAT = "capsight-endings/1"
MIN_END_RATE = 0.02  # a word this often last in its training captions may always end one
MIN_STARTS = 3  # a first word started at least this many training captions,
MIN_START_RATE = 0.005  # and this share of those it appears in


class Endings:
    def __init__(
        self,
        final_words: Iterable[int],
        final_pairs: Iterable[tuple[int, int]],
        first_words: Iterable[int] | None = None,
    ) -> None:
        self.final_words = frozenset(final_words)
        self.final_pairs = frozenset((int(a), int(b)) for a, b in final_pairs)
        self.first_words = None if first_words is None else frozenset(int(w) for w in first_words)
        self._not_first: dict[int, list[int]] = {}
        self._masks: dict[tuple[int, str], object] = {}

    @classmethod
    def learn(cls, captions: Iterable[list[int]], min_rate: float = MIN_END_RATE) -> Endings:
        """From training captions as word-id lists (no <bos>/<eos>)."""
        count: Counter[int] = Counter()
        last: Counter[int] = Counter()
        first: Counter[int] = Counter()
        pairs: set[tuple[int, int]] = set()
        for ids in captions:
            if not ids:
                continue
            count.update(ids)
            last[ids[-1]] += 1
            first[ids[0]] += 1
            if len(ids) >= 2:
                pairs.add((ids[-2], ids[-1]))
        # <unk> is never emitted: a set of it alone (a tiny corpus) would leave no first word
        starts = {w for w, n in first.items()
                  if n >= MIN_STARTS and n >= MIN_START_RATE * count[w] and w != UNK_ID}  # fmt: skip
        return cls((w for w, n in last.items() if n >= min_rate * count[w]), pairs, starts or None)

    def not_first(self, vocab_size: int) -> list[int]:
        """The word ids below ``vocab_size`` no caption may start with ([] when any may)."""
        if self.first_words is None:
            return []
        if vocab_size not in self._not_first:
            self._not_first[vocab_size] = [
                w for w in range(vocab_size) if w not in self.first_words
            ]
        return self._not_first[vocab_size]

    def not_first_mask(self, logp):
        """A (V,) boolean mask of ``not_first`` for ``logp``'s vocabulary, a NumPy array or a
        torch tensor on ``logp``'s device as ``logp`` is (made once per size and device); None
        when any word may start a caption."""
        vocab_size = logp.shape[-1]
        is_torch = hasattr(logp, "masked_fill")  # (NumPy arrays have a .device, "cpu", too)
        key = (vocab_size, f"torch:{logp.device}" if is_torch else "numpy")
        if key not in self._masks:
            banned = self.not_first(vocab_size)
            if not banned:
                self._masks[key] = None
            else:
                mask = np.zeros(vocab_size, bool)
                mask[banned] = True
                if is_torch:  # (torch is imported by whoever made logp)
                    import torch

                    mask = torch.from_numpy(mask).to(logp.device)
                self._masks[key] = mask
        return self._masks[key]

    def allows(self, words: list[int]) -> bool:
        """May a caption end after these word ids? Never when it is empty."""
        if not words:
            return False
        return words[-1] in self.final_words or (
            len(words) >= 2 and (words[-2], words[-1]) in self.final_pairs
        )

    def to_json(self) -> dict:
        data = {
            "format": FORMAT,
            "final_words": sorted(self.final_words),
            "final_pairs": sorted(self.final_pairs),
        }
        if self.first_words is not None:
            data["first_words"] = sorted(self.first_words)
        return data

    def save(self, folder: str | os.PathLike) -> None:
        (Path(folder) / FILE).write_text(json.dumps(self.to_json(), separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, folder: str | os.PathLike) -> Endings | None:
        """The checkpoint folder's endings, or None when it has none (any ending allowed)."""
        path = Path(folder) / FILE
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise ValueError("not an endings file")
            return cls(data["final_words"], data["final_pairs"], data.get("first_words"))
        except (ValueError, UnicodeDecodeError, KeyError, TypeError):
            raise ModelNotFound(f"{path}: not a capsight endings file ({FORMAT}); the checkpoint is "
                                "damaged: retrain, reinstall, or delete the file to allow any "
                                "ending") from None  # fmt: skip


if __name__ == "__main__":  # the tool itself lives in capsight._cli.tools.endings
    from capsight._cli.tools.endings import main

    raise SystemExit(main())
