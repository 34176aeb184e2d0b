"""How sure a caption score is: bootstrap intervals over the scored photos.

A test split of 875 photos gives one BLEU-4 and one CIDEr; another 875 photos of the same kind
would give others. Drawing the photos again with replacement (Efron's bootstrap) and scoring
each draw shows how far: the middle 95% of the draws is the interval. ``compare_captions``
does it for two captioners on the same draws (a paired bootstrap), which is the honest way to
say whether one beats the other or the difference is noise.

    >>> refs = {"a.jpg": ["a dog runs on the grass", ...], "b.jpg": [...], ...}  # 875 photos
    >>> score_captions(refs, shipped, bootstrap=1000)["intervals"]  # the photo default's captions
    {'BLEU-1': (0.700, 0.726), ..., 'BLEU-4': (0.242, 0.271), ..., 'CIDEr': (0.604, 0.677)}
    >>> compare_captions(refs, previous, shipped)["CIDEr"]
    {'baseline': 0.638, 'challenger': 0.639, 'difference': 0.0005,
     'interval': (-0.016, 0.017), 'better': 0.47}

Each metric is recomputed from per-photo statistics, so a draw costs no tokenizing or scoring:
BLEU from each photo's n-gram matches and lengths (pycocoevalcap's corpus formula, "closest"
reference length), ROUGE-L and CIDEr as means of per-photo scores. CIDEr keeps the document
frequencies of the whole scored set (the usual choice; recounting them per draw would move
it a little more). METEOR gets no interval: its corpus score is not a sum over photos.

``sample_size=N`` asks another question: what would a test set of only N such photos score?
Each round then takes N different photos and CIDEr is scored afresh on them, with their own
document frequencies, as it would be on such a set. That matters: n-grams are rarer among
fewer photos, so CIDEr runs higher on small sets (the photo default averages 0.690 on
125-photo subsets of the Flickr8k test photos, 0.639 on all 875).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from capsight.errors import InvalidParameter

__all__ = ["PhotoStats", "bootstrap_intervals", "check_rounds", "compare_captions", "photo_stats"]

INTERVAL_METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "ROUGE-L", "CIDEr")
MIN_ROUNDS = 100
# a (rounds, photos) table of 8-byte counts: 70 MB for 875 photos, 400 MB for 5,000
MAX_ROUNDS = 10_000
MIN_PHOTOS = 2  # one photo has CIDEr 0 and nothing to draw from
# Score differences that print as +-0.0000 (the four decimals `capsight eval --against` shows)
# are ties, not wins: two captioners that match no 4-gram both score a BLEU-4 near 1e-5
# (pycocoevalcap's guards), whose draws differ by ~1e-6 and had been called 99% losses.
TIE = 5e-5
_TINY, _SMALL = 1e-15, 1e-9  # pycocoevalcap's guards against 0/0 in BLEU


class PhotoStats:
    """Per-photo statistics from which every metric of :data:`INTERVAL_METRICS` is rebuilt.

    ``bleu`` is (N, 10): test length, closest reference length, then guessed and correct
    n-grams for n = 1..4; ``rouge`` and ``cider`` are (N,) per-photo scores; ``gts`` and
    ``res`` the tokenized references and captions, in the same photo order (for CIDEr on a
    subset, which needs the subset's own document frequencies).
    """

    def __init__(self, bleu: np.ndarray, rouge: np.ndarray, cider: np.ndarray,
                 gts: dict[str, list[str]], res: dict[str, list[str]]) -> None:  # fmt: skip
        self.bleu, self.rouge, self.cider = bleu, rouge, cider
        self.gts, self.res = gts, res

    def subset_cider(self, weights: np.ndarray) -> np.ndarray:
        """CIDEr of each row's photos (a 0/1 row of ``weights``) scored as a set of their own."""
        from pycocoevalcap.cider.cider import Cider

        keys = list(self.res)
        out = []
        for row in weights:
            chosen = [keys[i] for i in np.flatnonzero(row)]
            gts, res = {k: self.gts[k] for k in chosen}, {k: self.res[k] for k in chosen}
            out.append(Cider().compute_score(gts, res)[0])
        return np.asarray(out, dtype=np.float64)

    def __len__(self) -> int:
        return len(self.cider)

    def overall(self) -> dict[str, float]:
        """Every metric on all the photos, once each: pycocoevalcap's corpus scores."""
        return {m: float(v[0]) for m, v in self.scores(np.ones((1, len(self)))).items()}

    def scores(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Every metric for each row of ``weights`` ((R, N) photo counts of R draws)."""
        totals = weights @ self.bleu  # (R, 10)
        test_len, ref_len = totals[:, 0], totals[:, 1]
        guess, correct = totals[:, 2:6], totals[:, 6:10]
        precisions = np.cumprod((correct + _TINY) / (guess + _SMALL), axis=1)  # (R, 4)
        bleus = precisions ** (1.0 / np.arange(1, 5))
        ratio = (test_len + _TINY) / (ref_len + _SMALL)
        brevity = np.where(ratio < 1, np.exp(1 - 1 / np.minimum(ratio, 1)), 1.0)  # (R,)
        photos = weights.sum(axis=1)
        out = {f"BLEU-{n + 1}": bleus[:, n] * brevity for n in range(4)}
        out["ROUGE-L"] = weights @ self.rouge / photos
        out["CIDEr"] = weights @ self.cider / photos
        return out


def photo_stats(gts: dict[str, list[str]], res: dict[str, list[str]]) -> PhotoStats:
    """Per-photo statistics of tokenized references ``gts`` and candidates ``res``."""
    from pycocoevalcap.bleu.bleu_scorer import BleuScorer
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.rouge.rouge import Rouge

    keys = list(res)
    scorer = BleuScorer(n=4)
    for key in keys:
        scorer += (res[key][0], gts[key])
    rows = []
    for comps in scorer.ctest:
        ref_len = scorer._single_reflen(comps["reflen"], "closest", comps["testlen"])
        rows.append([comps["testlen"], ref_len, *comps["guess"], *comps["correct"]])
    ordered_gts = {k: gts[k] for k in keys}
    ordered_res = {k: res[k] for k in keys}
    rouge = Rouge().compute_score(ordered_gts, ordered_res)[1]
    cider = Cider().compute_score(ordered_gts, ordered_res)[1]
    return PhotoStats(np.asarray(rows, dtype=np.float64), np.asarray(rouge, dtype=np.float64),
                      np.asarray(cider, dtype=np.float64), ordered_gts, ordered_res)  # fmt: skip


def check_rounds(rounds: int) -> None:
    """Refuse a number of bootstrap draws too small for the tails of a 95% interval, or so
    large that its (rounds, photos) table would not fit in memory (99,999,999,999 asked for
    1.46 TiB, after every photo had been captioned)."""
    if rounds < MIN_ROUNDS:
        raise InvalidParameter(
            f"bootstrap needs at least {MIN_ROUNDS} rounds for a 95% interval, got {rounds}"
        )
    if rounds > MAX_ROUNDS:
        raise InvalidParameter(f"bootstrap takes at most {MAX_ROUNDS:,} rounds (1,000 is plenty for "
                               f"a 95% interval), got {rounds:,}")  # fmt: skip


def _draws(photos: int, rounds: int, seed: int) -> np.ndarray:
    """(rounds, photos) counts: each round draws as many photos as there are, with replacement."""
    check_rounds(rounds)
    if photos < MIN_PHOTOS:
        raise InvalidParameter(
            f"an interval needs at least {MIN_PHOTOS} scored photos, got {photos}"
        )
    rng = np.random.default_rng(seed)
    return rng.multinomial(photos, np.full(photos, 1.0 / photos), size=rounds)


def _subsets(photos: int, rounds: int, size: int, seed: int) -> np.ndarray:
    """(rounds, photos) 0/1 weights: each round takes ``size`` different photos."""
    check_rounds(rounds)
    if not MIN_PHOTOS <= size <= photos:
        raise InvalidParameter(
            f"photos per draw must be between {MIN_PHOTOS} and the {photos} scored, got {size}"
        )
    rng = np.random.default_rng(seed)
    weights = np.zeros((rounds, photos))
    for row in weights:
        row[rng.choice(photos, size, replace=False)] = 1.0
    return weights


def _interval(values: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise InvalidParameter(f"interval level must be between 0 and 1, got {level}")


def bootstrap_intervals(
    stats: PhotoStats,
    rounds: int = 1000,
    *,
    level: float = 0.95,
    sample_size: int | None = None,
    seed: int = 0,
) -> dict[str, tuple[float, float] | dict[str, float]]:
    """The ``level`` interval of each metric over ``rounds`` draws of the scored photos.

    ``sample_size=N``: each round takes N different photos instead, and CIDEr is scored on
    them afresh: where a test set of N such photos could land (it takes ~0.1 s per round for
    125 photos, for CIDEr's document frequencies). With it the result also has ``"means"``,
    each metric's mean over the rounds, since on small sets CIDEr's centre moves too.
    """
    _check_level(level)
    if sample_size is None:
        scores = stats.scores(_draws(len(stats), rounds, seed))
    else:
        weights = _subsets(len(stats), rounds, sample_size, seed)
        scores = stats.scores(weights)
        scores["CIDEr"] = stats.subset_cider(weights)
    intervals: dict = {metric: _interval(scores[metric], level) for metric in INTERVAL_METRICS}
    if sample_size is not None:
        intervals["means"] = {metric: float(np.mean(scores[metric])) for metric in INTERVAL_METRICS}
    return intervals


def compare_captions(
    references: Mapping[str, list[str]],
    baseline: Mapping[str, str],
    challenger: Mapping[str, str],
    rounds: int = 1000,
    *,
    level: float = 0.95,
    use_java: bool | None = None,
    seed: int = 0,
) -> dict[str, dict | str]:
    """Paired bootstrap of ``challenger`` against ``baseline`` (photo id -> caption each).

    Both are scored on the same draws of photos. Per metric: ``baseline`` and ``challenger``
    (their scores on all photos), ``difference`` (challenger - baseline), ``interval`` (of the
    difference), ``better`` (the share of draws in which the challenger scored higher) and
    ``ties`` (the share in which the two scored the same); with ``rounds=0`` no draws are made
    and those three are None. ``"fallback"`` as in ``score_captions`` when the Java tokenizer
    did not run.
    """
    from capsight.training.evaluation import check_inputs, tokenized

    _check_level(level)
    only = sorted(set(baseline) ^ set(challenger))
    if only:
        raise InvalidParameter(
            f"{len(only)} photo(s) were captioned by one captioner only (first: {only[0]!r}); "
            "compare the two on the same photos"
        )
    keys = check_inputs(references, baseline)
    check_inputs(references, challenger)
    if rounds:
        check_rounds(rounds)
    # Both captioners' captions tokenized in one pass (one Java start), keyed by (side, photo).
    gts, res, java, notes = tokenized(
        {(side, k): references[k] for side in "ab" for k in keys},
        {("a", k): baseline[k] for k in keys} | {("b", k): challenger[k] for k in keys},
        use_java,
    )
    stats = [
        photo_stats({k: gts[(side, k)] for k in keys}, {k: res[(side, k)] for k in keys})
        for side in "ab"
    ]
    result = {}
    full = [s.overall() for s in stats]
    weights = _draws(len(keys), rounds, seed) if rounds else None  # the same draws for both sides
    draws = [s.scores(weights) for s in stats] if rounds else None
    for metric in INTERVAL_METRICS:
        result[metric] = {
            "baseline": full[0][metric],
            "challenger": full[1][metric],
            "difference": full[1][metric] - full[0][metric],
            "interval": None, "better": None, "ties": None,
        }  # fmt: skip
        if draws:
            difference = draws[1][metric] - draws[0][metric]
            result[metric].update(interval=_interval(difference, level), better=float(np.mean(difference > TIE)),
                                  ties=float(np.mean(np.abs(difference) <= TIE)))  # fmt: skip
    if not java:
        notes.append("captions were tokenized in Python (an approximation of the PTB tokenizer)")
        result["fallback"] = "; ".join(notes)
    return result
