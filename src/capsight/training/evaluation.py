"""Caption quality: BLEU-1..4, METEOR, ROUGE-L and CIDEr, computed by pycocoevalcap.

    >>> refs = {"a.jpg": ["A dog runs on the grass .", "A brown dog running outside ."],
    ...         "b.jpg": ["A man rides a bike .", "A cyclist on a road ."]}
    >>> score_captions(refs, {"a.jpg": "a dog runs on the grass", "b.jpg": "a man on a bike"})
    {'BLEU-1': 0.9..., ..., 'METEOR': ..., 'ROUGE-L': ..., 'CIDEr': ..., 'images': 2.0}
    >>> score_captions(refs, {"a.jpg": "a dog", "b.jpg": "a bike"}, fast=True)  # CIDEr, no Java
    {'CIDEr': ..., 'images': 2.0, 'fallback': 'Java disabled by the caller; ...'}

With Java (the default when ``java`` works) captions go through pycocoevalcap's Stanford PTB
tokenizer and METEOR 1.5, so the numbers are the field's reference numbers. Without Java, or
with ``use_java=False``, captions are tokenized in Python (it matches the PTB tokenizer on
99.99% of Flickr8k and COCO captions) and METEOR is not computed; the result then carries a
``"fallback"`` entry saying so, and a ``RuntimeWarning`` is issued unless the caller asked for it.

Scores are fractions (BLEU-4 0.25, not 25.0); CIDEr is on its usual 0-10 scale. CIDEr weighs
n-grams by how rare they are among the scored images' references, so it needs a set of images:
a single image always scores CIDEr 0. Per-caption CIDEr-D rewards for self-critical training
come from :func:`cider_scorer` (re-exported from ``capsight.training.cider``; it equals
pycocoevalcap's CIDEr when its document frequencies come from the scored set).
"""

from __future__ import annotations

import atexit
import threading
import warnings
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache

from capsight.errors import CapsightError, InvalidParameter, MissingDependency
from capsight.training.cider import CiderD, cider_scorer
from capsight.training.ptb_tokenizer import java_available, ptb_tokenize, python_tokenize

__all__ = ["METRICS", "CiderD", "cider_scorer", "score_captions", "tokenized", "validation_cider"]

METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")
FAST_METRICS = ("CIDEr",)


def _scorers():
    try:
        from pycocoevalcap.bleu.bleu import Bleu
        from pycocoevalcap.cider.cider import Cider
        from pycocoevalcap.rouge.rouge import Rouge
    except ImportError:
        raise MissingDependency(
            "caption scoring needs pycocoevalcap: pip install 'capsight[train]'"
        ) from None
    return Bleu, Rouge, Cider


def check_scorers() -> None:
    """Raise MissingDependency now when pycocoevalcap is missing: ``capsight train`` scores
    each epoch with it, and found out after its first epoch (minutes of CPU) that it could not."""
    _scorers()


_meteor_lock = threading.Lock()


@lru_cache(maxsize=1)
def _meteor():
    # One METEOR JVM per process: it takes seconds to load its paraphrase table.
    from pycocoevalcap.meteor.meteor import Meteor

    meteor = Meteor()
    atexit.register(_stop_meteor, meteor)
    return meteor


def _stop_meteor(meteor) -> None:
    # Meteor.__del__ kills the JVM but leaves its output pipes open; close all of it at exit.
    process = meteor.meteor_p
    for stream in (process.stdin, process.stdout, process.stderr):
        stream.close()
    process.kill()
    process.wait()


def _discard_meteor(meteor) -> None:
    """A JVM left mid-computation (Ctrl-C, a dead pipe): killed, and its lock freed. Meteor's
    ``__del__`` waits on that lock, which ``compute_score`` leaves held when it is interrupted,
    so ``capsight eval`` stopped during METEOR printed "interrupted" and then never exited."""
    meteor.lock = threading.Lock()  # first: a second Ctrl-C while the JVM stops leaves it free
    _meteor.cache_clear()
    try:
        _stop_meteor(meteor)
    except OSError:
        pass


def _meteor_once(gts: dict[str, list[str]], res: dict[str, list[str]]) -> float:
    meteor = _meteor()
    try:
        return float(meteor.compute_score(gts, res)[0])
    except BaseException:
        _discard_meteor(meteor)
        raise


def _meteor_score(gts: dict[str, list[str]], res: dict[str, list[str]]) -> float:
    with _meteor_lock:
        try:
            return _meteor_once(gts, res)
        except (OSError, ValueError):  # the JVM died (out of memory, killed): a fresh one, once
            return _meteor_once(gts, res)


def _tokenize_all(
    references: Mapping[str, Sequence[str]],
    candidates: Mapping[str, str],
    keys: list[str],
    java: bool,
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    sentences = [candidates[k] for k in keys] + [r for k in keys for r in references[k]]
    tokens = ptb_tokenize(sentences) if java else [python_tokenize(s) for s in sentences]
    res = {k: [tokens[i]] for i, k in enumerate(keys)}
    gts, i = {}, len(keys)
    for k in keys:
        gts[k] = tokens[i : i + len(references[k])]
        i += len(references[k])
    return gts, res


def check_inputs(
    references: Mapping[str, Sequence[str]], candidates: Mapping[str, str]
) -> list[str]:
    """The candidates' photo ids, once each is known to have references and a string caption."""
    if not candidates:
        raise InvalidParameter("no captions to score; pass at least one image id -> caption")
    keys = list(candidates)
    missing = [k for k in keys if not references.get(k)]
    if missing:
        raise InvalidParameter(
            f"{len(missing)} captioned image(s) have no reference captions (first: {missing[0]!r}); "
            "score only images of the reference set"
        )
    bad = [k for k in keys if not isinstance(candidates[k], str)]
    if bad:
        raise InvalidParameter(
            f"caption for {bad[0]!r} is not a string; pass one caption per image"
        )
    return keys


def tokenized(
    references: Mapping, candidates: Mapping, use_java: bool | None = None
) -> tuple[dict, dict, bool, list[str]]:
    """References and candidates tokenized as for scoring: ``(gts, res, java, notes)``.

    ``use_java`` as in :func:`score_captions`; ``java`` says whether the PTB tokenizer ran and
    ``notes`` why not when it did not.
    """
    keys = list(candidates)
    notes: list[str] = []
    if use_java is None:
        java = java_available()
        if not java:
            notes.append("no working Java runtime")
    elif use_java:
        if not java_available():
            raise MissingDependency(
                "use_java=True but no working `java` on PATH; install a JRE (apt install "
                "default-jre) or pass use_java=False"
            )
        java = True
    else:
        java = False
        notes.append("Java disabled by the caller")

    try:
        gts, res = _tokenize_all(references, candidates, keys, java)
    except CapsightError as error:
        if use_java:
            raise
        java = False
        notes.append(f"Java tokenizer failed ({error})")
        gts, res = _tokenize_all(references, candidates, keys, java)

    return gts, res, java, notes


def score_captions(
    references: dict[str, list[str]],
    candidates: dict[str, str],
    use_java: bool | None = None,
    *,
    metrics: Iterable[str] | None = None,
    fast: bool = False,
    bootstrap: int = 0,
) -> dict[str, float | str | dict]:
    """Score one candidate caption per image against that image's reference captions.

    ``use_java``: None uses Java when it works and falls back otherwise; True requires it;
    False never starts it. ``metrics`` picks a subset of :data:`METRICS`; ``fast=True`` means
    CIDEr only with the Python tokenizer (for validation during training). The result maps
    each metric to its corpus score, ``"images"`` to the number scored and, when the numbers
    are not pycocoevalcap's reference pipeline, ``"fallback"`` to a sentence saying why.
    ``bootstrap=R`` adds ``"intervals"``: metric -> (low, high), the 95% interval over R
    draws of the photos (``capsight.training.confidence``; every metric but METEOR).
    """
    keys = check_inputs(references, candidates)
    wanted = list(FAST_METRICS if fast and metrics is None else (metrics or METRICS))
    unknown = [m for m in wanted if m not in METRICS]
    if unknown:
        raise InvalidParameter(f"unknown metric {unknown[0]!r}; choose from {', '.join(METRICS)}")
    if fast:
        use_java = False
    if bootstrap:
        from capsight.training.confidence import check_rounds

        check_rounds(bootstrap)

    gts, res, java, notes = tokenized(references, candidates, use_java)

    Bleu, Rouge, Cider = _scorers()
    scores: dict[str, float | str | dict] = {}
    if any(m.startswith("BLEU") for m in wanted):
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        for n in range(4):
            if f"BLEU-{n + 1}" in wanted:
                scores[f"BLEU-{n + 1}"] = float(bleu[n])
    if "METEOR" in wanted:
        if java:
            try:
                scores["METEOR"] = _meteor_score(gts, res)
            except (OSError, ValueError) as error:
                if use_java:
                    raise CapsightError(
                        f"METEOR failed twice ({error}); retry without it"
                    ) from None
                notes.append(f"METEOR failed ({error})")
    if "ROUGE-L" in wanted:
        scores["ROUGE-L"] = float(Rouge().compute_score(gts, res)[0])
    if "CIDEr" in wanted:
        scores["CIDEr"] = float(Cider().compute_score(gts, res)[0])
    scores["images"] = float(len(keys))
    if bootstrap:
        from capsight.training.confidence import bootstrap_intervals, photo_stats

        intervals = bootstrap_intervals(photo_stats(gts, res), bootstrap)
        scores["intervals"] = {m: intervals[m] for m in wanted if m in intervals}

    if not java:
        skipped = " and METEOR was not computed" if "METEOR" in wanted else ""
        notes.append(
            "captions were tokenized in Python (an approximation of the PTB tokenizer)" + skipped
        )
    elif "METEOR" in wanted and "METEOR" not in scores:
        notes.append("METEOR was not computed")
    scores["scorer"] = ("pycocoevalcap, Java PTB tokenizer" + (" and METEOR 1.5" if "METEOR" in scores else "")
                        if java else "pycocoevalcap, Python tokenizer")  # fmt: skip
    if notes:
        scores["fallback"] = "; ".join(notes)
        if use_java is None:
            warnings.warn(f"caption scores use a fallback: {scores['fallback']}", RuntimeWarning,
                          stacklevel=2)  # fmt: skip
    return scores


def validation_cider(references: dict[str, list[str]], candidates: dict[str, str]) -> float:
    """CIDEr of ``candidates`` with the fast path (Python tokenizer, no Java): for early stopping."""
    return float(score_captions(references, candidates, fast=True)["CIDEr"])
