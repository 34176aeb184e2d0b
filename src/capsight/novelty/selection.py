"""Pick the novel moments of a video: real content changes, not nuisances.

    >>> sel = select_novel_moments({"visual": regions}, sensitivity=0.5)
    >>> sel.indices                      # moments that start something new, in time order
    [10, 20, 33]

A moment is novel when the content *changes, stays changed, and was not there a moment ago*.
For moment ``i`` of a signal with embeddings ``x`` and ``before_i`` the mean of the previous
``window`` embeddings (the original novelty's reference):

1. **change** ``c_i = d(x_i, before_i)``: the original novelty;
2. **persistence** ``p_i``: the second smallest ``d(x_j, before_i)`` over the next 8 s of
   moments ``j``. A cut, a dissolve or an object that arrives and stays keeps every later moment
   away from the old state; flicker, shake, noise or blur bursts revert, and once a later moment
   is back near ``before_i`` the persistence collapses (second smallest, so one odd later moment
   cannot veto a real event);
3. **unfamiliarity** ``u_i``: the second smallest ``d(x_i, x_j)`` over the moments 3 to 15 s
   back, but not before the last novel moment. When a nuisance lasts several moments its frames
   fill the window mean, and the return to normal looks like a change that persists; it is not
   unfamiliar, since the same shot was on screen just before the nuisance;
4. **strength** ``s_i = min(c_i, p_i, u_i)`` divided by a floor set by ``sensitivity``. The
   floors are cosine distances; a Euclidean ``d`` is put on the same scale first: for vectors of
   norm ``r``, ``|a - b|^2 / (2 r^2) = 1 - cos(a, b)``, so its strength is ``(s_i / floor_e)^2``
   with ``floor_e = r * sqrt(2 * floor)`` and ``r`` the median norm of the video's embeddings;
5. moments are taken left to right: ``i`` is novel when ``s_i`` exceeds the threshold and is
   the largest within +-1 s (a dissolve, or the decay of the window mean after a cut, gives
   one moment; strengths within ``TIE`` of each other are a tie, which the earliest wins).
   The threshold is 1 (the floor: a still or uneventful video has no novel moments), raised
   for a restless video to ``k`` times the lower quartile of its strengths.

For the ``visual`` signal, ``x_i`` is the encoder's feature grid average-pooled into 3x3
regions (overlapping: each spans 3 of the 7 grid cells) and ``d`` the largest region-wise
distance: an object entering one part of the frame changes that part a lot and the whole frame a
little. Frames are exposure-normalised
before encoding (``frames.normalise_exposure``), so flicker and darkening barely move the
features in the first place. With several signals (``fused``) the strengths are averaged with
``FUSED_WEIGHTS``; docs/novelty.md has the measurements behind those weights.

With ``sharpness`` (one number per moment, ``frames.sharpness``), a *blurred* moment (a dip in
sharpness against both sides, ``blurred_moments``) is never novel on its own strength (a pick
moves onto the blur it follows, when that blur looks like its new shot) and never part of a reference
(window mean, persistence, memory), and a *flat* one (NaN: a fade, a dark title card) may be
novel but is no reference, so the moments after a blur or a fade are compared with the sharp
shot before it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from capsight.errors import InvalidParameter
from capsight.novelty.scoring import canonical_metric, check_window

SIGNALS = ("fused", "visual", "text")

# How much each signal counts in the fused selection (measured: docs/novelty.md).
FUSED_WEIGHTS = {"visual": 1.0, "text": 0.0}

# Strengths this close (relatively) are a tie, which the earliest moment wins: two samples of
# one frame held on screen (a blank card after a cut) differ only by the codec's noise, and
# float rounding must not hand the cut to the second sample, where it falls within the peak
# radius of the cut back and is lost (Euclidean missed 2 of 7 cuts of a test clip that way).
TIE = 1e-3

# Strengths needed to tell a restless video (and raise its threshold), where every one of them
# clears the floor: a handheld shot sampled into 5 moments had had 2 of them picked, at the
# floor, where 8 were needed. (From 8 on, the lower quartile decides as for any video.)
MIN_RESTLESS = 4


@dataclass(frozen=True)
class SelectionConfig:
    persistence_seconds: float = 8.0  # a change must hold this long
    memory_seconds: tuple[float, float] = (3.0, 15.0)  # ... and differ from moments this far back
    peak_seconds: float = 1.0  # at most one novel moment per +- this many seconds
    floor_low: dict = field(default_factory=lambda: {"visual": 0.42, "text": 0.6})  # sens 0
    floor_high: dict = field(default_factory=lambda: {"visual": 0.08, "text": 0.25})  # sens 1
    quiet_k_low: float = 5.0  # threshold >= k * lower quartile of strengths, at sensitivity 0
    quiet_k_high: float = 2.5  # ... at sensitivity 1
    end_seconds: float = 4.0  # moments this close to the end (little future to check) need 1.5x
    regions: int = 3  # the encoder grid is pooled into regions x regions cells
    top_regions: int = 1  # d = mean of this many largest region distances
    blur_ratio: float = 0.5  # blurred: sharpness under this times its neighbours' on both sides
    blur_context_seconds: float = 4.0  # the neighbours: this far on each side


@dataclass
class Selection:
    indices: list[int]  # novel moments, time order
    strength: np.ndarray  # (N,) combined strength in floor units; NaN for moment 0
    threshold: float  # in floor units (>= 1)
    per_signal: dict[str, np.ndarray]  # (N,) each signal's strength in distance units
    floors: dict[str, float]  # distance that counts as 1 for each signal
    blurred: list[int] = field(default_factory=list)  # never a reference; novel only if moved
    flat: list[int] = field(default_factory=list)  # fades, dark cards: never a reference
    end_from: int | None = None  # moments from here on (the last end_seconds) need 1.5x
    moved: dict[int, int] = field(default_factory=dict)  # blur's start -> the pick moved there
    left_out: list[int] = field(default_factory=list)  # picks at the floor the raised bar lost

    def describe(self) -> dict:
        """JSON-ready summary for ``Analysis.extra``."""
        return {
            "method": "change that persists and is unfamiliar; local peak over a threshold",
            "threshold": round(float(self.threshold), 4),
            "floors": {k: round(v, 4) for k, v in self.floors.items()},
            "strength": [round(float(v), 4) if np.isfinite(v) else None for v in self.strength],
            "blurred": list(self.blurred),
            "flat": list(self.flat),
            "end_from": self.end_from,
            # {novel blurred moment: the sharp moment its strength was measured at}
            "moved": {str(start): picked for start, picked in self.moved.items()},
            "left_out": list(self.left_out),
        }


def moment_spacing(times: list[float], every: float) -> float:
    """Seconds between sampled moments: ``every``, or more where the video has fewer frames
    (an ``every`` shorter than a frame samples every frame). The selection counts its seconds
    (persistence, peaks) in moments, so it must know how long one really is."""
    spacing = (times[-1] - times[0]) / (len(times) - 1) if len(times) > 1 else 0.0
    return max(every, spacing)


def region_features(grid: np.ndarray, regions: int = 3) -> np.ndarray:
    """Encoder grid (N, P, C), P = s*s positions row-major -> (N, regions**2, C) cell means."""
    grid = np.asarray(grid, dtype=np.float32)
    n, p, c = grid.shape
    side = int(round(math.sqrt(p)))
    if side * side != p:
        raise ValueError(f"a grid of {p} positions is not square")
    cells = grid.reshape(n, side, side, c)
    edges = np.linspace(0, side, regions + 1)
    spans = [(int(math.floor(edges[a])), int(math.ceil(edges[a + 1]))) for a in range(regions)]
    pooled = [cells[:, r0:r1, c0:c1].mean(axis=(1, 2)) for r0, r1 in spans for c0, c1 in spans]
    return np.stack(pooled, axis=1)  # (N, regions**2, C)


def _unit(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def _region_distance(x: np.ndarray, ref: np.ndarray, metric: str, top: int) -> np.ndarray:
    """x (M, R, C) vs ref (R, C) -> (M,) mean of the ``top`` largest region distances."""
    if metric == "cosine":
        d = 1.0 - np.einsum("mrc,rc->mr", _unit(x), _unit(ref))  # (M, R)
    else:
        d = np.linalg.norm(x - ref[None], axis=-1)  # (M, R)
    top = min(top, d.shape[1])
    return np.sort(d, axis=1)[:, -top:].mean(axis=1)  # (M,)


def _second_smallest(d: np.ndarray) -> float:
    """Second smallest value (smallest when fewer than 4): one outlier cannot decide."""
    d = np.sort(d)
    return float(d[1] if len(d) >= 4 else d[0])


BLOCK = 128  # moments whose distances are computed together, as matrix products
DIRECT_WINDOW = 64  # windows up to this many moments are averaged directly, not by running sums


class ChangeEvidence:
    """Change, persistence and unfamiliarity of every moment of one signal.

    ``x``: (N, D) or (N, R, D) embeddings; ``horizon``: moments ahead that must stay changed;
    ``memory = (gap, span)``: moment ``i`` is compared with moments ``i-span .. i-gap``.
    """

    def __init__(
        self,
        x: np.ndarray,
        window: int,
        metric: str,
        horizon: int,
        memory: tuple[int, int] = (3, 15),
        top_regions: int = 1,
        usable: np.ndarray | None = None,
        eligible: np.ndarray | None = None,
    ) -> None:
        x = np.asarray(x)
        # Kept as given when float32 (the pipeline's, exact in float64): each block of moments is
        # computed in float64 (``_rows``), so the distances are those of a float64 copy, which at
        # an hour of moments had taken 330 MB more.
        x = x if x.dtype == np.float32 else np.asarray(x, dtype=np.float64)
        self.x = x[:, None, :] if x.ndim == 2 else x  # (N, R, D), R = 1 for plain vectors
        self.window, self.metric, self.horizon, self.top = window, metric, horizon, top_regions
        self.gap, self.span = memory
        n = len(self.x)
        # Moments that may serve as a reference (not blurred, not flat) and moments that may be
        # novel (not blurred); all when not said.
        self.usable = np.ones(n, bool) if usable is None else np.asarray(usable, bool)
        self.eligible = np.ones(n, bool) if eligible is None else np.asarray(eligible, bool)
        # A window of at most DIRECT_WINDOW moments is averaged as it is asked for; a wider one
        # from a running sum of the usable moments, built in place: one (N, R, D) float64 array
        # beside x (an hour's 340 MB, most of what picking its novel moments took).
        self._csum = None
        if window > DIRECT_WINDOW:
            self._csum = np.zeros((n + 1, *self.x.shape[1:]))
            np.multiply(self.x, self.usable[:, None, None], out=self._csum[1:])
            np.cumsum(self._csum[1:], axis=0, out=self._csum[1:])
        self._count = np.concatenate([[0], np.cumsum(self.usable)])
        flat = self.eligible & ~self.usable  # no reference, yet no blur: fades, dark cards
        self._flat = np.concatenate([[0], np.cumsum(flat)])
        self._ahead: dict[tuple[int, int], tuple[float, float]] = {}
        self._norms = np.concatenate(  # (N, R)
            [np.linalg.norm(self._rows(a, a + BLOCK), axis=-1) for a in range(0, n, BLOCK)]
            or [np.zeros((0, self.x.shape[1]))]
        )
        # Distances come from matrix products over blocks of moments (BLOCK): each moment meets
        # every moment of its memory and of its persistence horizon, as many as 1,800 and 960 at
        # --every 0.0083, and one vector product at a time had taken 42 s of selection for 24 s
        # of 120 fps video (2,880 moments).
        self.past: list[np.ndarray] = [np.zeros(0)] * n  # d(x_i, x_j), j = i-span .. i-1
        for a in range(1, n, BLOCK):
            b = min(n, a + BLOCK)
            lo = max(0, a - self.span)
            d = self._distances(self._rows(a, b), self._norms[a:b], lo, b - 1)  # (b-a, b-1-lo)
            for i in range(a, b):
                first = max(0, i - self.span)
                row = d[i - a, first - lo : i - lo]
                self.past[i] = np.where(self.usable[first:i], row, np.inf)
        for a in range(1, n, BLOCK):  # change and persistence, with no novel moment yet
            b = min(n, a + BLOCK)
            before = np.stack([self.reference(i) for i in range(a, b)])  # (b-a, R, D)
            d = self._distances(before, None, a, min(n, b + self.horizon))
            for i in range(a, b):
                lo = max(0, i - self.window)
                self._ahead[(i, lo)] = self._change_and_persistence(i, d[i - a, i - a :])

    def _rows(self, start: int, stop: int) -> np.ndarray:
        """Moments ``start .. stop - 1`` (M, R, D) in float64."""
        return self.x[start:stop].astype(np.float64)

    def _distances(
        self, refs: np.ndarray, ref_norms: np.ndarray | None, start: int, stop: int
    ) -> np.ndarray:
        """(B, stop - start) distances of ``refs`` (B, R, D) to moments ``start .. stop - 1``:
        the mean of the ``top`` largest region distances, as ``_region_distance`` gives."""
        if ref_norms is None:
            ref_norms = np.linalg.norm(refs, axis=-1)  # (B, R)
        r_count = self.x.shape[1]
        if len(refs) == 1:  # one moment's reference (after a pick): one call, not one a region
            dots = np.einsum("rd,krd->rk", refs[0], self._rows(start, stop))[:, None, :]
        else:
            dots = np.empty((r_count, len(refs), stop - start))  # (R, B, K)
            for r in range(r_count):  # (one region of the block at a time, copied to float64)
                moments = self.x[start:stop, r, :].T.astype(np.float64)
                np.matmul(refs[:, r, :], moments, out=dots[r])
        ref_n = ref_norms.T[:, :, None]  # (R, B, 1)
        x_n = self._norms[start:stop].T[:, None, :]  # (R, 1, K)
        if self.metric == "cosine":
            d = 1.0 - dots / (np.where(ref_n > 0, ref_n, 1.0) * np.where(x_n > 0, x_n, 1.0))
        else:
            sizes = ref_n**2 + x_n**2
            squared = sizes - 2.0 * dots  # (R, B, K) |a - b|^2
            # Near-duplicates lose their digits to the subtraction (a repeated frame had come
            # out 1.9e-6 apart, not 0): those pairs are measured directly, a chunk at a time.
            near = np.nonzero(squared < 1e-6 * sizes)
            for first in range(0, len(near[0]), 4096):
                r, b, k = (index[first : first + 4096] for index in near)
                diff = refs[b, r, :] - self.x[start + k, r, :]  # (n, D) float64
                squared[r, b, k] = np.einsum("nd,nd->n", diff, diff)
            d = np.sqrt(np.maximum(squared, 0.0))
        top = min(self.top, r_count)
        return d.max(axis=0) if top == 1 else np.sort(d, axis=0)[-top:].mean(axis=0)

    def _change_and_persistence(self, i: int, ahead: np.ndarray) -> tuple[float, float]:
        """(change, persistence) of moment ``i`` from its reference's distances to moments
        ``i, i+1, ...`` (at least the horizon's, where the video has them)."""
        ahead = ahead[: 1 + self.horizon]
        later = ahead[1:][self.usable[i + 1 : i + 1 + self.horizon]]
        if len(later) == 0:
            later = ahead[1:]
        persistence = _second_smallest(later) if len(later) else float("inf")
        return float(ahead[0]), persistence

    def change_and_persistence(self, i: int, segment_start: int = 0) -> tuple[float, float]:
        """(change, persistence) of moment ``i`` against the mean of the previous ``window``
        moments, which does not reach back before ``segment_start``."""
        lo = max(0, i - self.window, segment_start if segment_start < i else 0)
        key = (i, lo)
        if key not in self._ahead:
            before = self.reference(i, segment_start)[None]  # (1, R, D)
            ahead = self._distances(before, None, i, min(len(self.x), i + 1 + self.horizon))
            self._ahead[key] = self._change_and_persistence(i, ahead[0])
        return self._ahead[key]

    def reference(self, i: int, segment_start: int = 0) -> np.ndarray:
        """(R, D) what moment ``i`` is compared with: the mean of the usable moments among the
        previous ``window``, not reaching back before ``segment_start`` (all of them when none
        is usable: flat ones)."""
        lo = max(0, i - self.window, segment_start if segment_start < i else 0)
        count = self._count[i] - self._count[lo]
        if count > 0 and self._csum is not None:
            return (self._csum[i] - self._csum[lo]) / count
        rows = self._rows(lo, i)
        return rows[self.usable[lo:i]].mean(axis=0) if count > 0 else rows.mean(axis=0)

    def nearer_the_new(self, j: int, new: int, old: int) -> bool:
        """Whether moment ``j`` looks more like moment ``new`` than like moment ``old``: a
        blurred frame of the shot ``new`` starts, not of the one before. By cosine, whatever
        the metric: which shot a frame shows is a matter of direction (blur shrinks the
        features' length, and Euclidean had put a blurred frame of the new shot nearer the
        old one)."""
        near_new, near_old = (_region_distance(self._rows(j, j + 1), self._rows(k, k + 1)[0], "cosine", self.top)[0]
                              for k in (new, old))  # fmt: skip
        return bool(near_new < near_old)

    @property
    def change(self) -> np.ndarray:
        """(N,) the original novelty of each moment on these embeddings (NaN for moment 0)."""
        return np.array(
            [np.nan] + [self.change_and_persistence(i)[0] for i in range(1, len(self.x))]
        )

    def strength(self, i: int, segment_start: int = 0) -> float:
        """min(change, persistence, unfamiliarity) of moment ``i``.

        ``segment_start`` is the last novel moment before ``i`` (0: none). The window mean and
        the memory do not reach back before it, and from it on the moments of its own segment
        are remembered without the gap, so the decay after a cut is not new again.
        """
        if i == 0:
            return float("nan")
        if not self.eligible[i]:  # a blurred moment is no evidence of anything new
            return float("-inf")
        lo = max(0, i - self.window, segment_start if segment_start < i else 0)
        if not self.usable[i] and self._flat[i] - self._flat[lo] == i - lo:
            # A flat moment (black, a fade) after nothing but flat ones: black after black is
            # nothing new, however the exposure normalisation stretched their faint remains.
            return float("-inf")
        value = min(self.change_and_persistence(i, segment_start))
        first = max(0, i - self.span)
        past = self.past[i]  # moments first .. i-1
        if segment_start > 0:
            past = past[max(0, segment_start - first) :]
        else:
            past = past[: max(0, len(past) - self.gap + 1)]  # moments first .. i-gap
        if len(past):
            value = min(value, _second_smallest(past))
        return float(value)


def blurred_moments(
    sharpness: np.ndarray, every: float = 1.0, config: SelectionConfig | None = None
) -> np.ndarray:
    """(N,) True for a moment much blurrier than the moments on *both* sides of it: its
    sharpness (``frames.sharpness``) is under ``blur_ratio`` times the upper quartile of each
    side's within ``blur_context_seconds`` (one side at the ends). A defocus or a whip pan is a
    dip that recovers; a cut to a smooth scene (sky, fog) stays smooth after, so it is no dip.
    Flat frames (NaN: fades, dark title cards) are neither blurred nor a reference. Moments
    sampled further apart than ``blur_context_seconds`` have no neighbours to compare with, and
    none is blurred: at ``--every 6`` an ordinary frame of a softer scene had been compared with
    the other shots around it, called blurred, and so could never be novel."""
    cfg = config or SelectionConfig()
    s = np.asarray(sharpness, dtype=np.float64)
    out = np.zeros(len(s), bool)
    if every > cfg.blur_context_seconds:
        return out
    k = max(1, round(cfg.blur_context_seconds / every))
    for i in np.flatnonzero(np.isfinite(s)):
        sides = [s[max(0, i - k) : i], s[i + 1 : i + 1 + k]]
        sides = [side[np.isfinite(side)] for side in sides]
        references = [float(np.quantile(side, 0.75)) for side in sides if len(side)]
        out[i] = bool(references) and s[i] < cfg.blur_ratio * min(references)
    return out


def _lerp(a: float, b: float, t: float) -> float:
    return a + (b - a) * t


def select_novel_moments(
    embeddings: dict[str, np.ndarray],
    window: int = 5,
    metric: str = "cosine",
    sensitivity: float = 0.5,
    every: float = 1.0,
    config: SelectionConfig | None = None,
    sharpness: np.ndarray | None = None,
) -> Selection:
    """Pick novel moments from per-signal embeddings in time order (``visual``: (N, R, C) regions
    or (N, C); ``text``: (N, D)); with both, they are combined as ``fused``. ``sharpness``
    (N,) marks blurred and flat moments (module docstring); without it every moment counts."""
    cfg = config or SelectionConfig()
    window = check_window(window)
    metric = canonical_metric(metric)
    if not 0.0 <= float(sensitivity) <= 1.0:
        raise InvalidParameter(
            f"sensitivity must be between 0 and 1, got {sensitivity}", "sensitivity"
        )
    if not embeddings or set(embeddings) - {"visual", "text"}:
        raise InvalidParameter(f"selection signals are visual and text, got {sorted(embeddings)}")
    n = len(next(iter(embeddings.values())))
    horizon = max(2, int(math.ceil(cfg.persistence_seconds / every)))
    radius = max(1, int(round(cfg.peak_seconds / every)))
    end_margin = max(1, int(round(cfg.end_seconds / every)))
    memory = (
        max(1, round(cfg.memory_seconds[0] / every)),
        max(2, round(cfg.memory_seconds[1] / every)),
    )
    if sharpness is None:
        blurred = flat = np.zeros(n, bool)
    elif len(sharpness) != n:
        raise ValueError(f"{len(sharpness)} sharpness values for {n} moments")
    else:
        blurred, flat = blurred_moments(sharpness, every, cfg), np.isnan(sharpness)
    weights = FUSED_WEIGHTS if len(embeddings) > 1 else {name: 1.0 for name in embeddings}
    evidence: dict[str, ChangeEvidence] = {}
    floors: dict[str, float] = {}
    for name, x in embeddings.items():
        floor = _lerp(cfg.floor_low[name], cfg.floor_high[name], float(sensitivity))
        if metric == "euclidean":  # the Euclidean distance that matches this cosine distance
            floor = _typical_norm(x) * math.sqrt(2.0 * floor)
        floors[name] = floor
        evidence[name] = ChangeEvidence(
            x, window, metric, horizon, memory, cfg.top_regions, ~(blurred | flat), ~blurred
        )
    total = sum(weights.get(name, 0.0) for name in embeddings) or 1.0

    def combined(i: int, segment_start: int) -> float:
        return (
            sum(
                weights[name] * in_floor_units(ev.strength(i, segment_start), floors[name], metric)
                for name, ev in evidence.items()
                if weights.get(name, 0.0)
            )
            / total
        )

    def pick(threshold: float) -> tuple[list[int], np.ndarray]:
        chosen: list[int] = []
        strength = np.full(n, np.nan)
        segment = 0
        for i in range(1, n):
            s_i = strength[i] = combined(i, segment)
            need = threshold * (1.5 if n - 1 - i < end_margin else 1.0)
            if s_i <= need or (chosen and i - chosen[-1] <= radius):
                continue
            window_ = range(max(1, i - radius), min(n, i + radius + 1))
            if s_i >= (1.0 - TIE) * max(combined(j, segment) for j in window_):  # earliest of a tie
                chosen.append(i)
                segment = i
        return chosen, strength

    def blur_start(i: int, previous: int | None) -> int:
        """Where a change picked at ``i`` began: a cut followed by a burst of blur (a whip pan,
        a refocus) had been put on the first sharp moment after it, seconds late, as blurred
        moments are never picked on their own strength. The blurred moments just before ``i``
        that look more like it than like the last moment before the blur (by the signal that
        weighs most) are the change's start; never within ``radius`` of the pick before."""
        ev = evidence[max(evidence, key=lambda signal: weights.get(signal, 0.0))]
        first = i  # the run of blurred moments just before i (a pick is never blurred)
        while first > 0 and blurred[first - 1]:
            first -= 1
        old = first - 1  # the old shot's last look before the blur
        if old < 0 or not ev.usable[old]:  # (a fade or a card: no look to compare with)
            return i
        start, lowest = i, first if previous is None else max(first, previous + radius + 1)
        while start - 1 >= lowest and ev.nearer_the_new(start - 1, i, old):
            start -= 1
        return start

    # First at the floor; then, if the video is restless (its typical moment already moves a
    # good fraction of the floor), again with the threshold raised to k x its lower quartile.
    chosen, strength = pick(1.0)
    at_floor = chosen
    k = _lerp(cfg.quiet_k_low, cfg.quiet_k_high, float(sensitivity))
    finite = strength[np.isfinite(strength)]
    # From 8 strengths the lower quartile tells; below, a short run counts as restless only when
    # every moment cleared the floor (all moved), as a quartile of 4-7 values tells too little.
    restless = len(finite) >= 8 or (len(finite) >= MIN_RESTLESS and float(finite.min()) > 1.0)
    threshold = max(1.0, k * float(np.quantile(finite, 0.25))) if restless else 1.0
    if threshold > 1.0:
        chosen, strength = pick(threshold)
    per_signal = {
        name: np.array([ev.strength(i, 0) for i in range(n)]) for name, ev in evidence.items()
    }
    # Changes the raised bar left out: picks at the floor with no pick now within the radius.
    left_out = [j for j in at_floor if all(abs(j - k) > radius for k in chosen)]
    moved: dict[int, int] = {}  # pick -> the start of the blur it followed
    previous = None
    for picked in chosen:
        previous = moved[picked] = blur_start(picked, previous)
        strength[previous] = strength[picked]  # the change's strength, measured where it showed
    return Selection(
        [moved[i] for i in chosen],
        strength,
        threshold,
        per_signal,
        floors,
        [int(i) for i in np.flatnonzero(blurred)],
        [int(i) for i in np.flatnonzero(flat)],
        max(1, n - end_margin),
        {start: picked for picked, start in moved.items() if start != picked},
        left_out,
    )


def in_floor_units(distance, floor: float, metric: str):
    """A strength (a distance) in units of its signal's floor, on the cosine scale the floors
    and thresholds were set on (module docstring, step 4). The sign is kept: a blurred moment's
    -inf stays -inf (squared it was +inf, and every blurred moment was novel)."""
    ratio = distance / floor
    return ratio * abs(ratio) if metric == "euclidean" else ratio


def _typical_norm(x: np.ndarray) -> float:
    norms = np.linalg.norm(np.asarray(x, dtype=np.float64), axis=-1)
    med = float(np.median(norms)) if norms.size else 1.0
    return med if med > 0 else 1.0


def per_median(scores: np.ndarray) -> np.ndarray:
    """Novelty scores in units of their median over the video (a median of at least 0.05, so
    a still video is not blown up): 1 = a typical moment."""
    finite = scores[np.isfinite(scores)]
    return scores / max(float(np.median(finite)) if finite.size else 0.0, 0.05)


def fused_novelty(visual: np.ndarray, text: np.ndarray) -> np.ndarray:
    """The ``fused`` novelty reported per moment: the mean of the visual and the text novelty,
    each ``per_median``."""
    return np.mean([per_median(visual), per_median(text)], axis=0)
