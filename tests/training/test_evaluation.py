"""Caption scoring with pycocoevalcap: right answers score high, wrong ones low, fallbacks say so."""

from __future__ import annotations

import warnings

import pytest

from capsight.errors import InvalidParameter, MissingDependency
from capsight.training import evaluation
from capsight.training.evaluation import cider_scorer, score_captions
from capsight.training.ptb_tokenizer import java_available, ptb_tokenize, python_tokenize

pytest.importorskip("pycocoevalcap")

REFERENCES = {
    "dog.jpg": [
        "A brown dog runs through the green grass .",
        "A dog is running on a lawn .",
        "The brown dog is running outside .",
    ],
    "bike.jpg": [
        "A man rides a red bicycle down the street .",
        "A person on a bike in the city .",
        "A cyclist riding along a road .",
    ],
    "beach.jpg": [
        "Two children play in the sand at the beach .",
        "Kids building a sandcastle by the ocean .",
        "Two young girls playing on the beach .",
    ],
}
IDENTICAL = {key: refs[0] for key, refs in REFERENCES.items()}
GARBAGE = {key: "purple elephant violin quantum spoon" for key in REFERENCES}
needs_java = pytest.mark.skipif(not java_available(), reason="no Java runtime")


def test_identical_captions_score_near_perfect_and_garbage_near_zero():
    good = score_captions(REFERENCES, IDENTICAL, use_java=False)
    bad = score_captions(REFERENCES, GARBAGE, use_java=False)
    assert good["BLEU-4"] > 0.99 and good["BLEU-1"] > 0.99
    assert good["ROUGE-L"] > 0.99
    assert good["CIDEr"] > 2.0
    assert bad["BLEU-4"] < 0.01 and bad["CIDEr"] < 0.05 and bad["ROUGE-L"] < 0.05
    assert good["images"] == 3


def test_java_disabled_is_reported_in_the_result_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = score_captions(REFERENCES, IDENTICAL, use_java=False)
    assert "METEOR" not in scores
    assert "Python" in scores["fallback"] and "METEOR" in scores["fallback"]


def test_missing_java_falls_back_with_a_warning(monkeypatch):
    monkeypatch.setattr(evaluation, "java_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="fallback"):
        scores = score_captions(REFERENCES, IDENTICAL)
    assert "no working Java" in scores["fallback"]
    assert "METEOR" not in scores and scores["BLEU-4"] > 0.99
    with pytest.raises(MissingDependency, match="use_java=False"):
        score_captions(REFERENCES, IDENTICAL, use_java=True)


def test_fast_path_scores_only_cider():
    scores = score_captions(REFERENCES, IDENTICAL, fast=True)
    assert set(scores) == {"CIDEr", "images", "fallback", "scorer"}
    assert scores["scorer"] == "pycocoevalcap, Python tokenizer"  # the fallback says why
    assert scores["CIDEr"] == pytest.approx(score_captions(REFERENCES, IDENTICAL, False)["CIDEr"])


def test_bad_inputs_are_user_errors():
    with pytest.raises(InvalidParameter, match="no reference captions"):
        score_captions(REFERENCES, {"cat.jpg": "a cat"}, use_java=False)
    with pytest.raises(InvalidParameter, match="unknown metric"):
        score_captions(REFERENCES, IDENTICAL, use_java=False, metrics=["SPICE"])
    with pytest.raises(InvalidParameter, match="no captions"):
        score_captions(REFERENCES, {}, use_java=False)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [  # expected values are the Stanford PTB tokenizer's output (pycocoevalcap's jar)
        ("A dog's toy, isn't it?", "a dog 's toy is n't it"),
        ("A man ( in red ) rides -- fast...", "a man -lrb- in red -rrb- rides fast"),
        ('He said:"hi" to Mr. Smith at 5:30.', "he said hi to mr. smith at 5:30"),
        ("We cannot see the black-and-white dog..", "we can not see the black-and-white dog"),
        ("The water 's edge .", "the water 's edge"),
        ("a <unk> dog at 100% @home", "a <unk> dog at 100 % @home"),
    ],
)
def test_python_tokenizer_matches_ptb_on_common_cases(text, tokens):
    assert python_tokenize(text) == tokens


@needs_java
def test_java_tokenizer_keeps_one_line_per_caption():
    out = ptb_tokenize(["A dog's toy.", "", "two\nlines here", "Last one!"])
    assert out == ["a dog 's toy", "", "two lines here", "last one"]


def test_cider_scorer_equals_pycocoevalcap_on_the_scored_set():
    from pycocoevalcap.cider.cider import Cider

    refs = {k: [python_tokenize(r) for r in v] for k, v in REFERENCES.items()}
    cands = {
        "dog.jpg": "a dog runs on the grass",
        "bike.jpg": "a man on a bike",
        "beach.jpg": "kids",
    }
    cands = {k: python_tokenize(v) for k, v in cands.items()}
    keys = list(refs)
    expected, per_image = Cider().compute_score(refs, {k: [cands[k]] for k in keys})
    scorer = cider_scorer([refs[k] for k in keys])
    got = scorer.scores([cands[k] for k in keys], [refs[k] for k in keys])
    assert got == pytest.approx(list(per_image), abs=1e-9)
    assert sum(got) / len(got) == pytest.approx(expected, abs=1e-9)


@needs_java
@pytest.mark.slow  # starts the PTB tokenizer and METEOR JVMs
def test_reference_pipeline_with_java_reports_meteor_and_no_fallback():
    good = score_captions(REFERENCES, IDENTICAL, use_java=True)
    bad = score_captions(REFERENCES, GARBAGE, use_java=True)
    assert (
        "fallback" not in good
        and good["scorer"] == "pycocoevalcap, Java PTB tokenizer and METEOR 1.5"
    )
    assert good["METEOR"] > 0.9 and bad["METEOR"] < 0.1
    assert good["BLEU-4"] > 0.99 and bad["BLEU-4"] < 0.01


def test_an_interrupted_meteor_leaves_no_lock_held_for_exit(monkeypatch):
    """Ctrl-C inside Meteor.compute_score left its lock held; Meteor.__del__ waits on it, so
    `capsight eval` printed "interrupted" and then hung at exit for good."""
    import subprocess
    import sys
    import threading

    class Meteor:  # pycocoevalcap's, as far as the lock and the JVM go
        def __init__(self):
            self.meteor_p = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
            self.lock = threading.Lock()

        def compute_score(self, gts, res):
            self.lock.acquire()
            raise KeyboardInterrupt

    made = []
    monkeypatch.setattr(evaluation, "_meteor", lambda: made.append(Meteor()) or made[-1])
    monkeypatch.setattr(evaluation._meteor, "cache_clear", lambda: None, raising=False)
    with pytest.raises(KeyboardInterrupt):
        evaluation._meteor_score({"a": ["a dog"]}, {"a": ["a dog"]})
    (meteor,) = made
    assert meteor.lock.acquire(timeout=1)  # what __del__ does at exit
    assert meteor.meteor_p.poll() is not None  # and its JVM is gone
