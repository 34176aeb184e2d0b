"""`capsight serve`: bad settings are one error line and status 2 before any model loads, and
before uvicorn, which would otherwise raise a traceback (log level, infinite numbers) or give
up with status 3 after the models are warm (an address it cannot listen on).
"""

from __future__ import annotations

import socket

import pytest

pytest.importorskip("uvicorn")


@pytest.fixture
def no_server(monkeypatch, tmp_path):
    """Fail the test if the command gets as far as loading models or starting uvicorn."""
    import uvicorn

    import capsight.server.engine as engine

    def refuse(*args, **kwargs):
        raise AssertionError("the bad setting was not caught before start-up")

    monkeypatch.setattr(uvicorn, "run", refuse)
    monkeypatch.setattr(engine, "check_servable", refuse)
    for name in ("CAPSIGHT_LOG_LEVEL", "CAPSIGHT_MAX_UPLOAD_MB", "CAPSIGHT_HOST", "CAPSIGHT_PORT"):
        monkeypatch.delenv(name, raising=False)
    return ["--job-dir", str(tmp_path / "jobs")]


@pytest.mark.parametrize("argv,fragments", [
    (["--log-level", "loud"], ["--log-level", "'loud'", "debug"]),
    (["--max-upload-mb", "inf"], ["--max-upload-mb", "finite", "inf"]),
    (["--max-upload-mb", "1e308"], ["--max-upload-mb", "too large"]),
    (["--job-ttl-hours", "inf"], ["--job-ttl-hours", "finite"]),
    (["--job-timeout", "inf"], ["--job-timeout", "finite"]),
    (["--request-timeout", "inf"], ["--request-timeout", "finite"]),
    (["--host", "no-such-host.invalid"], ["--host", "no-such-host.invalid"]),
    (["--port", "0"], ["--port (or CAPSIGHT_PORT) must be in 1..65535, got 0"]),
    (["--port", "99999999999999999999"], ["must be in 1..65535, got 99999999999999999999"]),  # not 1e+20
    (["--workers", "-3"], ["--workers (or CAPSIGHT_WORKERS) must be >= 1, got -3"]),
    (["--request-timeout", "0"], ["--request-timeout (or CAPSIGHT_REQUEST_TIMEOUT_S) must be > 0"]),
    (["--api-key", "short"], ["--api-key (or CAPSIGHT_API_KEY) needs >= 8 characters, got 5"]),
])  # fmt: skip
def test_bad_settings_are_one_line_before_start_up(
    run_cli, no_server, one_error_line, argv, fragments
):
    status, out, err = run_cli("serve", *argv, *no_server)
    assert status == 2 and out == ""
    one_error_line(err, *fragments)


def test_a_bad_log_level_from_the_environment_is_named_too(
    run_cli, no_server, one_error_line, monkeypatch
):
    monkeypatch.setenv("CAPSIGHT_LOG_LEVEL", "LOUD")
    status, _, err = run_cli("serve", *no_server)
    assert status == 2
    one_error_line(err, "CAPSIGHT_LOG_LEVEL", "'LOUD'")


@pytest.mark.parametrize("variable, value, fragments", [
    ("CAPSIGHT_RUNTIME", "bogus", ["CAPSIGHT_RUNTIME must be one of", "'bogus'"]),
    ("CAPSIGHT_PRECISION", "bogus", ["CAPSIGHT_PRECISION must be one of", "'bogus'"]),
    ("CAPSIGHT_JOB_DIR", " ", ["--job-dir (or CAPSIGHT_JOB_DIR) is empty"]),
])  # fmt: skip
def test_a_bad_model_setting_or_blank_job_folder_is_refused_before_start_up(
    run_cli, no_server, one_error_line, monkeypatch, tmp_path, variable, value, fragments
):
    """The runtime and precision had been read as the models loaded, after the server listened:
    /healthz ok and /readyz "failed" for good; a blank CAPSIGHT_JOB_DIR made a folder " "."""
    monkeypatch.setenv(variable, value)
    monkeypatch.chdir(tmp_path)  # (where a folder " " would go)
    argv = no_server if variable != "CAPSIGHT_JOB_DIR" else []
    status, out, err = run_cli("serve", *argv)
    assert status == 2 and out == ""
    one_error_line(err, *fragments)


def test_a_port_in_use_is_said_before_the_models_load(run_cli, no_server, one_error_line):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        status, _, err = run_cli("serve", "--port", port, *no_server)
    assert status == 2
    one_error_line(err, f"127.0.0.1:{port}", "choose another --port")


@pytest.mark.parametrize("hidden,named", [
    (["gradio"], "gradio"),
    (["python_multipart", "multipart"], "python-multipart"),
    (["fastapi_swagger"], "fastapi-swagger"),
])  # fmt: skip
def test_a_missing_serve_package_is_named_in_one_line(run_cli, no_server, one_error_line,
                                                      monkeypatch, hidden, named):  # fmt: skip
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in hidden else real(name, *a)
    )
    status, _, err = run_cli("serve", *no_server)
    assert status == 2
    one_error_line(err, f"{named} missing", "pip install 'capsight[serve]'")
    if named == "gradio":  # the page is the only thing that needs it
        from capsight._cli.serve import missing_serve_packages

        assert missing_serve_packages(ui=False) == []


def test_good_settings_pass_the_checks():
    from capsight._cli.serve import check_settings
    from capsight.server.settings import ServerSettings

    with socket.socket() as probe:  # a port free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    check_settings(ServerSettings(port=port, log_level="DEBUG", job_ttl_hours=0))


@pytest.mark.parametrize("name,value,fragment", [
    ("max_upload_mb", float("inf"), "must be a finite number"),
    ("max_upload_mb", 1e308, "is too large"),
    ("job_ttl_hours", float("nan"), "must be a finite number"),
    ("request_timeout_s", float("inf"), "must be a finite number"),
])  # fmt: skip
def test_settings_made_in_python_refuse_numbers_the_app_cannot_use(name, value, fragment):
    from capsight.errors import InvalidParameter
    from capsight.server.settings import ServerSettings, env_var, option_name

    with pytest.raises(
        InvalidParameter, match=f"{option_name(name)} \\(or {env_var(name)}\\) {fragment}"
    ):
        ServerSettings(**{name: value})


def test_an_infinite_number_from_the_environment_names_its_variable(
    run_cli, no_server, one_error_line, monkeypatch
):
    monkeypatch.setenv("CAPSIGHT_MAX_UPLOAD_MB", "inf")
    status, _, err = run_cli("serve", *no_server)
    assert status == 2
    one_error_line(err, "CAPSIGHT_MAX_UPLOAD_MB", "finite")


def test_a_job_database_it_may_only_read_is_one_line_before_start_up(
    run_cli, no_server, one_error_line, monkeypatch
):
    """JobStore opens in the app's start-up: refused there, it had been uvicorn's traceback
    and status 3. (Read-only by URI: the tests run as root, whom file modes do not stop.)"""
    import sqlite3
    from pathlib import Path

    from capsight.server.jobs import JobStore

    JobStore(Path(no_server[1])).close()
    connect = sqlite3.connect
    monkeypatch.setattr(
        sqlite3, "connect", lambda path, **kw: connect(f"file:{path}?mode=ro", uri=True, **kw)
    )
    status, _, err = run_cli("serve", *no_server)
    assert status == 2
    one_error_line(err, "cannot write the job database", "attempt to write a readonly database")


def test_the_help_gives_each_numeric_default_the_server_uses():
    from dataclasses import fields

    from capsight._cli.serve import _FLAGS
    from capsight.server.settings import ServerSettings

    defaults = {f.name: f.default for f in fields(ServerSettings)}
    for flag, name, kind, text in _FLAGS:
        if kind in (int, float):
            assert f"default {defaults[name]:g}" in text, flag


def test_health_probes_answered_200_stay_out_of_the_access_log():
    """Docker's HEALTHCHECK every 30 s had written a line each into the log a person reads."""
    import logging

    from capsight._cli.serve import quiet_probes

    def line(path, status):
        record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1,
                                   '%s - "%s %s HTTP/%s" %d',
                                   ("127.0.0.1:5", "GET", path, "1.1", status), None)  # fmt: skip
        return quiet_probes(record)

    assert not line("/readyz", 200) and not line("/healthz", 200)
    assert not line("/capsight/readyz?x=1", 200)  # (behind a proxy's path prefix)
    assert line("/readyz", 503)  # not ready: worth reading
    assert line("/v1/captions", 200) and line("/ui/", 200)


def test_a_job_folder_another_server_uses_is_refused_before_start_up(
    run_cli, no_server, one_error_line, tmp_path
):
    """A second server on the same --job-dir had marked the first one's running job
    interrupted and run its queued job as well."""
    import os

    from capsight.server.job_dir_lock import hold_job_dir

    (tmp_path / "jobs").mkdir()
    held = hold_job_dir(tmp_path / "jobs")  # another server's (a lock of another open file)
    status, out, err = run_cli("serve", *no_server)
    assert status == 2 and out == ""
    one_error_line(err, f"another capsight server (pid {os.getpid()}) is using this job folder",
                   "give each server its own --job-dir")  # fmt: skip
    held.close()  # that server stopped: the next one gets as far as loading its models
    with pytest.raises(AssertionError, match="not caught before start-up"):
        run_cli("serve", *no_server)


def test_a_file_system_without_locks_runs_unlocked_and_an_unwritable_lock_is_one_line(
    tmp_path, monkeypatch, caplog
):
    import errno
    import fcntl

    from capsight.errors import InvalidParameter
    from capsight.server.job_dir_lock import hold_job_dir

    def no_locks(handle, how):
        raise OSError(errno.ENOLCK, "No locks available")

    with monkeypatch.context() as patched:
        patched.setattr(fcntl, "flock", no_locks)
        assert hold_job_dir(tmp_path) is None
    assert "cannot lock the job folder (No locks available)" in caplog.text
    (tmp_path / "other" / "server.lock").mkdir(parents=True)  # (an OSError, as another user's)
    with pytest.raises(InvalidParameter, match="cannot open the job folder's lock file"):
        hold_job_dir(tmp_path / "other")
