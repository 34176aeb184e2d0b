"""``capsight serve``: the HTTP API and the web page (FastAPI + uvicorn, one process).

    $ capsight serve --host 0.0.0.0 --port 8000 --job-dir /var/lib/capsight/jobs
    $ CAPSIGHT_API_KEY=change-me capsight serve          # every setting has a CAPSIGHT_* variable
    $ open http://127.0.0.1:8000/ui/    # the page;  /docs  the API;  /readyz  models warm?

A flag wins over its environment variable, which wins over the default. Needs the ``serve``
extra: ``pip install 'capsight[serve]'``.
"""

from __future__ import annotations

import argparse

from capsight.errors import InvalidParameter

_FLAGS = [
    # (flag, settings field, type, help)
    ("--host", "host", str, "interface to listen on (default 127.0.0.1; 0.0.0.0 for all)"),
    ("--port", "port", int, "TCP port (default 8000)"),
    ("--workers", "workers", int, "video jobs analysed at once (default 1)"),
    ("--queue-size", "queue_size", int, "video jobs that may wait before 503 (default 8)"),
    ("--max-upload-mb", "max_upload_mb", float, "largest request body in MiB (default 200)"),
    ("--max-images", "max_images", int, "images per caption or classify request (default 16)"),
    (
        "--api-key",
        "api_key",
        str,
        "require this key (>= 8 characters) in the X-API-Key or "
        "Authorization: Bearer header (default: none)",
    ),
    (
        "--job-dir",
        "job_dir",
        str,
        "folder for the job store and job files (default "
        "$XDG_DATA_HOME/capsight/jobs, or ~/.local/share/capsight/jobs when that is unset)",
    ),
    (
        "--job-ttl-hours",
        "job_ttl_hours",
        float,
        "delete finished jobs after this (default 72; 0 = keep)",
    ),
    (
        "--request-timeout",
        "request_timeout_s",
        float,
        "seconds a synchronous request may take (default 120)",
    ),
    ("--job-timeout", "job_timeout_s", float, "seconds a video job may take (default 3600)"),
    ("--model", "model", str, "captioner used when a request names none (default: default)"),
    ("--inference-slots", "inference_slots", int, "caption requests computed at once (default 1)"),
    ("--log-level", "log_level", str, "uvicorn log level (default info)"),
    (
        "--cors-origins",
        "cors_origins",
        str,
        "web pages on these origins may call the API from a "
        "browser: comma-separated, as https://app.example.com, or * for any (default: none)",
    ),
]


def _log_as_uvicorn_does(level: str) -> None:
    """capsight's own log lines ("job ... done", "expired 3 job(s)") beside uvicorn's, in its
    form and at its level: with no handler they had gone to Python's last resort, warnings and
    errors only, bare ("job ... was interrupted by a server restart")."""
    import logging

    from uvicorn.config import LOG_LEVELS
    from uvicorn.logging import DefaultFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
    logger = logging.getLogger("capsight")
    logger.handlers = [handler]
    logger.setLevel(LOG_LEVELS[level.lower()])
    logger.propagate = False  # (not twice, should anything configure the root logger)


PROBES = ("/healthz", "/readyz")


def quiet_probes(record) -> bool:
    """A filter for uvicorn's access log that drops the lines of health probes answered 200:
    Docker's HEALTHCHECK asks /readyz every 30 s (a Kubernetes probe every 10), and those lines
    had buried the requests a person reads the log for. A failing probe is still logged."""
    args = record.args  # uvicorn's: (client, method, path with query, HTTP version, status)
    if isinstance(args, tuple) and len(args) == 5 and args[4] == 200:
        return not str(args[2]).split("?")[0].endswith(PROBES)
    return True


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "serve",
        help="run the HTTP API and the web page",
        description=(
            "Serve the HTTP API (/docs), the original server's endpoints and the web page (/ui). "
            "Every option can also be set with an environment variable CAPSIGHT_<OPTION>, e.g. "
            "CAPSIGHT_PORT or CAPSIGHT_API_KEY; three are named otherwise: --request-timeout is "
            "CAPSIGHT_REQUEST_TIMEOUT_S, --job-timeout CAPSIGHT_JOB_TIMEOUT_S, --no-ui "
            "CAPSIGHT_UI=false."
        ),
    )
    for flag, dest, kind, text in _FLAGS:
        p.add_argument(flag, dest=dest, type=kind, default=None, help=text)
    p.add_argument("--no-ui", dest="ui", action="store_const", const=False, default=None,
                   help="do not mount the web page at /ui")  # fmt: skip
    p.add_argument("--captioner", dest="captioners", action="append", default=None,
                   metavar="NAME=FOLDER",
                   help="serve a trained checkpoint (a capsight train run folder or its best/) "
                        "as captioner NAME, which requests, the page and --model may name; "
                        "repeat for more (CAPSIGHT_CAPTIONERS: NAME=FOLDER;NAME=FOLDER)")  # fmt: skip
    return p


def settings_from_args(args: argparse.Namespace, environ=None):
    """Environment first, then every flag that was given. A flag's number that ServerSettings
    would refuse (inf, or too large once scaled) is named by its flag here."""
    from capsight.server.settings import ServerSettings, finite_problem

    overrides = {dest: getattr(args, dest, None) for _, dest, _, _ in _FLAGS}
    for flag, dest, kind, _ in _FLAGS:
        if (
            kind is float
            and overrides[dest] is not None
            and (problem := finite_problem(dest, overrides[dest]))
        ):
            raise InvalidParameter(f"{flag} {problem}")
    overrides["ui"] = getattr(args, "ui", None)
    if getattr(args, "captioners", None):  # (the flags' entries replace the variable's)
        overrides["captioners"] = ";".join(args.captioners)
    given = {name for name, value in overrides.items() if value is not None}
    return ServerSettings.from_env(environ, skip=given).replace(**overrides)


# uvicorn's names (uvicorn.config.LOG_LEVELS); another raises KeyError inside uvicorn.run.
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def check_settings(settings) -> None:
    """What ServerSettings leaves to uvicorn, checked before any model loads: uvicorn's log
    levels, and an address the server can listen on (uvicorn says so only after the models
    load, and exits 3)."""
    from capsight.server.settings import env_var

    if settings.log_level.lower() not in LOG_LEVELS:
        raise InvalidParameter(f"--log-level (or {env_var('log_level')}) {settings.log_level!r}: "
                               f"use one of {', '.join(LOG_LEVELS)}")  # fmt: skip
    check_listen(settings.host, settings.port)


def check_listen(host: str, port: int) -> None:
    """Bind ``host``:``port`` as uvicorn will (then let go), or InvalidParameter saying why not."""
    import socket

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        address = socket.getaddrinfo(host or None, port, family, socket.SOCK_STREAM,
                                     flags=socket.AI_PASSIVE)[0][4]  # fmt: skip
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise InvalidParameter(f"--host {host!r}: not an address to listen on ({reason}); "
                               "use 127.0.0.1, 0.0.0.0 or this machine's name") from None  # fmt: skip
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            sock.bind(address)
        except OSError as exc:
            raise InvalidParameter(f"cannot listen on {host}:{port} ({exc.strerror or exc}); "
                                   "choose another --port or --host") from None  # fmt: skip


# The serve extra's packages, by the module each installs (python-multipart: ``python_multipart``,
# or ``multipart`` before 0.0.13). Checked up front: a missing one failed mid-way, some as a
# traceback (FastAPI raises RuntimeError, not ImportError, for python-multipart).
SERVE_MODULES = {"fastapi": ("fastapi",), "uvicorn": ("uvicorn",),
                 "python-multipart": ("python_multipart", "multipart"),
                 "fastapi-swagger": ("fastapi_swagger",)}  # fmt: skip
UI_MODULES = {"gradio": ("gradio",)}


def missing_serve_packages(ui: bool = True) -> list[str]:
    """The serve extra's packages that are not installed (gradio only when the page is served)."""
    from importlib.util import find_spec

    wanted = {**SERVE_MODULES, **(UI_MODULES if ui else {})}
    return [package for package, modules in wanted.items()
            if not any(find_spec(module) is not None for module in modules)]  # fmt: skip


def run(args: argparse.Namespace) -> int:
    import os

    from capsight.errors import MissingDependency

    # OpenMP threads that spin while they wait for each other turn a busy machine (a server
    # shares its cores) into 10-40x slower inference; sleeping waiters keep every thread and
    # lose nothing on an idle one. Must be set before torch loads; an explicit value wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    settings = settings_from_args(args)
    check_settings(settings)
    missing = missing_serve_packages(ui=settings.ui)
    if missing:
        raise MissingDependency(f"capsight serve needs the serve extra ({', '.join(missing)} "
                                "missing): pip install 'capsight[serve]'")  # fmt: skip
    try:
        import uvicorn

        from capsight.ort.video import check_runtime_settings
        from capsight.server.app import create_app
        from capsight.server.engine import check_servable, serve_checkpoints
        from capsight.server.job_dir_lock import hold_job_dir
        from capsight.server.jobs import JobStore
    except ImportError as exc:
        raise MissingDependency(
            f"capsight serve needs the serve extra ({exc.name} is missing): "
            "pip install 'capsight[serve]'"
        ) from None
    # Bad settings fail here as one line and exit 2, not as a traceback inside uvicorn's start-up.
    check_runtime_settings()  # (had been /readyz "failed" for good, on a server that listened)
    # the folder, and a database it can write (before the models)
    JobStore(settings.job_dir).close()
    lock = hold_job_dir(settings.job_dir)  # held until this process ends
    serve_checkpoints(settings.served_checkpoints)  # before --model, which may name one
    check_servable(settings.model)
    app = create_app(settings)
    _log_as_uvicorn_does(settings.log_level)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level=settings.log_level,
                            timeout_graceful_shutdown=10)  # fmt: skip
    if settings.log_level.lower() not in ("debug", "trace"):  # (there, every request is logged)
        import logging

        logging.getLogger("uvicorn.access").addFilter(quiet_probes)

    class Server(uvicorn.Server):
        def handle_exit(self, sig, frame) -> None:
            # Said to the event streams at once (routers/jobs.py): they end with a last event
            # instead of holding the shutdown for its 10 s and being cut off.
            app.state.engine.stop_waiting()  # (sets app.state.stopping: the same event)
            # An open tab's heartbeat stream had held the shutdown for its whole 10 s, then
            # ended in a logged traceback as uvicorn cancelled it.
            stop_event = getattr(getattr(app.state, "ui_app", None), "stop_event", None)
            if stop_event is not None:
                stop_event.set()
            super().handle_exit(sig, frame)

    server = Server(config)
    server.run()
    del lock  # (here, not earlier: the job folder is this server's while it runs)
    if not server.started:  # as uvicorn.run: the port taken, say (uvicorn logged why)
        raise SystemExit(3)
    return 0
