"""Server settings: one frozen dataclass, filled from defaults, ``CAPSIGHT_*`` variables and flags.

    >>> settings = ServerSettings.from_env({"CAPSIGHT_PORT": "9000", "CAPSIGHT_API_KEY": "s3cret"})
    >>> settings.port, settings.api_key is not None
    (9000, True)
    >>> settings.replace(port=8080).port          # flags override the environment
    8080

Every field has an environment variable named ``CAPSIGHT_`` + the field name in capitals (listed
in ``ENV_VARS``), so a container is configured without a command line. Bad values raise
``InvalidParameter`` with the variable's name, never a traceback at start-up.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from capsight.errors import InvalidParameter


def default_job_dir() -> Path:
    """``$XDG_DATA_HOME/capsight/jobs`` (``~/.local/share/capsight/jobs`` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "capsight" / "jobs"


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1  # video analysis jobs run at once (each uses every core torch gives it)
    queue_size: int = 8  # jobs waiting for a worker before POST /v1/videos answers 503
    max_upload_mb: float = 200.0  # whole request body; larger answers 413
    max_images: int = 16  # images per POST /v1/captions
    api_key: str | None = field(default=None, repr=False)  # None: no key needed
    job_dir: Path = field(default_factory=default_job_dir)
    job_ttl_hours: float = 72.0  # finished jobs older than this are deleted; 0 keeps them
    request_timeout_s: float = 120.0  # a synchronous request (captions, legacy video) gives up
    job_timeout_s: float = 3600.0  # a video job running longer fails
    model: str = "default"  # captioner used when a request names none
    # Trained checkpoints served under a name of their own: "mine=runs/sat/best;b=runs/b"
    # (--captioner NAME=FOLDER, repeated). Clients name them, never a path (security).
    captioners: str | None = None
    inference_slots: int = 1  # caption requests computed at once; the rest wait their turn
    ui: bool = True  # mount the Gradio page at /ui
    log_level: str = "info"
    # Web pages on these origins may call the API from a browser (CORS): comma-separated
    # "https://app.example.com" entries, or "*" for any; None: only same-origin pages.
    cors_origins: str | None = None

    def __post_init__(self) -> None:
        for name in sorted(_FLOATS):  # inf MB or hours would crash the app as it starts
            problem = finite_problem(name, getattr(self, name))
            if problem:
                raise InvalidParameter(f"{option_name(name)} (or {env_var(name)}) {problem}")
        checks = [
            ("port", 1 <= self.port <= 65535, "must be in 1..65535"),
            ("workers", self.workers >= 1, "must be >= 1"),
            ("queue_size", self.queue_size >= 1, "must be >= 1"),
            ("max_upload_mb", self.max_upload_mb > 0, "must be > 0 (MiB)"),
            ("max_images", self.max_images >= 1, "must be >= 1"),
            ("job_ttl_hours", self.job_ttl_hours >= 0, "must be >= 0 (0 keeps jobs forever)"),
            ("request_timeout_s", self.request_timeout_s > 0, "must be > 0 (seconds)"),
            ("job_timeout_s", self.job_timeout_s > 0, "must be > 0 (seconds)"),
            ("inference_slots", self.inference_slots >= 1, "must be >= 1"),
        ]
        for name, ok, rule in checks:  # named as the user set it: flag or variable
            if not ok:
                value = getattr(self, name)  # an int as typed, not 1e+20; a float as 0.5
                shown = str(value) if isinstance(value, int) else f"{value:g}"
                raise InvalidParameter(
                    f"{option_name(name)} (or {env_var(name)}) {rule}, got {shown}"
                )
        if self.api_key is not None and self.api_key != self.api_key.strip():
            # A key read from a secret file ends in a newline, which no HTTP header can carry
            # (clients and servers strip a header value's ends): every request was refused.
            object.__setattr__(self, "api_key", self.api_key.strip())
        if self.api_key is not None and len(self.api_key) < 8:  # (the key itself is not shown)
            raise InvalidParameter(f"--api-key (or {env_var('api_key')}) needs >= 8 characters, "
                                   f"got {len(self.api_key)}")  # fmt: skip
        for origin in self.allowed_origins:
            host = origin.split("://", 1)[1] if "://" in origin else ""
            if origin != "*" and not (origin.startswith(("http://", "https://")) and host
                                      and not set("/*") & set(host)):  # fmt: skip
                raise InvalidParameter(
                    f"cors origins (or {env_var('cors_origins')}): {origin!r} is not an origin; "
                    "use scheme://host[:port], as https://app.example.com, or *"
                )
        if isinstance(self.job_dir, str) and not self.job_dir.strip():  # Path("") is "."
            raise InvalidParameter(f"--job-dir (or {env_var('job_dir')}) is empty; name a folder")
        object.__setattr__(self, "job_dir", Path(self.job_dir).expanduser())
        self.served_checkpoints  # noqa: B018 (a malformed entry is said at start-up)

    @property
    def allowed_origins(self) -> list[str]:
        """The CORS origins, one per entry (none when unset)."""
        # Browsers send the scheme and host in lower case.
        return [
            o.strip().rstrip("/").lower() for o in (self.cors_origins or "").split(",") if o.strip()
        ]

    @property
    def served_checkpoints(self) -> dict[str, str]:
        """``captioners`` as {name: folder}; InvalidParameter for an entry that is not
        NAME=FOLDER, a name that is no plain word or is given twice."""
        import re

        served: dict[str, str] = {}
        for entry in (self.captioners or "").split(";"):
            if not entry.strip():
                continue
            name, equals, folder = (part.strip() for part in entry.partition("="))
            where = f"--captioner (or {env_var('captioners')}) {entry.strip()!r}"
            if not equals or not folder:
                raise InvalidParameter(f"{where}: give NAME=FOLDER, e.g. mine=runs/sat/best")
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name):
                raise InvalidParameter(f"{where}: a name is letters, digits, '.', '_' or '-' "
                                       "(up to 64), starting with a letter or digit")  # fmt: skip
            if name in served or name in ("default", "checkpoint"):
                taken = "is given twice" if name in served else "is a name capsight uses"
                raise InvalidParameter(f"{where}: {name!r} {taken}")
            served[name] = folder
        return served

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

    def replace(self, **changes) -> ServerSettings:
        """A copy with ``changes`` applied; ``None`` values are ignored (an unset flag)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, skip: Collection[str] = ()
    ) -> ServerSettings:
        """Defaults overridden by every ``CAPSIGHT_<FIELD>`` variable that is set, except the
        fields in ``skip`` (set by a flag, which wins: its variable is not even read, so a
        malformed one cannot stop a server the flag configures)."""
        environ = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in dataclasses.fields(cls):
            raw = environ.get(env_var(f.name))
            if raw is None or raw == "" or f.name in skip:
                continue
            values[f.name] = _parse(f.name, raw)
        if "api_key" not in skip and (key_file := environ.get(API_KEY_FILE)):
            values["api_key"] = _key_from_file(key_file, "api_key" in values)
        return cls(**values)


# The API key from a file (a Docker or Kubernetes secret), so it is in no environment listing
# (`docker inspect` shows CAPSIGHT_API_KEY's value).
API_KEY_FILE = "CAPSIGHT_API_KEY_FILE"


def _key_from_file(path: str, also_given: bool) -> str:
    if also_given:
        raise InvalidParameter(f"CAPSIGHT_API_KEY and {API_KEY_FILE} are both set; keep one")
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
        raise InvalidParameter(f"{API_KEY_FILE}={path}: cannot read it ({why})") from None
    if len(key) < 8:  # (the key itself is not shown) the check's own words named --api-key
        raise InvalidParameter(
            f"{API_KEY_FILE}={path}: the key in it needs >= 8 characters, got {len(key)}"
        )
    return key


def finite_problem(name: str, value: float) -> str | None:
    """Why a float setting cannot be used ("must be a finite number, got inf"), or None."""
    if math.isfinite(value * _SCALE.get(name, 1)):
        return None
    return f"{'is too large' if math.isfinite(value) else 'must be a finite number'}, got {value:g}"


def env_var(field_name: str) -> str:
    return "CAPSIGHT_" + field_name.upper()


def option_name(field_name: str) -> str:
    """The ``capsight serve`` flag of a setting: ``--request-timeout`` for request_timeout_s."""
    return "--" + field_name.removesuffix("_s").replace("_", "-")


ENV_VARS = [env_var(f.name) for f in dataclasses.fields(ServerSettings)]

_INTS = {"port", "workers", "queue_size", "max_images", "inference_slots"}
_FLOATS = {"max_upload_mb", "job_ttl_hours", "request_timeout_s", "job_timeout_s"}
_BOOLS = {"ui"}
# Float settings that are multiplied before use: 1e308 MB is a finite number but infinite bytes.
_SCALE = {"max_upload_mb": 1024 * 1024, "job_ttl_hours": 3600}


def _parse(name: str, raw: str) -> object:
    try:
        if name in _INTS:
            return int(raw)
        if name in _FLOATS:
            return float(raw)
    except ValueError:
        kind = "a whole number" if name in _INTS else "a number"
        raise InvalidParameter(f"{env_var(name)}={raw!r} is not {kind}") from None
    if name in _BOOLS:
        lowered = raw.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise InvalidParameter(f"{env_var(name)}={raw!r}: use true or false")
    return raw  # (job_dir: a Path in __post_init__, which first refuses a blank one)
