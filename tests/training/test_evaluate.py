"""evaluate_captioner end to end on a tiny generated dataset (the `labels` captioner, no Java)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from capsight.captioning.base import DecodingOptions
from capsight.errors import DatasetError, InvalidParameter
from capsight.training.evaluate import evaluate_captioner

pytest.importorskip("pycocoevalcap")


@pytest.fixture()
def tiny_dataset(tmp_path):
    rng = np.random.default_rng(0)
    names = [f"{i}.jpg" for i in range(5)]
    (tmp_path / "images").mkdir()
    for name in names[:4]:
        pixels = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / "images" / name)
    (tmp_path / "images" / names[4]).write_bytes(b"not a jpeg at all")
    captions = {name: [f"a photo of thing {i}", "some noise"] for i, name in enumerate(names)}
    (tmp_path / "captions.json").write_text(json.dumps(captions))
    (tmp_path / "splits.json").write_text(json.dumps({"train": names[:1], "test": names[1:]}))
    return tmp_path


@pytest.mark.slow  # loads the encoder weights
def test_evaluate_captioner_scores_a_split_and_reports_unreadable_photos(tiny_dataset):
    with pytest.warns(RuntimeWarning, match="1 of 4 photos could not be read"):
        report = evaluate_captioner(
            "labels",
            tiny_dataset / "images",
            tiny_dataset / "captions.json",
            split="test",
            decoding=DecodingOptions(method="greedy"),
            use_java=False,
            batch_size=2,
        )
    assert report["captioner"] == "labels" and report["split"] == "test"
    assert report["images"] == 3 and sorted(report["captions"]) == ["1.jpg", "2.jpg", "3.jpg"]
    assert all(text.startswith("a photo of") for text in report["captions"].values())
    assert "4.jpg" in report["unreadable"][0]
    assert report["decoding"] is None  # labels writes no sentence word by word, whatever is asked
    # the arithmetic the captions came from: a float32 run's scores differ a little
    from capsight.precision import uses_bf16

    assert report["precision"] == ("bfloat16" if uses_bf16("cpu") else "float32")
    assert "Python" in report["fallback"] and "METEOR" not in report
    # Every caption starts with "a photo of", as every first reference does.
    assert report["BLEU-1"] > 0.3 and 0 <= report["CIDEr"] < 10
    assert report["notes"] == []
    # Every photo, the train split's too: said, since a model trained on it has seen those.
    with pytest.warns(RuntimeWarning):
        report = evaluate_captioner("labels", tiny_dataset / "images", tiny_dataset / "captions.json",
                                    use_java=False)  # fmt: skip
    assert report["images"] == 4 and report["notes"] == [
        "no split asked for: the photos scored include the 1 of its train split; --split test scores only "
        "photos a model trained on it has not seen"
    ]
    with pytest.warns(RuntimeWarning):  # --split all: the same (it had been told to overlap train)
        every = evaluate_captioner("labels", tiny_dataset / "images", tiny_dataset / "captions.json",
                                   split="all", use_java=False)  # fmt: skip
    assert every["notes"] == [
        n.replace("no split asked for", "--split all") for n in report["notes"]
    ]
    assert every["images"] == 4 and every["split"] == "all"
    # A corpus of one train split (as a Conceptual Captions file is): no other split to point to.
    from capsight.training.datasets import CaptionCorpus
    from capsight.training.evaluate import _all_photos_note

    only = CaptionCorpus("cc", {}, {"train": ["1.jpg", "2.jpg"]})
    assert _all_photos_note(only, None, {"2.jpg"}) == [  # one scored: one said
        "no split asked for: all 1 photos scored are in its train split (it has no other): a model trained "
        "on it has seen them, so the scores say little of new photos"
    ]
    assert _all_photos_note(only, None) == [
        "no split asked for: all 2 photos scored are in its train split (it has no other): a model trained "
        "on it has seen them, so the scores say little of new photos"
    ]
    # No train split (a COCO captions_val file): capsight train trains on all but "test", so
    # a val split scored had been called new photos in silence.
    val_only = CaptionCorpus("coco", {"1.jpg": 0, "2.jpg": 0}, {"val": ["1.jpg", "2.jpg"]})
    seen = ("it has no train split, so capsight train trains on its photos outside a test split "
            "(but the tenth it validates on), 2 of those scored among them: a model trained on it "
            "has seen most of them, so the scores say little of new photos")  # fmt: skip
    assert _all_photos_note(val_only, "val", {"1.jpg", "2.jpg"}) == [f"--split val: {seen}"]
    assert _all_photos_note(val_only, None) == [f"no split asked for: {seen}"]
    with_test = CaptionCorpus("coco", {}, {"val": ["1.jpg"], "test": ["2.jpg"]})
    assert _all_photos_note(with_test, "test", {"2.jpg"}) == []  # held out by train: unseen
    # Without splits.json the reader draws a split, as capsight train does: said so (not
    # "its train split", which the dataset does not have; nor nothing: train trains on it).
    (tiny_dataset / "splits.json").unlink()
    with pytest.warns(RuntimeWarning):
        report = evaluate_captioner("labels", tiny_dataset / "images", tiny_dataset / "captions.json",
                                    use_java=False)  # fmt: skip
    assert report["images"] == 4 and len(report["notes"]) == 1
    assert re.fullmatch(r"no split asked for: the photos scored include the \d that capsight train trains on \(the split "
                        r"it draws by a hash of each name for a dataset without one, as here\), which matters only "
                        r"for a model trained on this data; --split test scores "
                        r"only the others", report["notes"][0])  # fmt: skip


@pytest.mark.slow  # loads the encoder weights
def test_a_split_shared_with_train_and_a_single_photo_are_said(tiny_dataset):
    """A photo in both the train and the test split (capsight train refuses that) was scored
    in silence; one photo's CIDEr of 0 was printed as a score like any other."""
    names = [f"{i}.jpg" for i in range(4)]
    (tiny_dataset / "splits.json").write_text(json.dumps({"train": names[:2], "test": names[1:]}))
    report = evaluate_captioner("labels", tiny_dataset / "images", tiny_dataset / "captions.json",
                                split="test", use_java=False)  # fmt: skip
    assert report["notes"][-1] == (
        "1 photo scored is in the train split too (first: 1.jpg): a model trained on it has seen "
        "them (capsight train refuses such a dataset)"
    )
    report = evaluate_captioner("labels", tiny_dataset / "images", tiny_dataset / "captions.json",
                                split="test", use_java=False, limit=1)  # fmt: skip
    assert report["images"] == 1 and report["CIDEr"] == 0
    assert report["notes"][-1].startswith("CIDEr is 0 for a single photo")


def test_evaluate_captioner_rejects_bad_requests(tiny_dataset):
    with pytest.raises(InvalidParameter, match="no 'val' split"):
        evaluate_captioner("labels", None, tiny_dataset, split="val")
    with pytest.raises(InvalidParameter, match="batch size"):
        evaluate_captioner("labels", None, tiny_dataset, batch_size=0)
    # Each was a TypeError or AttributeError partway, or ("no") read as true.
    for options, fragment in (({"batch_size": None}, "batch size must be a whole number"),
                              ({"batch_size": 1.5}, "batch size must be a whole number"),
                              ({"limit": "3"}, "limit must be a whole number"),
                              ({"decoding": {"method": "beam"}}, "decoding must be a DecodingOptions"),
                              ({"progress": 3}, "progress must be a function"),
                              ({"bootstrap": "5"}, "bootstrap must be a whole number"),
                              ({"use_java": "no"}, "use_java must be True, False or None"),
                              ({"split": ""}, "split must be a split's name")):  # fmt: skip
        with pytest.raises(InvalidParameter, match=fragment):
            evaluate_captioner("labels", None, tiny_dataset, **options)
    with pytest.raises(DatasetError, match="could be read"):
        evaluate_captioner("labels", tiny_dataset / "missing", tiny_dataset, use_java=False)


@pytest.mark.slow
def test_the_eval_command_reports_photos_left_out_in_one_line(tiny_dataset, capsys, monkeypatch):
    from capsight._cli.main import main

    monkeypatch.setenv("PATH", "/nonexistent")  # no Java: the quick Python fallback
    assert (
        main(["eval", str(tiny_dataset), "--split", "test", "--model", "labels", "--greedy"]) == 0
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == ("capsight: note: the labels model ignores --greedy: it names the encoder's "
                      "top ImageNet classes")  # fmt: skip
    assert len(err) == 3 and err[1].startswith(
        "capsight: note: 1 photo could not be read and was left out"
    )
    # 8 COCO photos had scored CIDEr 0.661 (0.398 on all 80) with nothing said (an audit,
    # 2026-12-08); --json says how intervals were drawn
    assert err[2] == ("capsight: note: only 3 photos scored: scores over so few vary widely from "
                      "one set of photos to the next (--bootstrap 1000 says how widely); compare "
                      "captioners on the same photos with --against")  # fmt: skip
    assert main(["eval", str(tiny_dataset), "--split", "test", "--model", "labels",
                 "--bootstrap", "100", "--json"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["bootstrap"] == {"draws": 100, "level": 0.95} and "intervals" in result


@pytest.mark.slow  # loads the encoder weights
def test_two_captioners_are_compared_on_the_same_photos(tiny_dataset, capsys, monkeypatch):
    from capsight._cli.main import main
    from capsight.training.evaluate import compare_captioners

    with pytest.warns(RuntimeWarning, match="could not be read"):
        result = compare_captioners("labels", "labels", None, tiny_dataset, split="test",
                                    rounds=100, use_java=False)  # fmt: skip
    assert result["baseline"]["images"] == result["challenger"]["images"] == result["photos"] == 3
    cider = result["comparison"]["CIDEr"]
    assert cider["difference"] == 0 and cider["better"] == 0  # the same captions, no winner
    assert cider["baseline"] == pytest.approx(result["baseline"]["CIDEr"])

    monkeypatch.setenv("PATH", "/nonexistent")  # no Java: the quick Python fallback
    # The CLI refuses a captioner against itself; its ties are what these lines read.
    monkeypatch.setattr("capsight._cli.eval._same_captioner", lambda a, b: False)
    assert main(["eval", str(tiny_dataset), "--split", "test", "--model", "labels",
                 "--against", "labels", "--bootstrap", "100"]) == 0  # fmt: skip
    out, err = capsys.readouterr()
    # each with its decoding (--greedy had been said only in --json)
    assert "--model labels (no decoding) against --against labels (no decoding): 3 photos" in out
    assert "model wins" in out and "CIDEr" in out and "100%" in out  # all ties
    assert out.rstrip().endswith("scored with pycocoevalcap, Python tokenizer")
    assert err.count("\n") == 3 and "could not be read" in err and "Python" in err
    assert err.count("only 3 photos scored") == 1 and "the intervals say how widely" in err
    # --bootstrap 0: the scores and their difference, no draws (as plain eval gives no intervals).
    assert main(["eval", str(tiny_dataset), "--split", "test", "--model", "labels",
                 "--against", "labels", "--bootstrap", "0"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "3 photos, split test, no paired draws" in out and "model wins" not in out
    assert re.search(r"CIDEr +[\d.]+ +[\d.]+ +\+0\.0000\n", out)


@pytest.mark.slow
def test_a_comparison_with_java_shows_meteor_without_an_interval(tiny_dataset, capsys, monkeypatch):
    """METEOR was scored for each side and left out of the comparison, under a footer that
    named it."""
    from capsight._cli.main import main
    from capsight.training.ptb_tokenizer import java_available

    monkeypatch.setattr("capsight._cli.eval._same_captioner", lambda a, b: False)  # (ties)

    java_available.cache_clear()  # (a test before may have hidden Java, and the answer is kept)
    if not java_available():
        pytest.skip("needs Java for METEOR")
    assert main(["eval", str(tiny_dataset), "--split", "test", "--model", "labels",
                 "--against", "labels", "--bootstrap", "100"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert re.search(r"\n  METEOR +[\d.]+ +[\d.]+ +\+0\.0000  +\(no interval\)\n", out)
    assert "METEOR" in out.rstrip().splitlines()[-1]  # the footer


def test_a_comparison_prints_no_negative_zero(tiny_dataset, capsys, monkeypatch):
    import capsight.training.evaluate as evaluate
    from capsight._cli.main import main
    from capsight.training.confidence import INTERVAL_METRICS

    row = {"baseline": 0.5, "challenger": 0.49999, "difference": -0.00001,
           "interval": (-0.00002, 0.00003), "better": 0.4, "ties": 0.1}  # fmt: skip
    side = {"captioner": "labels", "notes": [], "unreadable": [], "scorer": "pycocoevalcap"}
    monkeypatch.setattr("capsight._cli.eval._same_captioner", lambda a, b: False)
    monkeypatch.setattr(
        evaluate,
        "compare_captioners",
        lambda *a, **k: {
            "baseline": side,
            "challenger": side,
            "photos": 3,
            "comparison": dict.fromkeys(INTERVAL_METRICS, row),
        },
    )
    assert main(["eval", str(tiny_dataset), "--model", "labels", "--against", "labels"]) == 0
    out, err = capsys.readouterr()
    assert "-0.0000" not in out and "   +0.0000  +0.0000 .. +0.0000" in out
    assert "METEOR" not in err  # none scored here
    side["METEOR"] = 0.2  # scored on each side's photos, which differ: left out, and said so
    assert main(["eval", str(tiny_dataset), "--model", "labels", "--against", "labels"]) == 0
    assert (
        "note: METEOR is not compared: it is scored on each captioner's photos"
        in capsys.readouterr().err
    )


def test_a_comparison_refuses_bad_requests_before_captioning(tiny_dataset):
    from capsight.errors import CapsightError
    from capsight.training.evaluate import compare_captioners

    with pytest.raises(CapsightError, match="unknown captioner"):
        compare_captioners("labels", "no-such-model", None, tiny_dataset)
    with pytest.raises(InvalidParameter, match="at least 100 rounds"):
        compare_captioners("labels", "labels", None, tiny_dataset, rounds=10)
