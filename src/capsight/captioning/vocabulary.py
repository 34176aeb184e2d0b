"""Caption text: normalisation, tokenisation and the word vocabulary of a trained captioner.

    >>> tokenize("A black dog is running after a white dog in the snow .")
    ['a', 'black', 'dog', 'is', 'running', 'after', 'a', 'white', 'dog', 'in', 'the', 'snow']
    >>> vocab = Vocabulary.build([["a", "dog"], ["a", "cat"]], min_count=1)
    >>> vocab.encode(["a", "dog", "zebra"])
    [4, 6, 3]
    >>> vocab.decode([1, 4, 6, 2])
    ['a', 'dog']

Ids 0-3 are always ``<pad> <bos> <eos> <unk>``; words follow by falling count, then
alphabetically, so the same captions always give the same vocabulary.
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from capsight.errors import ModelNotFound

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3

_NON_WORD = re.compile(r"[^a-z0-9' ]+")
_SPACES = re.compile(r"\s+")
_POSSESSIVE = re.compile(r"(?<=[a-z0-9])'s\b")


# Before the ASCII fold: typographic apostrophes are apostrophes, invisible joiners and
# separators are spaces ("a dog\u200bruns" is two words), and "ß" is "ss".
_BEFORE_ASCII = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u00df": "ss",
                               "\u200b": " ", "\u200c": " ", "\u200d": " ", "\u2060": " ",
                               # Latin letters NFKD does not take apart (they had been dropped:
                               # "Ørsted" became "rsted", "Łódź" "odz")
                               "ø": "o", "Ø": "O", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE",
                               "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D",
                               "þ": "th", "Þ": "TH", "ı": "i", "ħ": "h", "Ħ": "H"})  # fmt: skip


def normalize_caption(text: str) -> str:
    """Lower case, accents stripped, punctuation dropped, single spaces."""
    text = unicodedata.normalize("NFKD", text.translate(_BEFORE_ASCII))
    text = text.encode("ascii", "ignore").decode("ascii").lower()
    text = _NON_WORD.sub(" ", text.replace("&", " and "))
    # "dog's" -> "dog 's" as the PTB tokenizer of the scorers does; stray quotes go.
    text = _POSSESSIVE.sub(" 's", text)
    words = [w if w == "'s" else w.strip("'") for w in _SPACES.sub(" ", text).strip().split(" ")]
    return " ".join(w for w in words if w)


def tokenize(text: str) -> list[str]:
    """Normalised words of a caption."""
    normalized = normalize_caption(text)
    return normalized.split(" ") if normalized else []


class Vocabulary:
    """Word <-> id mapping with the four special tokens first."""

    def __init__(self, words: Iterable[str]) -> None:
        self.itos: list[str] = list(SPECIALS) + [w for w in words if w not in SPECIALS]
        self.stoi: dict[str, int] = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, token_lists: Iterable[list[str]], min_count: int = 5) -> Vocabulary:
        """Keep words seen at least ``min_count`` times; the rest become ``<unk>``."""
        counts = Counter(w for tokens in token_lists for w in tokens)
        kept = sorted(
            (w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w)
        )
        return cls(kept)

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    def encode(self, tokens: list[str], add_bos_eos: bool = False) -> list[int]:
        ids = [self.stoi.get(w, UNK_ID) for w in tokens]
        return [BOS_ID, *ids, EOS_ID] if add_bos_eos else ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids -> words, stopping at ``<eos>`` and skipping ``<pad>``/``<bos>``."""
        words = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i in (PAD_ID, BOS_ID):
                continue
            words.append(self.itos[i])
        return words

    def to_json(self) -> dict:
        return {"format": "capsight-vocabulary/1", "itos": self.itos}

    def save(self, path: str | os.PathLike) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=0) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> Vocabulary:
        p = Path(path)
        if not p.is_file():
            raise ModelNotFound(f"{p}: vocabulary file missing; retrain or reinstall the model")
        try:
            itos = json.loads(p.read_text(encoding="utf-8"))["itos"]
        except (ValueError, UnicodeDecodeError, KeyError, TypeError):
            itos = None
        if not isinstance(itos, list) or tuple(itos[:4]) != SPECIALS:
            raise ModelNotFound(
                f"{p}: not a capsight vocabulary (damaged, or special tokens missing)"
            )
        return cls(itos[4:])
