"""`capsight train` and `capsight eval`: thin fronts over capsight.training; bad input is one line."""

from __future__ import annotations


def test_train_help_comes_from_the_training_module(run_cli):
    status, out, _ = run_cli("train", "--help")
    assert status == 0
    assert "--architecture" in out and "--scst-epochs" in out


def test_train_on_a_missing_dataset_is_one_line(run_cli, tmp_path):
    status, _, err = run_cli("train", str(tmp_path / "nowhere"), "--out", str(tmp_path / "run"),
                             "--no-track")
    assert status == 2
    assert "Traceback" not in err and "no such caption file or dataset folder" in err


def test_eval_on_a_missing_folder_is_one_line(run_cli, tmp_path):
    status, _, err = run_cli("eval", str(tmp_path / "nowhere"))
    assert status == 2
    assert "Traceback" not in err and "nowhere" in err


def test_eval_on_a_file_says_it_wants_a_folder(run_cli, tmp_path, one_error_line):
    (tmp_path / "photo.jpg").write_text("x")
    status, _, err = run_cli("eval", str(tmp_path / "photo.jpg"))
    assert status == 2
    one_error_line(err, "photo.jpg: is a file; give the folder of photos")


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
