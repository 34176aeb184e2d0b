"""Fast CIDEr-D with document frequencies fixed on a reference corpus (the SCST reward).

    >>> cider = CiderD([["a dog runs", "a brown dog runs on grass"], ["a man on a bike"]])
    >>> cider.score("a dog runs on grass", ["a dog runs", "a brown dog runs on grass"])
    5.59...

pycocoevalcap's ``Cider`` recomputes document frequencies from the references of each call,
which is right for scoring a test set but wrong (and slow) for rewarding a batch of samples
during self-critical training. This follows the same CIDEr-D definition (n = 1..4, tf-idf,
clipped counts, Gaussian length penalty with sigma 6, scaled by 10) with frequencies taken once
from the training captions, as Rennie et al. (2017) did. Captions are lists of words or strings
(split on spaces).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

MAX_N = 4
SIGMA = 6.0


def _ngrams(words: Sequence[str]) -> list[Counter]:
    return [
        Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
        for n in range(1, MAX_N + 1)
    ]


def _words(caption) -> list[str]:
    return caption.split() if isinstance(caption, str) else list(caption)


class CiderD:
    def __init__(self, reference_sets: Sequence[Sequence]) -> None:
        """reference_sets: for every image of the corpus, its reference captions."""
        self.df: Counter = Counter()
        for refs in reference_sets:
            seen = set()
            for ref in refs:
                for counts in _ngrams(_words(ref)):
                    seen.update(counts)
            self.df.update(seen)
        self.log_n = math.log(float(max(len(reference_sets), 1)))
        self._ref_cache: dict[tuple, list] = {}

    def _vector(self, words: list[str]) -> tuple[list[dict], list[float], int]:
        vec, norms = [], []
        for counts in _ngrams(words):
            v = {
                g: tf * (self.log_n - math.log(max(1.0, self.df.get(g, 0.0))))
                for g, tf in counts.items()
            }
            vec.append(v)
            norms.append(math.sqrt(sum(x * x for x in v.values())))
        return vec, norms, len(words)

    def _refs(self, refs: Sequence) -> list:
        key = tuple(" ".join(_words(r)) for r in refs)
        cached = self._ref_cache.get(key)
        if cached is None:
            cached = [self._vector(_words(r)) for r in refs]
            if len(self._ref_cache) > 200_000:
                self._ref_cache.clear()
            self._ref_cache[key] = cached
        return cached

    def score(self, candidate, refs: Sequence) -> float:
        vec, norms, length = self._vector(_words(candidate))
        ref_vectors = self._refs(refs)
        total = [0.0] * MAX_N
        for rvec, rnorms, rlength in ref_vectors:
            delta = float(length - rlength)
            for n in range(MAX_N):
                dot = 0.0
                for g, x in vec[n].items():
                    r = rvec[n].get(g)
                    if r is not None:
                        dot += min(x, r) * r  # CIDEr-D clips the candidate's counts
                if norms[n] and rnorms[n]:
                    total[n] += (
                        dot / (norms[n] * rnorms[n]) * math.exp(-(delta**2) / (2 * SIGMA**2))
                    )
        return sum(total) / MAX_N / len(ref_vectors) * 10.0

    def scores(self, candidates: Sequence, refs: Sequence[Sequence]) -> list[float]:
        return [self.score(c, r) for c, r in zip(candidates, refs, strict=False)]


def cider_scorer(reference_sets: Sequence[Sequence]) -> CiderD:
    """A CIDEr-D scorer whose document frequencies come from ``reference_sets`` (SCST rewards)."""
    return CiderD(reference_sets)
