"""Novelty of each moment: its distance to the mean of the ``window`` moments before it.

    >>> novelty_scores(np.array([[1, 0], [1, 0], [0, 1]]), window=2, metric="cosine")
    array([nan,  0.,  1.])

This is the original project's definition and the ``novelty`` number in ``analysis.json``: for
moment ``i`` with embedding ``e_i``, ``d(e_i, mean(e_{i-K}, ..., e_{i-1}))``, with ``K = window``
(fewer at the start of the video: the moments there are), ``d`` the cosine distance
``1 - cos`` (0 = same direction, 1 = orthogonal, up to 2) or the Euclidean distance. The first
moment has nothing before it and scores NaN.
"""

from __future__ import annotations

import numpy as np

from capsight.errors import InvalidParameter

METRICS = ("cosine", "euclidean")
_ALIASES = {"euclidian": "euclidean"}  # the original project's spelling


def canonical_metric(metric: str) -> str:
    """``"cosine"`` or ``"euclidean"`` (accepting ``"euclidian"``); InvalidParameter otherwise."""
    name = _ALIASES.get(str(metric).lower(), str(metric).lower())
    if name not in METRICS:
        raise InvalidParameter(f"unknown metric {metric!r}; use cosine or euclidean")
    return name


def check_window(window: int) -> int:
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise InvalidParameter(f"window must be an integer >= 1, got {window!r}", "window")
    return int(window)


def distances(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Row-wise distance between (N, D) arrays ``a`` and ``b``."""
    if canonical_metric(metric) == "euclidean":
        return np.linalg.norm(a - b, axis=1)
    dot = np.einsum("nd,nd->n", a, b)  # (N,)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)  # (N,)
    # A zero vector (e.g. an empty caption) has no direction: call it maximally unlike (1).
    cos = np.divide(dot, norms, out=np.zeros_like(dot), where=norms > 0)
    return np.clip(1.0 - cos, 0.0, 2.0)


def previous_means(embeddings: np.ndarray, window: int) -> np.ndarray:
    """(N, D) -> (N, D): row i is the mean of rows max(0, i-window) .. i-1 (row 0 is NaN)."""
    x = np.asarray(embeddings, dtype=np.float64)
    n = len(x)
    csum = np.vstack([np.zeros((1, x.shape[1])), np.cumsum(x, axis=0)])  # (N+1, D)
    i = np.arange(n)
    lo = np.maximum(0, i - min(window, n))  # a window past the start (even 10**20) is all of it
    counts = (i - lo).astype(np.float64)  # (N,) moments available before i
    with np.errstate(invalid="ignore", divide="ignore"):
        return (csum[i] - csum[lo]) / counts[:, None]  # (N, D), NaN for row 0


def novelty_scores(embeddings: np.ndarray, window: int = 5, metric: str = "cosine") -> np.ndarray:
    """(N, D) embeddings in time order -> (N,) novelty; the first entry is NaN."""
    window = check_window(window)
    metric = canonical_metric(metric)
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2:
        raise InvalidParameter(f"embeddings must be a 2-D array (moments, dims), got {x.shape}")
    scores = np.full(len(x), np.nan)
    if len(x) > 1:
        scores[1:] = distances(x[1:], previous_means(x, window)[1:], metric)
    return scores
