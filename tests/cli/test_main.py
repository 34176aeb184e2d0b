"""The command itself: help, version, lazy imports, and how failures reach the user."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import capsight._cli.models as models_cli
from capsight._cli.main import SUBCOMMANDS, build_parser, cli_message, error_line
from capsight.errors import InvalidParameter, ModelNotFound


def test_every_listed_subcommand_is_in_the_parser():
    parser = build_parser()
    choices = parser._subparsers._group_actions[0].choices
    assert sorted(choices) == sorted(m.rsplit(".", 1)[1] for m in SUBCOMMANDS)


def test_help_lists_the_subcommands(run_cli):
    status, out, _ = run_cli("--help")
    assert status == 0
    assert "video" in out and "caption" in out and "models" in out


def test_version(run_cli):
    from capsight import __version__

    status, out, _ = run_cli("--version")
    assert status == 0 and __version__ in out


@pytest.mark.parametrize(
    "argv", [[], ["frobnicate"], ["video"], ["caption"], ["video", "x.mp4", "--every", "soon"]]
)
def test_usage_errors_exit_2_without_traceback(run_cli, argv):
    status, _, err = run_cli(*argv)
    assert status == 2
    assert "Traceback" not in err and "error:" in err


def test_a_mistyped_command_is_answered_with_the_one_meant(run_cli, one_error_line):
    status, _, err = run_cli("captoin", "cat.jpg")
    assert status == 2
    one_error_line(err, "invalid choice: 'captoin'", "; did you mean 'caption'? (see `capsight")
    status, _, err = run_cli("zzz")
    assert status == 2 and "did you mean" not in err  # nothing near it: no guess


@pytest.mark.parametrize(
    "argv",
    [
        ["train", "data", "--out", "run", "--captions", "5"],
        ["caption", "cat.jpg", "--mod", "show-and-tell"],
    ],
)
def test_an_option_is_never_read_from_its_first_letters(run_cli, argv):
    # plain argparse took `--captions 5` for --captions-per-image and `--mod` for --model
    status, _, err = run_cli(*argv)
    assert status == 2
    assert f"unrecognized arguments: {argv[-2]}" in err


def test_help_does_not_import_torch_or_matplotlib():
    # `capsight train --help` is the training module's own parser, which needs torch to load.
    names = [m.rsplit(".", 1)[1] for m in SUBCOMMANDS if not m.endswith(".train")]
    code = (
        "import sys\n"
        "from capsight._cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        f"for name in {names!r}:\n"
        "    try:\n        main([name, '--help'])\n    except SystemExit:\n        pass\n"
        "heavy = [m for m in ('torch', 'matplotlib', 'transformers', 'av', 'PIL', 'fastapi') "
        "if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in done.stdout, done.stdout[-500:]


def test_python_dash_m_runs_the_same_command():
    done = subprocess.run(
        [sys.executable, "-m", "capsight", "caption", "/no/such/photo.jpg"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == "capsight: error: /no/such/photo.jpg: no such file"
    assert "Traceback" not in done.stderr


def test_fast_exit_flushes_all_output_to_a_pipe(tmp_path):
    """`capsight models` skips interpreter teardown (os._exit): its output must still arrive."""
    piped = subprocess.run(
        [sys.executable, "-m", "capsight", "models", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.rstrip().endswith(("]", "}"))  # complete JSON, nothing cut off
    missing = subprocess.run(
        [sys.executable, "-m", "capsight", "models", "--bogus"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert missing.returncode == 2 and "error" in missing.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
@pytest.mark.parametrize("argv", [["models", "--json"], ["models"]])
def test_output_to_a_full_disk_is_one_line_not_a_traceback(argv):
    """`capsight models --json > /dev/full` ended in an OSError traceback, written as the
    output was (a print) or when it was flushed at exit."""
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "capsight", *argv], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr == ("capsight: error: cannot write the output, or a file being written: No "
                           "space left on device; make room, or write elsewhere\n")  # fmt: skip


def test_a_capsight_error_is_one_line_and_status_2(run_cli, monkeypatch, one_error_line):
    def failing_run(args):
        raise ModelNotFound("unknown captioner 'x';\n available: labels")

    monkeypatch.setattr(models_cli, "run", failing_run)
    status, out, err = run_cli("models")
    assert status == 2 and out == ""
    one_error_line(err, "unknown captioner 'x'; available: labels")


def test_a_closed_standard_output_is_no_traceback():
    """`capsight models --json >&-`: Python's sys.stdout is None, and writing to it had been an
    AttributeError traceback at exit."""
    done = subprocess.run(["bash", "-c", f"'{sys.executable}' -m capsight models --json >&-"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr


def test_a_file_the_system_refuses_is_one_line_naming_it(run_cli, monkeypatch, one_error_line):
    """`capsight train` on a captions.json without read permission had been a 30-line
    PermissionError traceback (as had `eval`, and an unreadable split list or photo folder)."""
    import errno

    def refused(args):
        raise PermissionError(errno.EACCES, "Permission denied", "data/captions.json")

    monkeypatch.setattr(models_cli, "run", refused)
    status, out, err = run_cli("models")
    assert status == 2 and out == ""
    one_error_line(err, "data/captions.json: permission denied; check its permissions")

    def vanished(args):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "data/a.jpg")

    monkeypatch.setattr(models_cli, "run", vanished)
    one_error_line(run_cli("models")[2], "data/a.jpg: no such file or directory")

    def moved(args):  # both ends of a rename
        raise PermissionError(errno.EACCES, "Permission denied", b"out/a.part", None, "out/a.json")

    monkeypatch.setattr(models_cli, "run", moved)
    one_error_line(run_cli("models")[2], "out/a.part -> out/a.json: permission denied")

    def other(args):  # an error no user can fix by a path: shown whole
        raise OSError(errno.EIO, "Input/output error", "data/a.jpg")

    monkeypatch.setattr(models_cli, "run", other)
    with pytest.raises(OSError, match="Input/output error"):
        run_cli("models")

    def nameless(args):  # no file to name: a fault of capsight's, shown whole
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(models_cli, "run", nameless)
    with pytest.raises(OSError, match="Input/output error"):
        run_cli("models")


def test_ctrl_c_exits_130_quietly(run_cli, monkeypatch):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(models_cli, "run", interrupted)
    status, _, err = run_cli("models")
    assert status == 130
    assert "Traceback" not in err and "interrupted" in err
    assert "--resume" not in err


def test_ctrl_c_in_training_says_how_to_continue(run_cli, monkeypatch, tmp_path):
    import capsight._cli.train as train_cli

    def interrupted(args):
        stop = KeyboardInterrupt()
        stop.epoch_saved = True  # as train_main marks it when the run has a last/
        raise stop

    monkeypatch.setattr(train_cli, "run", interrupted)
    status, _, err = run_cli("train", tmp_path, "--out", tmp_path / "run")
    assert status == 130 and "run the same command with --resume to continue" in err
    status, _, err = run_cli("train", tmp_path, "--out", tmp_path / "run", "--resume")
    assert status == 130 and "run the same command again to continue" in err


def test_ctrl_c_before_the_first_epoch_says_to_start_again(run_cli, monkeypatch, tmp_path):
    import capsight._cli.train as train_cli

    def interrupted(args):
        stop = KeyboardInterrupt()
        stop.epoch_saved = False  # as train_main marks it when the run has no last/ yet
        raise stop

    monkeypatch.setattr(train_cli, "run", interrupted)
    status, _, err = run_cli("train", tmp_path, "--out", tmp_path / "run")
    assert status == 130 and "no epoch had finished, so run the same command to start again" in err
    assert "--resume" not in err


def test_sigterm_stops_a_command_as_ctrl_c_does_but_says_so():
    """`kill`, `docker compose stop`: raised as Ctrl-C is, so each command's clean-up runs (a
    training run marked KILLED, a batch of videos summarised); exit status 143."""
    import signal
    import subprocess
    import sys

    waits = ("import sys, time\n"
             "import capsight._cli.models as models\n"
             "def run(args):\n"
             "    try:\n"
             "        print('ready', flush=True)\n"
             "        time.sleep(60)\n"
             "    finally:\n"
             "        print('cleaned up', file=sys.stderr, flush=True)\n"
             "models.run = run\n"
             "sys.argv = ['capsight', 'models']\n"
             "from capsight._cli.main import console\n"
             "console()\n")  # fmt: skip
    process = subprocess.Popen([sys.executable, "-c", waits], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert process.stdout.readline().strip() == "ready"
    process.send_signal(signal.SIGTERM)
    err = process.communicate(timeout=30)[1]
    assert process.returncode == 143, err
    assert "Traceback" not in err and "cleaned up" in err
    assert err.rstrip().endswith("capsight: stopped (SIGTERM)")


def test_a_bug_is_not_disguised_as_bad_input(run_cli, monkeypatch):
    def buggy(args):
        raise ZeroDivisionError("a real bug")

    monkeypatch.setattr(models_cli, "run", buggy)
    with pytest.raises(ZeroDivisionError):
        run_cli("models")


def test_error_line_folds_newlines():
    assert error_line("a\nb   c") == "capsight: error: a b c"


@pytest.mark.parametrize(
    "command,policy", [("caption", "PASSIVE"), ("video", "PASSIVE"), ("train", None)]
)
def test_the_command_keeps_openmp_threads_from_spinning(monkeypatch, command, policy):
    """Spinning OpenMP waiters made inference 10x slower on a busy machine; training is left as
    it was (not measured)."""
    import os

    import capsight._cli.main as cli

    seen = {}
    monkeypatch.setenv("OMP_WAIT_POLICY", "set")  # so that the undo removes what console() sets
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setattr(
        cli, "main", lambda: seen.setdefault("policy", os.environ.get("OMP_WAIT_POLICY")) and 0
    )
    monkeypatch.setattr(os, "_exit", lambda status: (_ for _ in ()).throw(SystemExit(status)))
    monkeypatch.setattr("sys.argv", ["capsight", command, "x"])
    with pytest.raises(SystemExit):
        cli.console()
    assert seen["policy"] == policy


def test_the_terminal_reads_flags_where_python_reads_argument_names():
    assert (
        cli_message(InvalidParameter("every must be positive", "every"))
        == "--every must be positive"
    )
    assert (
        cli_message(InvalidParameter("max_length must be", "max_length")) == "--max-length must be"
    )
    # only a leading name is a flag: the same word inside a sentence stays as it is
    assert cli_message(InvalidParameter("sample every 2 s", "every")) == "sample every 2 s"
    assert cli_message(InvalidParameter("no parameter named")) == "no parameter named"
