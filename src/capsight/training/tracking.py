"""Experiment tracking: parameters, per-epoch metrics, the checkpoint and the code version.

    >>> with create_tracker("mlflow", root_dir="runs", run_name="sat-lite0") as tracker:
    ...     tracker.log_params({"lr": 4e-4, "model": {"hidden": 512}})
    ...     tracker.log_metrics({"val_CIDEr": 0.55, "loss": 2.31}, step=1)
    ...     tracker.log_artifact("runs/sat-lite0/best")          # a file or a folder
    $ mlflow ui --backend-store-uri sqlite:///runs/mlflow.db   # browse the runs

MLflow is the default (neptune.ai, which the original project used, shut down in 2026). Its
store is SQLite: ``<root_dir>/mlflow.db`` with artifacts in ``<root_dir>/mlruns/``, where
``root_dir`` defaults to the current folder; ``tracking_uri=`` or ``MLFLOW_TRACKING_URI`` point it
anywhere MLflow understands. Every run is tagged with the git commit of the code
(``mlflow.source.git.commit``, shown by the UI) and the capsight version. ``NullTracker`` logs
nowhere but keeps what it was given in memory, for tests and ``--no-track``.

mlflow is imported only when an ``MLflowTracker`` is built (it takes seconds to import).
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from capsight.errors import InvalidParameter, MissingDependency

# MLflow refuses longer parameter values (500 characters before 2.x, 6000 since).
_MAX_PARAM_LENGTH = 500
_log = logging.getLogger(__name__)


@runtime_checkable
class Tracker(Protocol):
    """Where a training run reports to; use it as a context manager or call ``close()``."""

    def log_params(self, params: Mapping[str, Any]) -> None: ...

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None: ...

    def log_artifact(self, path: str | os.PathLike) -> None: ...

    def set_tags(self, tags: Mapping[str, Any]) -> None: ...

    def close(self, status: str = "FINISHED") -> None: ...

    def __enter__(self) -> Tracker: ...

    def __exit__(self, exc_type, exc, tb) -> None: ...


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested dicts and dataclasses -> ``{"model.hidden": "512"}`` with values as short strings."""
    if is_dataclass(params) and not isinstance(params, type):
        params = asdict(params)
    flat: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if is_dataclass(value) and not isinstance(value, type):
            value = asdict(value)
        if isinstance(value, Mapping) and value:
            flat.update(flatten_params(value, prefix=f"{name}."))
        else:
            text = str(value)
            flat[name] = (
                text if len(text) <= _MAX_PARAM_LENGTH else text[: _MAX_PARAM_LENGTH - 3] + "..."
            )
    return flat


def code_version(path: str | os.PathLike | None = None) -> dict[str, str]:
    """The git commit of the capsight source, and whether it has local changes
    (``capsight.git_dirty``: "true" or "false"), as MLflow tags; {} outside a checkout.

    Only a checkout that holds this very package counts: capsight installed into a virtual
    environment inside another project's repository would otherwise log that project's commit."""
    package = Path(__file__).resolve().parents[1]
    folder = Path(path) if path is not None else package
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
        )
        if top.returncode != 0 or not _holds_package(Path(top.stdout.strip()), package):
            return {}
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10
        )
        if commit.returncode != 0:
            return {}
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return {}
    version = {"mlflow.source.git.commit": commit.stdout.strip()}
    if dirty.returncode == 0:
        version["capsight.git_dirty"] = str(bool(dirty.stdout.strip())).lower()
    return version


def _holds_package(top: Path, package: Path) -> bool:
    """Whether the repository at ``top`` is capsight's own: its ``src/capsight`` is ``package``."""
    try:
        return (top / "src" / "capsight").resolve() == package
    except OSError:
        return False


def _capsight_version() -> str:
    try:
        from importlib.metadata import version

        return version("capsight")
    except Exception:  # not installed as a distribution (running from a checkout)
        return "unknown"


def _artifact_root(uri: str, root: Path) -> str:
    """Where a new experiment keeps its artifacts: ``mlruns/`` beside a SQLite store's file
    (MLFLOW_TRACKING_URI=sqlite:////elsewhere/x.db had left the models in ./mlruns of whatever
    folder the first run was started from), else beside ``root``."""
    if uri.startswith("sqlite:///") and uri != "sqlite:///:memory:":
        return (Path(uri[len("sqlite:///") :]).expanduser().resolve().parent / "mlruns").as_uri()
    return (root / "mlruns").as_uri()


def _check_sqlite_file(uri: str) -> None:
    """Create a SQLite store's folder and file, or raise OSError at once: MLflow itself retries
    an unusable file for about two minutes before it gives up."""
    if not uri.startswith("sqlite:///"):
        return
    path = Path(uri.removeprefix("sqlite:///").split("?")[0])
    if str(path) in ("", ":memory:"):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab"):  # an empty file is an empty database to SQLite
        pass


def _check_server(uri: str) -> None:
    """Refuse at once a tracking server (http/https) that does not answer a connection: MLflow
    retries it with growing waits for about four minutes, with no word, before it gives up.
    Skipped where a proxy would carry the request (the server may be reachable only through it)."""
    import socket
    import urllib.parse
    import urllib.request

    url = urllib.parse.urlsplit(uri)
    if url.scheme not in ("http", "https") or not url.hostname:
        return
    proxies = urllib.request.getproxies()  # (ALL_PROXY too, which requests honours)
    if (url.scheme in proxies or "all" in proxies) and not urllib.request.proxy_bypass(
        url.hostname
    ):
        return
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=SERVER_TIMEOUT_S).close()
    except OSError as error:
        reason = getattr(error, "strerror", None) or str(error) or type(error).__name__
        raise InvalidParameter(
            f"MLflow tracking server {uri}: cannot reach it ({reason}); start it (mlflow server), "
            "set MLFLOW_TRACKING_URI to another store, or train without tracking (--no-track)"
        ) from None


SERVER_TIMEOUT_S = 10


class NullTracker:
    """Logs nowhere; remembers everything it was given (``params``, ``metrics``, ...)."""

    def __init__(self, **_: Any) -> None:
        self.params: dict[str, str] = {}
        self.metrics: list[tuple[int | None, dict[str, float]]] = []
        self.artifacts: list[Path] = []
        self.tags: dict[str, str] = {}
        self.status: str | None = None

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.params.update(flatten_params(params))

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        self.metrics.append((step, {k: float(v) for k, v in metrics.items()}))

    def log_artifact(self, path: str | os.PathLike) -> None:
        self.artifacts.append(Path(path))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.tags.update({k: str(v) for k, v in tags.items()})

    def close(self, status: str = "FINISHED") -> None:
        self.status = status

    def __enter__(self) -> NullTracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(_status_for(exc_type))


def _status_for(exc_type) -> str:
    if exc_type is None:
        return "FINISHED"
    return "KILLED" if issubclass(exc_type, KeyboardInterrupt) else "FAILED"


class MLflowTracker:
    """One MLflow run; opened on construction, ended by ``close()`` or leaving ``with``.

    ``resume_run_id`` continues an earlier run (a resumed training): parameters it already has
    are not logged again, and metric steps simply continue. A run this store does not hold (a
    resume from another folder, or a deleted database) starts a new run tagged
    ``capsight.resumed_from``, with a logged warning. A store that cannot be opened or written
    raises ``InvalidParameter`` before any training. A new run stopped (``KILLED``) before it
    logged a metric or an artifact goes to MLflow's trash on close (``mlflow runs restore`` brings it back):
    restarted, the training would otherwise sit in the runs table beside an empty run of the
    same name.
    """

    def __init__(
        self,
        root_dir: str | os.PathLike = ".",
        tracking_uri: str | None = None,
        experiment: str = "capsight",
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        resume_run_id: str | None = None,
    ) -> None:
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            # (capsight train then trains untracked, and says so; --no-track says nothing)
            raise MissingDependency(
                "experiment tracking needs mlflow: pip install 'capsight[train]'"
            ) from None
        root = Path(root_dir).expanduser().resolve()
        uri = (
            tracking_uri
            or os.environ.get("MLFLOW_TRACKING_URI")
            or f"sqlite:///{root / 'mlflow.db'}"
        )
        self.tracking_uri = uri
        self._logged_params: dict[str, str] = {}
        self._keep_if_stopped = False  # a resumed run, or one with a metric, is never discarded
        for chatty in ("mlflow.store.db.utils", "alembic"):  # "Creating initial ... tables" etc.
            logging.getLogger(chatty).setLevel(logging.WARNING)
        _check_server(uri)
        try:
            _check_sqlite_file(uri)
            self.client = MlflowClient(tracking_uri=uri)
            found = self.client.get_experiment_by_name(experiment)
            if found is not None:
                self.experiment_id = found.experiment_id
            else:
                # Without an explicit location, SQLite stores put artifacts in ./mlruns of
                # whatever folder the process happens to run in. A tracking server (http) keeps
                # its own (--artifacts-destination): a local path would hide them from its UI.
                remote = uri.startswith(("http://", "https://", "databricks"))
                self.experiment_id = self.client.create_experiment(
                    experiment, artifact_location=None if remote else _artifact_root(uri, root)
                )
            resumed = self._resumed_run(resume_run_id)
            if resumed is not None:
                self._keep_if_stopped = True
                self._logged_params = dict(resumed.data.params)
                self.client.update_run(resume_run_id, status="RUNNING")
                self.run_id = resume_run_id
            else:
                self.run_id = self.client.create_run(
                    self.experiment_id, run_name=run_name
                ).info.run_id
                if resume_run_id is not None:
                    tags = {**(tags or {}), "capsight.resumed_from": resume_run_id}
                    self._keep_if_stopped = True  # it goes on from epochs run elsewhere
            version = {**code_version(), "capsight.version": _capsight_version()}
            if resumed is not None:  # the run keeps the code it started with; changed code beside
                had = resumed.data.tags
                version = {**{k: v for k, v in version.items() if k not in had},
                           **{f"capsight.resumed_with.{k}": v for k, v in version.items()
                              if k in had and had[k] != v}}  # fmt: skip
            self.set_tags({**version, **(tags or {})})
        except Exception as error:
            # sqlite, SQLAlchemy and MLflow errors alike: the store is unusable.
            reason = " ".join(str(error).split("\n")[0].split()) or type(error).__name__
            if "MLFLOW_ALLOW_FILE_STORE" in str(error):  # MLflow 3.x turned file stores off
                raise InvalidParameter(
                    f"MLflow tracking store {uri}: this MLflow refuses folder (file:) stores; set "
                    "MLFLOW_TRACKING_URI to sqlite:///PATH/mlflow.db (the default is one in the "
                    "current folder), or MLFLOW_ALLOW_FILE_STORE=true to keep the folder"
                ) from None
            raise InvalidParameter(
                f"MLflow tracking store {uri}: cannot open or write it ({reason}); set "
                "MLFLOW_TRACKING_URI to a writable place, or train without tracking (--no-track)"
            ) from None
        self._closed = False

    def _resumed_run(self, run_id: str | None):
        """The run to continue, or None to start a new one (none asked, or not in this store)."""
        if run_id is None:
            return None
        from mlflow.exceptions import MlflowException

        try:
            run = self.client.get_run(run_id)
        except MlflowException as error:
            if error.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise  # a locked or unreachable store: said as such by the caller
            run = None
        if run is None or run.info.lifecycle_stage == "deleted":
            _log.warning(
                "MLflow run %s is not in %s (resumed from another folder, or deleted): tracking "
                "the rest of the training as a new run",
                run_id,
                self.tracking_uri,
            )
            return None
        return run

    @property
    def artifact_uri(self) -> str:
        return self.client.get_run(self.run_id).info.artifact_uri

    def log_params(self, params: Mapping[str, Any]) -> None:
        from mlflow.entities import Param

        flat = flatten_params(params)
        changed = {
            k: v
            for k, v in flat.items()
            if k in self._logged_params and self._logged_params[k] != v
        }
        if changed:
            # MLflow parameters are write-once; record what a resumed run changed as tags.
            self.set_tags({f"changed_param.{k}": v for k, v in changed.items()})
        new = [Param(k, v) for k, v in flat.items() if k not in self._logged_params]
        for start in range(0, len(new), 100):  # MLflow's batch limit
            self.client.log_batch(self.run_id, params=new[start : start + 100])
        self._logged_params.update({p.key: p.value for p in new})

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        # NaN and infinities are kept: a diverged loss is worth seeing in the UI.
        rows = [
            Metric(key, float(value), now, step or 0)
            for key, value in metrics.items()
            if isinstance(value, (int, float)) and not isinstance(value, bool)
        ]
        for start in range(0, len(rows), 1000):
            self.client.log_batch(self.run_id, metrics=rows[start : start + 1000])
        self._keep_if_stopped = self._keep_if_stopped or bool(rows)

    def log_artifact(self, path: str | os.PathLike) -> None:
        p = Path(path)
        if not p.exists():
            raise InvalidParameter(f"{p}: no such file or folder to log as an artifact")
        self._keep_if_stopped = True  # a run that holds a model is never discarded
        if p.is_dir():
            self.client.log_artifacts(self.run_id, str(p), artifact_path=p.name)
        else:
            self.client.log_artifact(self.run_id, str(p))

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        from mlflow.entities import RunTag

        rows = [RunTag(k, str(v)) for k, v in tags.items()]
        if rows:
            self.client.log_batch(self.run_id, tags=rows)

    def close(self, status: str = "FINISHED") -> None:
        """End the run as ``status`` (FINISHED, FAILED or KILLED; leaving ``with`` picks it)."""
        if not self._closed:
            self.client.set_terminated(self.run_id, status=status)
            self._closed = True
            if status == "KILLED" and not self._keep_if_stopped:
                self.client.delete_run(self.run_id)

    def __enter__(self) -> MLflowTracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(_status_for(exc_type))


TRACKERS = {"mlflow": MLflowTracker, "none": NullTracker, "null": NullTracker}


def create_tracker(kind: str = "mlflow", **options: Any) -> Tracker:
    """Build a tracker by name: ``"mlflow"`` (options as :class:`MLflowTracker`) or ``"none"``."""
    if kind not in TRACKERS:
        raise InvalidParameter(f"unknown tracker {kind!r}; choose mlflow or none")
    return TRACKERS[kind](**options)
