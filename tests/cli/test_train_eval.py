"""`capsight train` and `capsight eval`: thin fronts over capsight.training; bad input is one line."""

from __future__ import annotations

import json

import pytest


def test_train_help_comes_from_the_training_module(run_cli):
    status, out, _ = run_cli("train", "--help")
    assert status == 0
    assert "--architecture" in out and "--scst-epochs" in out


def test_train_on_a_missing_dataset_is_one_line(run_cli, tmp_path):
    status, _, err = run_cli(
        "train", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"), "--no-track"
    )
    assert status == 2
    assert "Traceback" not in err and "no such caption file or dataset folder" in err


def test_eval_on_a_missing_folder_is_one_line(run_cli, tmp_path):
    status, _, err = run_cli("eval", str(tmp_path / "nowhere"))
    assert status == 2
    assert "Traceback" not in err and "nowhere" in err


def test_eval_on_a_file_that_is_no_captions_file_says_which_it_reads(
    run_cli, tmp_path, one_error_line
):
    (tmp_path / "photo.jpg").write_text("x")
    status, _, err = run_cli("eval", str(tmp_path / "photo.jpg"))
    assert status == 2
    one_error_line(err, "photo.jpg: unknown caption format; expected captions.json, a Karpathy")


@pytest.mark.slow  # loads the encoder
def test_eval_takes_a_captions_file_and_its_photos_as_train_does(run_cli, tmp_path, one_error_line):
    data = _tiny_dataset(tmp_path / "data")
    captions = json.loads((data / "captions.json").read_text())
    split_of = {
        k: name
        for name, keys in json.loads((data / "splits.json").read_text()).items()
        for k in keys
    }
    karpathy = tmp_path / "dataset_tiny.json"
    karpathy.write_text(json.dumps({"images": [
        {"filename": k, "split": split_of[k], "sentences": [{"raw": c} for c in caps]}
        for k, caps in captions.items()]}))  # fmt: skip
    status, out, err = run_cli("eval", karpathy, "--images", data / "images", "--split", "test",
                               "--model", "labels", "--json")  # fmt: skip
    assert status == 0, err
    # labels decodes nothing
    assert json.loads(out)["images"] == 1 and json.loads(out)["decoding"] is None
    status, out, err = run_cli("eval", karpathy, "--images", data / "images", "--split", "test",
                               "--model", "show-attend-tell", "--beam", "2")  # fmt: skip
    assert status == 0, err  # the table says how the captions were decoded, and what was timed
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.strip()}
    assert rows["decoding"] == ["beam", "2"] and rows["captioning"][1] == "s" and "CIDEr" in rows
    assert rows["scorer"][0] == "pycocoevalcap,"  # which tokenizer scored them, Java or not
    status, out, err = run_cli("eval", karpathy, "--images", data / "images", "--split", "test",
                               "--model", "show-attend-tell", "--greedy", "--json")  # fmt: skip
    report = json.loads(out)
    assert report["decoding"]["method"] == "greedy" and "beam_width" not in report["decoding"]
    assert report["scorer"].startswith("pycocoevalcap, ")
    status, _, err = run_cli("eval", karpathy, "--model", "labels")  # its photos are elsewhere
    assert status == 2
    one_error_line(err, f"none of the 6 photos could be read (first: {tmp_path / '0.jpg'}: ")
    assert (
        f"they were looked for in {tmp_path}: check that the photos are there (a captions file given as DATA takes --images FOLDER"
        in err
        and "a dataset folder holds its photos in images/ or beside its captions)" in err
    )
    # A dataset folder with its captions in a file elsewhere: the photos are in its images/, as
    # they are found with its own captions.json (they had been looked for beside images/).
    (tmp_path / "mine.json").write_text(json.dumps(captions))
    status, out, err = run_cli(
        "eval", data, "--captions", tmp_path / "mine.json", "--model", "labels", "--json"
    )
    assert status == 0 and json.loads(out)["images"] == 6, err
    status, _, err = run_cli("eval", karpathy, "--captions", karpathy)
    assert status == 2
    one_error_line(err, "a captions file already; --captions names one for a folder of photos")
    status, _, err = run_cli("eval", data, "--images", data / "images")
    assert status == 2
    one_error_line(err, "is for a captions file given as DATA")


def test_eval_beam_0_is_refused_not_replaced(run_cli, tmp_path, one_error_line):
    status, _, err = run_cli("eval", str(tmp_path), "--beam", "0")
    assert status == 2
    one_error_line(err, "beam width")


def test_train_usage_errors_are_one_line(run_cli, tmp_path, one_error_line):
    status, _, err = run_cli("train", str(tmp_path))  # no --out
    assert status == 2
    one_error_line(err, "--out", "capsight train --help")


def test_eval_refuses_too_few_rounds_before_captioning(run_cli, tmp_path, one_error_line):
    status, _, err = run_cli("eval", str(tmp_path), "--bootstrap", "5")
    assert status == 2
    one_error_line(err, "at least 100 rounds")
    # Too many: a 1.46 TiB table of draws, asked for once every photo had been captioned.
    status, _, err = run_cli("eval", str(tmp_path), "--bootstrap", "99999999999")
    assert status == 2
    one_error_line(
        err, "at most 10,000 rounds (1,000 is plenty for a 95% interval), got 99,999,999,999"
    )


def test_train_options_may_come_before_the_dataset(run_cli, tmp_path):
    # The options reach the training module whatever their place: --out is found, so the error
    # is about the missing data, not an unrecognized --out.
    status, _, err = run_cli("train", "--no-track", "--out", str(tmp_path / "run"),
                             str(tmp_path / "nowhere"))  # fmt: skip
    assert status == 2
    assert "unrecognized" not in err and "no such caption file or dataset folder" in err


def test_other_commands_still_refuse_unknown_options(run_cli):
    status, _, err = run_cli("models", "--no-such-flag")
    assert status == 2
    assert "unrecognized arguments: --no-such-flag" in err


def _tiny_dataset(root, text_files=False):
    """6 small photos with captions: 4 train, 1 val, 1 test; captions.json + splits.json, or the
    official Flickr8k text files (photos in Flicker8k_Dataset/)."""
    import numpy as np
    from PIL import Image

    names = [f"{i}.jpg" for i in range(6)]
    photos = root / ("Flicker8k_Dataset" if text_files else "images")
    photos.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(photos / name)
    captions = {
        name: [f"a photo of thing {i}", "a dog on the grass"] for i, name in enumerate(names)
    }
    splits = {"train": names[:4], "val": names[4:5], "test": names[5:]}
    if text_files:
        (root / "Flickr8k.token.txt").write_text(
            "".join(f"{k}#{i}\t{c}\n" for k, caps in captions.items() for i, c in enumerate(caps))
        )
        for split, stem in (("train", "train"), ("val", "dev"), ("test", "test")):
            (root / f"Flickr_8k.{stem}Images.txt").write_text("\n".join(splits[split]) + "\n")
    else:
        (root / "captions.json").write_text(json.dumps(captions))
        (root / "splits.json").write_text(json.dumps(splits))
    return root


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["--seed", "-1"], "--seed must be between 0 and"),  # numpy's traceback once
        (
            ["--patience", "0"],
            "--patience must be >= 1",
        ),  # stopped after one epoch whatever --epochs
        (["--val-beam", "21"], "--val-beam must be at most 20"),  # failed after the first epoch
        (["--weight-decay", "nan"], "--weight-decay must be a finite number"),  # NaN loss, exit 0
        (["--grad-clip", "nan"], "--grad-clip must be a finite number"),
        (["--attention-lambda", "inf"], "--attention-lambda must be a finite number"),
        (["--fine-tune-lr-ratio", "nan"], "--fine-tune-lr-ratio must be a finite number"),
        (
            ["--architecture", "show-and-tell", "--model-option", "cell=foo"],
            "--model-option: unknown recurrent cell 'foo'; use lstm or gru",
        ),  # named the flag nowhere
    ],
)
def test_train_refuses_nonsense_numbers_before_any_work(run_cli, tmp_path, one_error_line, argv,
                                                        fragment):  # fmt: skip
    status, _, err = run_cli("train", tmp_path / "nowhere", "--out", tmp_path / "run", "--no-track",
                             *argv)  # fmt: skip
    assert status == 2
    one_error_line(err, fragment)
    assert not (tmp_path / "run").exists()


def test_eval_names_the_flag_at_fault(run_cli, tmp_path, one_error_line):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    (data / "captions.json").write_text(json.dumps({"a.jpg": ["a cat"]}))
    status, _, err = run_cli("eval", data, "--model", "labels", "--limit", "0")
    assert status == 2
    one_error_line(err, "--limit must be a whole number >= 1, got 0")
    status, _, err = run_cli("eval", data, "--model", "labels", "--against", "nosuch")
    assert status == 2
    one_error_line(err, "--against: unknown captioner 'nosuch'")
    status, _, err = run_cli("eval", data, "--model", "labels", "--against", "labels")
    assert status == 2  # it had captioned every photo twice for a table of zeros
    one_error_line(err, "--against labels is --model labels: name another captioner")


@pytest.mark.slow  # loads the encoder
def test_eval_says_when_the_model_ignores_the_decoding_flag(run_cli, tmp_path):
    data = _tiny_dataset(tmp_path / "data")
    status, out, err = run_cli("eval", data, "--model", "labels", "--greedy", "--quiet")
    assert status == 0
    assert "capsight: note: the labels model ignores --greedy" in err


def test_init_from_a_missing_folder_says_so_and_a_run_folder_means_its_best(
    run_cli, tmp_path, one_error_line
):
    status, _, err = run_cli("train", tmp_path, "--out", tmp_path / "run", "--no-track",
                             "--init-from", tmp_path / "nowhere")  # fmt: skip
    assert status == 2
    one_error_line(err, "--init-from", "nowhere: no such checkpoint folder")
    (tmp_path / "old" / "best").mkdir(parents=True)
    (tmp_path / "old" / "best" / "config.json").write_text('{"architecture": "show-attend-tell"}')
    status, _, err = run_cli("train", tmp_path, "--out", tmp_path / "run", "--no-track",
                             "--init-from", tmp_path / "old")  # fmt: skip
    assert status == 2  # (the data is no dataset: the run stops there)
    assert f"a run folder; starting from its best model, {tmp_path / 'old' / 'best'}" in err


def test_resume_refuses_flags_the_run_was_not_trained_with(run_cli, tmp_path, one_error_line):
    # Resuming used to ignore --architecture and --encoder and go on with the run's own model.
    last = tmp_path / "run" / "last"
    last.mkdir(parents=True)
    (last / "trainer.json").write_text('{"stage": "xe", "epoch": 1}')
    (last / "config.json").write_text(
        '{"architecture": "show-attend-tell", "encoder": "efficientnet-lite0", "resolution": 224}'
    )
    status, _, err = run_cli("train", tmp_path / "nowhere", "--out", tmp_path / "run", "--no-track",
                             "--resume", "--architecture", "show-and-tell")  # fmt: skip
    assert status == 2
    one_error_line(err, "--resume: the run in", "pass --architecture show-attend-tell")


@pytest.mark.slow  # encodes six small photos
def test_scst_top_k_beyond_the_vocabulary_is_refused_before_any_epoch(
    run_cli, tmp_path, one_error_line
):
    data = _tiny_dataset(tmp_path / "data")
    status, _, err = run_cli("train", data, "--out", tmp_path / "run", "--no-track", "--quiet",
                             "--cache-dir", tmp_path / "cache", "--min-count", "1",
                             "--scst-epochs", "1", "--scst-top-k", "1000")  # fmt: skip
    assert status == 2
    one_error_line(err, "--scst-top-k 1000: the vocabulary has only")
    assert not (tmp_path / "run" / "last").exists()  # no epoch was spent on it


def test_eval_refuses_too_few_paired_draws_before_captioning(run_cli, tmp_path, one_error_line):
    status, _, err = run_cli("eval", tmp_path, "--against", "labels", "--bootstrap", "5")
    assert status == 2
    one_error_line(err, "at least 100 rounds", "got 5")


@pytest.mark.slow  # loads the encoder
def test_eval_reads_a_flickr8k_text_folder_like_train_does(run_cli, tmp_path):
    data = _tiny_dataset(tmp_path / "flickr8k", text_files=True)
    status, out, err = run_cli("eval", data, "--split", "test", "--model", "labels", "--json")
    assert status == 0, err
    assert json.loads(out)["images"] == 1


@pytest.mark.slow  # loads the encoder
def test_eval_draws_a_progress_bar_and_quiet_turns_it_off(run_cli, tmp_path, monkeypatch):
    from capsight._cli.progress_bar import ProgressBar

    data = _tiny_dataset(tmp_path / "data")
    monkeypatch.setattr(ProgressBar, "wanted", staticmethod(lambda quiet, file=None: not quiet))
    status, _, err = run_cli("eval", data, "--model", "labels")
    assert status == 0 and "100%" in err  # (how far it got drawn depends on the machine's pace)
    status, _, err = run_cli("eval", data, "--model", "labels", "--quiet")
    assert status == 0 and "%|" not in err


def test_eval_given_the_splits_file_as_captions_says_so(run_cli, tmp_path, one_error_line):
    data = _tiny_dataset(tmp_path / "data")
    status, _, err = run_cli("eval", data, "--captions", data / "splits.json", "--model", "labels")
    assert status == 2  # it was read as captions, and every "photo" (train, val, test) was missing
    one_error_line(err, "splits.json: the split lists, not the captions")


def test_a_run_folder_and_its_best_are_the_same_captioner(tmp_path):
    from capsight._cli.eval import _same_captioner

    (tmp_path / "run" / "best").mkdir(parents=True)
    (tmp_path / "run" / "best" / "config.json").write_text("{}")
    (tmp_path / "run" / "metrics.jsonl").write_text("")
    run, best = str(tmp_path / "run"), str(tmp_path / "run" / "best")
    assert _same_captioner(run, best) and _same_captioner("labels", "labels")
    assert not _same_captioner(run, "labels") and not _same_captioner("labels", "show-and-tell")
