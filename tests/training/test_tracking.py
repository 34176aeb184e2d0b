"""Experiment tracking: the null tracker, parameter flattening and a real MLflow SQLite store."""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
from pathlib import Path

import pytest

from capsight.errors import InvalidParameter
from capsight.training.tracking import (
    NullTracker,
    Tracker,
    code_version,
    create_tracker,
    flatten_params,
)


@dataclasses.dataclass(frozen=True)
class _Config:
    lr: float = 4e-4
    layers: tuple[int, ...] = (1, 2)


def test_flatten_params_nests_dicts_and_dataclasses_and_truncates():
    flat = flatten_params({"config": _Config(), "model": {"hidden": 512}, "note": "x" * 900})
    assert flat["config.lr"] == "0.0004"
    assert flat["config.layers"] == "(1, 2)"
    assert flat["model.hidden"] == "512"
    assert len(flat["note"]) == 500 and flat["note"].endswith("...")


def test_null_tracker_remembers_and_marks_failure():
    tracker = create_tracker("none")
    assert isinstance(tracker, NullTracker) and isinstance(tracker, Tracker)
    with pytest.raises(RuntimeError):
        with tracker:
            tracker.log_params({"lr": 0.1})
            tracker.log_metrics({"loss": 2}, step=3)
            raise RuntimeError("boom")
    assert tracker.params == {"lr": "0.1"}
    assert tracker.metrics == [(3, {"loss": 2.0})]
    assert tracker.status == "FAILED"


@pytest.mark.parametrize(
    "error, status", [(None, "FINISHED"), (RuntimeError, "FAILED"), (KeyboardInterrupt, "KILLED")]
)
def test_capsight_train_marks_its_run_as_it_ended(
    error, status, caption_folder, tmp_path, monkeypatch
):
    import capsight._cli.train_command as training
    from capsight.training.train import TrainResult

    tracker = NullTracker()

    def fake_train(config, tracker, corpus):
        if error is not None:
            raise error()
        return TrainResult(tmp_path, tmp_path / "none", {}, [])

    monkeypatch.setattr(training, "_tracker", lambda args, config: tracker)
    monkeypatch.setattr(training, "train", fake_train)
    argv = [str(caption_folder), "--out", str(tmp_path / "run"), "--min-count", "1", "--quiet"]
    try:  # inside an unrelated handler: its exception is no part of the run's ending
        raise KeyError("handled elsewhere")
    except KeyError:
        if error is None:
            assert training.train_main(argv) == 0
        else:
            with pytest.raises(error) as raised:
                training.train_main(argv)
            if error is KeyboardInterrupt:  # no last/: the CLI says to start again, not --resume
                assert raised.value.epoch_saved is False
    assert tracker.status == status


def test_an_interrupted_run_says_whether_an_epoch_was_saved(caption_folder, tmp_path, monkeypatch):
    """The CLI's hint after Ctrl-C (--resume, or start again) reads ``epoch_saved``."""
    import capsight._cli.train_command as training

    def saved_one_then_stopped(config, tracker, corpus):
        (Path(config.out) / "last").mkdir(parents=True)
        (Path(config.out) / "last" / "trainer.json").write_text("{}")
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "_tracker", lambda args, config: NullTracker())
    monkeypatch.setattr(training, "train", saved_one_then_stopped)
    argv = [str(caption_folder), "--out", str(tmp_path / "run"), "--min-count", "1", "--quiet"]
    with pytest.raises(KeyboardInterrupt) as raised:
        training.train_main(argv)
    assert raised.value.epoch_saved is True

    def stopped_while_reading(config, say):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "training_corpus", stopped_while_reading)
    with pytest.raises(KeyboardInterrupt) as raised:
        training.train_main([str(caption_folder), "--out", str(tmp_path / "new"), "--quiet"])
    assert raised.value.epoch_saved is False


def test_a_full_disk_after_a_saved_epoch_says_to_resume_once_there_is_room(
    caption_folder, tmp_path, monkeypatch, capsys
):
    """A run that filled the disk as it saved an epoch had said only "make room, or write
    elsewhere" (elsewhere would start again), where Ctrl-C says how to go on: --resume."""
    import errno

    import capsight._cli.main as cli
    import capsight._cli.train_command as training

    def saved_one_then_full(config, tracker, corpus):
        (Path(config.out) / "last").mkdir(parents=True)
        (Path(config.out) / "last" / "trainer.json").write_text("{}")
        raise OSError(errno.ENOSPC, "No space left on device", f"{config.out}/last.new/x.pt")

    monkeypatch.setattr(training, "_tracker", lambda args, config: NullTracker())
    monkeypatch.setattr(training, "train", saved_one_then_full)
    monkeypatch.setattr(cli, "_silence_stdout", lambda: None)  # (in-process: pytest's stdout)
    out = tmp_path / "run"
    assert cli.main(["train", str(caption_folder), "--out", str(out), "--quiet"]) == 1
    assert capsys.readouterr().err.endswith(
        "No space left on device; make room, then run the same command with --resume to "
        "continue from the last saved epoch\n"
    )
    assert cli.main(["train", str(caption_folder), "--out", str(tmp_path / "new"), "--quiet",
                     "--resume"]) == 1  # fmt: skip
    assert "make room, then run the same command again to continue" in capsys.readouterr().err


def test_a_tracking_store_that_cannot_be_written_is_one_clear_error(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "a-file").write_text("")
    with pytest.raises(InvalidParameter, match="cannot open or write it .*--no-track"):
        create_tracker("mlflow", root_dir=tmp_path / "a-file" / "runs")
    uri = f"sqlite:///{tmp_path / 'a-file' / 'mlflow.db'}"
    with pytest.raises(InvalidParameter, match=f"MLflow tracking store {uri}"):
        create_tracker("mlflow", tracking_uri=uri)


def test_a_tracking_server_that_does_not_answer_is_one_clear_error_at_once(monkeypatch):
    """MLflow retried it for about four minutes without a word before its own error."""
    pytest.importorskip("mlflow")
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # (the old code, should it run)
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    uri = f"http://127.0.0.1:{port}"
    with pytest.raises(
        InvalidParameter, match=rf"^MLflow tracking server {uri}: cannot reach it \(.*--no-track\)$"
    ):
        create_tracker("mlflow", tracking_uri=uri)
    # Behind a proxy (ALL_PROXY included) the server may be reachable only through it: MLflow
    # asks, and its own error stands.
    monkeypatch.setenv("ALL_PROXY", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("NO_PROXY", "")
    with pytest.raises(
        InvalidParameter, match=rf"^MLflow tracking store {uri}: cannot open or write it"
    ):
        create_tracker("mlflow", tracking_uri=uri)


def test_a_folder_store_this_mlflow_refuses_says_what_to_use_instead(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    try:
        tracker = create_tracker("mlflow", tracking_uri=f"file://{tmp_path / 'mlruns'}")
    except InvalidParameter as error:
        assert "refuses folder (file:) stores; set MLFLOW_TRACKING_URI to sqlite:///" in str(error)
        assert "MLFLOW_ALLOW_FILE_STORE=true" in str(error)
    else:
        tracker.close("FINISHED")
        pytest.skip("this MLflow still takes folder stores")


def test_unknown_tracker_kind_is_a_user_error():
    with pytest.raises(InvalidParameter, match="unknown tracker"):
        create_tracker("neptune")


def test_code_version_reads_the_git_commit():
    version = code_version()
    if not version:
        pytest.skip("capsight is not running from a git checkout")
    assert len(version["mlflow.source.git.commit"]) == 40


@pytest.mark.parametrize(
    "dirty, written", [("true", "abcdef1+dirty"), ("false", "abcdef1"), (None, "abcdef1")]
)
def test_a_checkpoint_says_when_it_was_trained_on_changed_code(monkeypatch, dirty, written):
    """best/config.json's code_version said "589eaf2" for code with local changes: a copied
    best/ lost what only MLflow's tags said."""
    import capsight.training.train as training

    version = {"mlflow.source.git.commit": "abcdef1234" + "0" * 30}
    if dirty is not None:
        version["capsight.git_dirty"] = dirty
    monkeypatch.setattr(training, "code_version", lambda: version)
    training._code_version.cache_clear()
    try:
        assert training._code_version() == written
    finally:
        training._code_version.cache_clear()


def test_code_version_ignores_a_repository_that_does_not_hold_capsight(tmp_path):
    # capsight installed into a virtual environment inside another project's repository
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(tmp_path)]
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "app.py").write_text("print('not capsight')\n")
    subprocess.run([*git, "add", "app.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "theirs"], check=True)
    assert code_version(tmp_path) == {}


@pytest.mark.slow  # MLflow creates its SQLite schema through ~50 migrations
def test_mlflow_tracker_logs_params_metrics_artifacts_to_sqlite(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    checkpoint = tmp_path / "out" / "best"
    checkpoint.mkdir(parents=True)
    (checkpoint / "config.json").write_text("{}")
    with create_tracker("mlflow", root_dir=tmp_path / "runs", run_name="t") as tracker:
        tracker.log_params({"lr": 1e-3, "model": {"hidden": 8}})
        tracker.log_metrics({"val_CIDEr": 0.25, "loss": 2.5}, step=1)
        tracker.log_metrics({"val_CIDEr": 0.5, "loss": math.nan}, step=2)
        tracker.log_artifact(checkpoint)
        with pytest.raises(InvalidParameter):
            tracker.log_artifact(tmp_path / "missing.safetensors")
    assert (tmp_path / "runs" / "mlflow.db").is_file()
    client = MlflowClient(f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    run = client.get_run(tracker.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params == {"lr": "0.001", "model.hidden": "8"}
    assert [m.value for m in client.get_metric_history(tracker.run_id, "val_CIDEr")] == [0.25, 0.5]
    assert [a.path for a in client.list_artifacts(tracker.run_id, "best")] == ["best/config.json"]
    assert run.info.artifact_uri.startswith((tmp_path / "runs" / "mlruns").as_uri())
    assert run.data.tags.get("mlflow.source.git.commit") == code_version().get(
        "mlflow.source.git.commit"
    )

    # A resumed run keeps its first parameters and records what changed as a tag; so with the
    # code it ran: the version it started with stays, the one that resumed it goes beside it.
    started_with = dict(run.data.tags)
    import capsight.training.tracking as tracking

    monkeypatch.setattr(tracking, "code_version", lambda: {"capsight.git_dirty": "maybe"})
    resumed = create_tracker("mlflow", root_dir=tmp_path / "runs", resume_run_id=tracker.run_id)
    resumed.log_params({"lr": 2e-3, "epochs": 3})
    resumed.close()
    run = client.get_run(tracker.run_id)
    assert run.data.params["lr"] == "0.001" and run.data.params["epochs"] == "3"
    assert run.data.tags["changed_param.lr"] == "0.002"
    if "capsight.git_dirty" in started_with:  # (a checkout with git)
        assert run.data.tags["capsight.git_dirty"] == started_with["capsight.git_dirty"]
        assert run.data.tags["capsight.resumed_with.capsight.git_dirty"] == "maybe"
    monkeypatch.undo()

    # A run this store does not hold (resumed from another folder) goes on as a new one.
    elsewhere = create_tracker(
        "mlflow", root_dir=tmp_path / "runs", resume_run_id="0" * 32, run_name="t"
    )
    elsewhere.close("FAILED")
    run = client.get_run(elsewhere.run_id)
    assert elsewhere.run_id != "0" * 32 and run.data.tags["capsight.resumed_from"] == "0" * 32
    assert run.info.status == "FAILED"

    # So does a run deleted in the UI (MLflow still returns it, marked deleted).
    client.delete_run(tracker.run_id)
    after_delete = create_tracker(
        "mlflow", root_dir=tmp_path / "runs", resume_run_id=tracker.run_id
    )
    after_delete.close()
    assert after_delete.run_id != tracker.run_id


def test_a_run_stopped_before_its_first_metric_leaves_no_empty_run(tmp_path):
    """Ctrl-C before the first epoch, then the same command again: the runs table had held an
    empty KILLED run beside the restarted one, both named after the folder."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    def stopped(metric=False, **options):
        with pytest.raises(KeyboardInterrupt):
            with create_tracker("mlflow", root_dir=tmp_path, run_name="run", **options) as t:
                t.log_params({"lr": 1e-3})
                if metric:
                    t.log_metrics({"loss": 2.0}, step=1)
                raise KeyboardInterrupt
        return t.run_id

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    empty = stopped()
    assert client.get_run(empty).info.lifecycle_stage == "deleted"
    assert client.get_run(empty).info.status == "KILLED"  # (restorable as it ended)
    trained = stopped(metric=True)
    resumed = stopped(resume_run_id=trained)  # a resumed run keeps its earlier epochs
    assert resumed == trained
    assert client.get_run(trained).info.lifecycle_stage == "active"
    elsewhere = stopped(resume_run_id="0" * 32)  # resumed from a run this store lacks: kept
    assert client.get_run(elsewhere).info.lifecycle_stage == "active"
    with pytest.raises(KeyboardInterrupt):  # a run that holds a model is kept too
        with create_tracker("mlflow", root_dir=tmp_path, run_name="run") as with_model:
            (tmp_path / "best").mkdir()
            (tmp_path / "best" / "config.json").write_text("{}")
            with_model.log_artifact(tmp_path / "best")
            raise KeyboardInterrupt
    assert client.get_run(with_model.run_id).info.lifecycle_stage == "active"
    with create_tracker("mlflow", root_dir=tmp_path, run_name="run") as failed_early:
        pass
    failed_early.close("FAILED")  # (closed already: FINISHED, kept)
    assert client.get_run(failed_early.run_id).info.lifecycle_stage == "active"


@pytest.mark.parametrize(
    "uri,local", [("http://localhost:5000", False), ("sqlite:///{root}/m.db", True)]
)
def test_a_tracking_server_keeps_its_own_artifact_store(tmp_path, monkeypatch, uri, local):
    """Given a local artifact location, the run's checkpoint went to the client's disk, out of
    reach of the server's UI (docker-compose's MLflow service)."""
    pytest.importorskip("mlflow")
    import mlflow.tracking

    asked = {}

    class Client:
        def __init__(self, tracking_uri):
            pass

        def get_experiment_by_name(self, name):
            return None

        def create_experiment(self, name, artifact_location=None):
            asked["artifact_location"] = artifact_location
            raise RuntimeError("stop here")

    monkeypatch.setattr(mlflow.tracking, "MlflowClient", Client)
    # no server here
    monkeypatch.setattr("capsight.training.tracking._check_server", lambda uri: None)
    with pytest.raises(Exception):  # noqa: B017  (the fake client stops the tracker's set-up)
        create_tracker("mlflow", root_dir=tmp_path, tracking_uri=uri.format(root=tmp_path))
    assert (asked["artifact_location"] is not None) == local
    if local:  # beside the store's file, not in ./mlruns of the folder the run started from
        assert asked["artifact_location"] == (tmp_path / "mlruns").as_uri()
        create_folder = tmp_path / "elsewhere"
        create_folder.mkdir()
        monkeypatch.chdir(create_folder)
        with pytest.raises(Exception):  # noqa: B017
            create_tracker("mlflow", root_dir=create_folder, tracking_uri=uri.format(root=tmp_path))
        assert asked["artifact_location"] == (tmp_path / "mlruns").as_uri()


@pytest.mark.slow  # opens an MLflow store
def test_capsight_train_says_where_it_tracks_the_run(tmp_path, monkeypatch, capsys):
    """Tracking is on by default and made mlflow.db in the current folder without a word."""
    import argparse

    pytest.importorskip("mlflow")
    import capsight._cli.train_command as training

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    tracker = training._tracker(argparse.Namespace(no_track=False),
                                training.TrainConfig(data="d", out=str(tmp_path / "run")))  # fmt: skip
    # no "View run ... at: URL" among capsight train's JSON lines on stdout
    assert os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] == "true"
    try:
        err = capsys.readouterr().err
        assert (
            f"tracked with MLflow in sqlite:///{tmp_path}/mlflow.db" in err
            and "--no-track to skip" in err
        )
        # its checkpoints go to ./mlruns as well, which the note had not said
        assert f"checkpoints copied to {tmp_path}/mlruns/" in err
        assert (
            err.split("checkpoints copied to ")[1]
            .split(" ")[0]
            .endswith(f"/{tracker.run_id}/artifacts")
        )
    finally:
        tracker.close()
    assert (
        training._tracker(
            argparse.Namespace(no_track=True), training.TrainConfig(data="d", out="r")
        )
        is None
    )

    class Remote(NullTracker):
        tracking_uri = "https://user:secret@mlflow.example.org"

    asked = {}
    monkeypatch.setattr("capsight.training.tracking.create_tracker",
                        lambda **options: asked.update(options) or Remote())  # fmt: skip
    (tmp_path / "sat").mkdir()
    monkeypatch.chdir(tmp_path / "sat")
    training._tracker(argparse.Namespace(no_track=False), training.TrainConfig(data="d", out="."))
    assert asked["run_name"] == "sat"  # --out .: the folder's name, not a random one
    capsys.readouterr()
    training._tracker(argparse.Namespace(no_track=False), training.TrainConfig(data="d", out="r"))
    err = capsys.readouterr().err
    assert (
        "tracked with MLflow at https://mlflow.example.org" in err
        and "secret" not in err
        and "mlflow ui" not in err
    )
