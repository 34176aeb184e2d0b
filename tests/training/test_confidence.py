"""Bootstrap intervals: rebuilt from per-photo statistics, they match pycocoevalcap on all photos."""

from __future__ import annotations

import numpy as np
import pytest

from capsight.errors import InvalidParameter
from capsight.training.confidence import (
    INTERVAL_METRICS,
    bootstrap_intervals,
    compare_captions,
    photo_stats,
)
from capsight.training.evaluation import score_captions, tokenized

pytest.importorskip("pycocoevalcap")

SUBJECTS = ["dog", "man", "woman", "child", "boy", "girl", "cat", "horse"]
PLACES = ["grass", "beach", "street", "snow", "water", "park"]


def _corpus(photos: int) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Photos whose captions share some n-grams with their references, some more than others."""
    rng = np.random.default_rng(3)
    references, candidates = {}, {}
    for i in range(photos):
        who, where = SUBJECTS[i % len(SUBJECTS)], PLACES[i % len(PLACES)]
        references[f"{i}.jpg"] = [
            f"a {who} is running on the {where} .",
            f"the {who} runs across the {where}",
            f"a {who} playing in the {where} near a tree .",
        ]
        guess = [who, where, "red"][rng.integers(3)]
        candidates[f"{i}.jpg"] = f"a {who} is standing on the {guess}" if i % 3 else f"a {guess}"
    return references, candidates


def test_all_photos_once_gives_back_pycocoevalcaps_scores():
    references, candidates = _corpus(40)
    expected = score_captions(references, candidates, use_java=False)
    gts, res, _, _ = tokenized(references, candidates, use_java=False)
    rebuilt = photo_stats(gts, res).overall()
    for metric in INTERVAL_METRICS:
        assert rebuilt[metric] == pytest.approx(expected[metric], rel=1e-9), metric


def test_intervals_hold_the_score_and_widen_for_fewer_photos():
    references, candidates = _corpus(60)
    scores = score_captions(references, candidates, use_java=False, bootstrap=300)
    assert set(scores["intervals"]) == set(INTERVAL_METRICS)  # METEOR has none; Java is off
    for metric, (low, high) in scores["intervals"].items():
        assert low <= scores[metric] <= high, metric
        assert low < high, metric
    gts, res, _, _ = tokenized(references, candidates, use_java=False)
    stats = photo_stats(gts, res)
    full = bootstrap_intervals(stats, 300)
    few = bootstrap_intervals(stats, 300, sample_size=10)
    assert np.diff(few["CIDEr"]) > np.diff(full["CIDEr"])
    assert few["means"]["CIDEr"] != pytest.approx(scores["CIDEr"])  # small sets score otherwise
    assert bootstrap_intervals(stats, 300, seed=1) != full  # another seed, other draws
    assert bootstrap_intervals(stats, 300) == full  # the same seed, the same draws


def test_subsets_are_scored_as_test_sets_of_their_own():
    references, candidates = _corpus(30)
    gts, res, _, _ = tokenized(references, candidates, use_java=False)
    stats = photo_stats(gts, res)
    # Every subset of all 30 photos is the whole set: pycocoevalcap's scores, every round.
    whole = bootstrap_intervals(stats, 100, sample_size=30)
    expected = score_captions(references, candidates, use_java=False)
    for metric in INTERVAL_METRICS:
        assert whole[metric] == pytest.approx((expected[metric], expected[metric])), metric
    # A subset's CIDEr is pycocoevalcap's on those photos alone (their document frequencies).
    row = np.zeros((1, 30))
    row[0, [1, 4, 7, 9, 20]] = 1
    chosen = [f"{i}.jpg" for i in (1, 4, 7, 9, 20)]
    alone = score_captions({k: references[k] for k in chosen}, {k: candidates[k] for k in chosen},
                           use_java=False)  # fmt: skip
    assert stats.subset_cider(row)[0] == pytest.approx(alone["CIDEr"])


def test_intervals_cover_only_the_metrics_asked_for():
    references, candidates = _corpus(20)
    scores = score_captions(references, candidates, use_java=False, metrics=["CIDEr"],
                            bootstrap=100)  # fmt: skip
    assert list(scores["intervals"]) == ["CIDEr"]
    assert "intervals" not in score_captions(references, candidates, use_java=False)


def test_a_paired_comparison_tells_a_better_captioner_from_the_same_one():
    references, candidates = _corpus(50)
    exact = {key: refs[0] for key, refs in references.items()}
    same = compare_captions(references, candidates, dict(candidates), 200, use_java=False)
    assert same["CIDEr"]["difference"] == 0 and same["CIDEr"]["interval"] == (0.0, 0.0)
    assert same["CIDEr"]["better"] == 0.0 and same["CIDEr"]["ties"] == 1.0
    unseeded = compare_captions(
        references, candidates, dict(candidates), 200, use_java=False, seed=None
    )
    assert unseeded["CIDEr"]["interval"] == (0.0, 0.0)  # both sides on the same draws, always
    none = compare_captions(references, candidates, exact, 0, use_java=False)  # no draws asked
    assert none["CIDEr"]["interval"] is None and none["CIDEr"]["difference"] > 0
    better = compare_captions(references, candidates, exact, 200, use_java=False)
    for metric in INTERVAL_METRICS:
        assert better[metric]["interval"][0] > 0, metric
        assert better[metric]["better"] == 1.0, metric
        assert better[metric]["challenger"] > better[metric]["baseline"]
    assert "Python" in better["fallback"]
    # Neither matches a 4-gram: both BLEU-4s print as 0.0000, and no draw is a win.
    one = {
        key: f"{' '.join(refs[0].split()[:3])} sitting" + " down" * (i % 2)
        for i, (key, refs) in enumerate(references.items())
    }  # "a dog is sitting"
    two = {key: f"{' '.join(refs[1].split()[:3])} slowly" for key, refs in references.items()}
    blank = compare_captions(references, one, two, 200, use_java=False)["BLEU-4"]
    assert blank["baseline"] < 1e-4 and blank["challenger"] < 1e-4
    assert blank["better"] == 0.0 and blank["ties"] == 1.0


def test_bad_requests_are_refused_in_one_sentence():
    references, candidates = _corpus(10)
    with pytest.raises(InvalidParameter, match="at least 100 rounds"):
        score_captions(references, candidates, use_java=False, bootstrap=10)
    with pytest.raises(InvalidParameter, match="captioned by one captioner only"):
        compare_captions(references, candidates, {"0.jpg": "a dog"}, use_java=False)
    with pytest.raises(InvalidParameter, match="no reference captions"):
        compare_captions({}, candidates, candidates, use_java=False)
    with pytest.raises(InvalidParameter, match="no captions to score"):
        compare_captions({}, {}, {}, use_java=False)
    with pytest.raises(InvalidParameter, match="not a string"):
        compare_captions(references, candidates, {**candidates, "0.jpg": None}, use_java=False)
    with pytest.raises(InvalidParameter, match="between 0 and 1"):
        compare_captions(references, candidates, candidates, level=95, use_java=False)
    gts, res, _, _ = tokenized(references, candidates, use_java=False)
    for size in (0, 1, 11):
        with pytest.raises(InvalidParameter, match="photos per draw"):
            bootstrap_intervals(photo_stats(gts, res), 100, sample_size=size)
    one = {"0.jpg": candidates["0.jpg"]}
    with pytest.raises(InvalidParameter, match="at least 2 scored photos"):
        score_captions(references, one, use_java=False, bootstrap=100)
