"""novelty_scores: distance of each moment to the mean of the previous K, on tiny arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from capsight.errors import InvalidParameter
from capsight.novelty.scoring import canonical_metric, novelty_scores, previous_means

X = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])


def test_first_moment_is_nan_and_the_rest_are_finite():
    scores = novelty_scores(X, window=2)
    assert math.isnan(scores[0]) and np.isfinite(scores[1:]).all()


def test_cosine_distance_to_the_window_mean():
    # moment 2 vs mean([1,0],[1,0]) -> orthogonal -> 1; moment 3 vs mean([1,0],[0,1]) -> 1 - cos 45
    scores = novelty_scores(X, window=2, metric="cosine")
    np.testing.assert_allclose(scores[1:], [0.0, 1.0, 1 - math.sqrt(0.5)], atol=1e-12)


def test_euclidean_distance_and_the_original_spelling():
    expected = [0.0, math.sqrt(2), math.sqrt(0.5)]
    np.testing.assert_allclose(novelty_scores(X, 2, "euclidean")[1:], expected, atol=1e-12)
    np.testing.assert_allclose(novelty_scores(X, 2, "euclidian")[1:], expected, atol=1e-12)
    assert canonical_metric("Euclidian") == "euclidean"


def test_window_one_compares_with_the_previous_moment_only():
    scores = novelty_scores(X, window=1, metric="euclidean")
    np.testing.assert_allclose(scores[1:], [0.0, math.sqrt(2), 0.0], atol=1e-12)


def test_fewer_than_window_moments_at_the_start_uses_what_there_is():
    means = previous_means(X, window=10)
    np.testing.assert_allclose(means[1], [1, 0])
    np.testing.assert_allclose(means[3], [2 / 3, 1 / 3])


def test_a_window_longer_than_any_video_means_every_moment_before():
    # `--window 99999999999999999999` is a valid integer: it overflowed numpy's int64
    np.testing.assert_array_equal(novelty_scores(X, window=10**20), novelty_scores(X, window=4))


def test_cosine_ignores_overall_scale_and_euclidean_scales_with_it():
    np.testing.assert_allclose(novelty_scores(3 * X, 2)[1:], novelty_scores(X, 2)[1:], atol=1e-12)
    np.testing.assert_allclose(
        novelty_scores(3 * X, 2, "euclidean")[1:], 3 * novelty_scores(X, 2, "euclidean")[1:]
    )


def test_a_zero_vector_is_maximally_unlike():
    scores = novelty_scores(np.array([[1.0, 0.0], [0.0, 0.0]]), window=1)
    assert scores[1] == pytest.approx(1.0)


def test_single_moment_and_empty_inputs():
    assert np.isnan(novelty_scores(np.ones((1, 3)), 5)).all()
    assert novelty_scores(np.zeros((0, 3)), 5).shape == (0,)


@pytest.mark.parametrize("metric", ["manhattan", "", "cos"])
def test_unknown_metric_is_invalid(metric):
    with pytest.raises(InvalidParameter, match="metric"):
        novelty_scores(X, 2, metric)


@pytest.mark.parametrize("window", [0, -3, 1.5, True])
def test_window_must_be_a_positive_integer(window):
    with pytest.raises(InvalidParameter, match="window"):
        novelty_scores(X, window)
