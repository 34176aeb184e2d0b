"""Video jobs that lose nothing: a bounded worker pool, a SQLite job store, files on disk.

    >>> store = JobStore(Path("/var/lib/capsight/jobs"))
    >>> manager = JobManager(store, engine, workers=1, queue_size=8)
    >>> manager.start()                     # marks jobs a dead server was running `interrupted`
    >>> job = manager.submit(upload_file, "clip.mp4", "mp4", VideoParams(every=1.0))
    >>> manager.get(job.id).status          # queued -> running -> done | failed
    'running'
    >>> manager.artifact_path(job.id, "report")   # job_dir/<id>/out/report.html

Layout of the job folder (every name chosen by the server, never by a client)::

    <job_dir>/jobs.sqlite3            one row per job (status, progress, params, summary)
    <job_dir>/<id>/input.<ext>        the upload, extension from its content (until the job ends)
    <job_dir>/<id>/out/               analysis.json moments.csv novelty.png report.html captions.vtt
    <job_dir>/<id>/thumbs/<i>.jpg     thumbnails of the novel moments (i = index in moments)

A full queue raises ``QueueFull`` (the API answers 503 with Retry-After) instead of waiting. On
start-up, jobs left ``running`` by a server that died become ``interrupted`` (the client submits
the video again) and ``queued`` ones are queued again. A job's upload is deleted when the job
ends, whatever the outcome; its outputs stay until it expires, ``ttl_hours`` after it finished.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import queue
import re
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from capsight.errors import CapsightError, InvalidParameter

if TYPE_CHECKING:
    from capsight.server.engine import Engine, VideoParams

log = logging.getLogger("capsight.server.jobs")

QUEUED, RUNNING, DONE, FAILED, INTERRUPTED = "queued", "running", "done", "failed", "interrupted"
TERMINAL = (DONE, FAILED, INTERRUPTED)

# Downloadable outputs of a finished job: API name -> (file in out/, media type).
ARTIFACTS: dict[str, tuple[str, str]] = {
    "report": ("report.html", "text/html; charset=utf-8"),
    "plot": ("novelty.png", "image/png"),
    "csv": ("moments.csv", "text/csv; charset=utf-8"),
    "vtt": ("captions.vtt", "text/vtt; charset=utf-8"),
    "json": ("analysis.json", "application/json"),
}

_JOB_ID = re.compile(r"^[0-9a-f]{32}$")
_PROGRESS_WRITE_INTERVAL_S = 1.0  # progress reaches SQLite at most this often (memory: always)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id          TEXT PRIMARY KEY,
    status      TEXT NOT NULL,
    progress    REAL NOT NULL DEFAULT 0,
    message     TEXT NOT NULL DEFAULT '',
    error       TEXT,
    params      TEXT NOT NULL,
    filename    TEXT NOT NULL,
    input_name  TEXT NOT NULL,
    size_bytes  INTEGER NOT NULL,
    summary     TEXT,
    created_at  REAL NOT NULL,
    started_at  REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status);
"""


class QueueFull(Exception):
    """Every worker is busy and the queue holds ``queue_size`` jobs already."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"the video queue is full; retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class _Stop(Exception):
    """Raised inside a running analysis to stop it (job deleted, server stopping, time limit)."""


@dataclass
class Job:
    id: str
    status: str
    params: dict
    filename: str  # the client's name, for display only
    input_name: str  # the stored upload's name inside the job folder
    size_bytes: int
    created_at: float
    progress: float = 0.0
    message: str = ""
    error: str | None = None
    summary: dict = field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL


def valid_job_id(job_id: str) -> bool:
    return bool(_JOB_ID.fullmatch(job_id))


def prepare_job_dir(root: Path) -> None:
    """Create the job folder if needed; InvalidParameter unless it is a folder we can write."""
    advice = "give --job-dir (or CAPSIGHT_JOB_DIR) a folder the server can write"
    if root.exists() and not root.is_dir():
        raise InvalidParameter(f"job folder {root} is not a folder; {advice}")
    try:
        root.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=root).close()
    except OSError as exc:
        raise InvalidParameter(
            f"cannot use {root} as the job folder ({exc.strerror or exc}); {advice}"
        ) from None


class JobStore:
    """Jobs in SQLite (``<root>/jobs.sqlite3``) and their files in ``<root>/<id>/``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        prepare_job_dir(self.root)
        self._lock = threading.Lock()
        self.closed = False
        database = self.root / "jobs.sqlite3"
        try:  # made here, under the umask: SQLite makes it 0644 whatever the umask, so another
            # uid of the group (a container platform's next start) could not write it
            os.close(os.open(database, os.O_CREAT | os.O_WRONLY, 0o666))
        except OSError:  # (a folder of that name, no permission: SQLite says so below)
            pass
        self._db = sqlite3.connect(database, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        try:
            with self._lock:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(_SCHEMA)
                # A write, now: a database the server may only read (another user's, restored
                # from a backup) had passed the folder's check and made every job a 500.
                version = self._db.execute("PRAGMA user_version").fetchone()[0]
                self._db.execute(f"PRAGMA user_version = {int(version)}")
        except sqlite3.Error as exc:
            self._db.close()
            if isinstance(exc, sqlite3.DatabaseError) and any(
                words in str(exc) for words in ("not a database", "malformed")
            ):  # a damaged file, or another program's: not a permission
                raise InvalidParameter(f"{database}: not a job database (damaged, or another "
                                       "program's file); move it away, or give --job-dir (or "
                                       "CAPSIGHT_JOB_DIR) another folder") from None  # fmt: skip
            raise InvalidParameter(f"cannot write the job database {database} ({exc}); give --job-dir "
                                   "(or CAPSIGHT_JOB_DIR) a folder whose files the server can write") from None  # fmt: skip

    def close(self) -> None:
        """Close the database; later writes (a worker still finishing) are ignored."""
        with self._lock:
            self.closed = True
            self._db.close()

    def job_path(self, job_id: str) -> Path:
        if not valid_job_id(job_id):
            raise KeyError(job_id)
        return self.root / job_id

    def insert(self, job: Job) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO jobs (id, status, progress, message, error, params, filename,"
                " input_name, size_bytes, summary, created_at, started_at, finished_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.status,
                    job.progress,
                    job.message,
                    job.error,
                    json.dumps(job.params),
                    job.filename,
                    job.input_name,
                    job.size_bytes,
                    json.dumps(job.summary),
                    job.created_at,
                    job.started_at,
                    job.finished_at,
                ),
            )

    def update(self, job_id: str, **fields) -> None:
        if "params" in fields:
            fields["params"] = json.dumps(fields["params"])
        if "summary" in fields:
            fields["summary"] = json.dumps(fields["summary"])
        columns = ", ".join(f"{name} = ?" for name in fields)
        with self._lock:
            if self.closed:
                return
            self._db.execute(f"UPDATE jobs SET {columns} WHERE id = ?", [*fields.values(), job_id])

    def get(self, job_id: str) -> Job | None:
        if not valid_job_id(job_id):
            return None
        with self._lock:
            if self.closed:
                return None
            row = self._db.execute("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return _row_to_job(row) if row else None

    def list(self, limit: int = 50, offset: int = 0, status: str | None = None) -> list[Job]:
        query, args = "SELECT * FROM jobs", []
        if status:
            query, args = query + " WHERE status = ?", [status]
        query += " ORDER BY created_at DESC LIMIT ? OFFSET ?"
        with self._lock:
            rows = self._db.execute(query, [*args, limit, offset]).fetchall()
        return [_row_to_job(r) for r in rows]

    def count(self, status: str | None = None) -> int:
        """How many jobs there are (with ``status``, when given)."""
        query, args = "SELECT COUNT(*) FROM jobs", []
        if status:
            query, args = query + " WHERE status = ?", [status]
        with self._lock:
            return int(self._db.execute(query, args).fetchone()[0])

    def ids_with_status(self, *statuses: str) -> list[str]:
        marks = ", ".join("?" for _ in statuses)
        with self._lock:
            rows = self._db.execute(
                f"SELECT id FROM jobs WHERE status IN ({marks}) ORDER BY created_at", statuses
            ).fetchall()
        return [r["id"] for r in rows]

    def finished_before(self, cutoff: float) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM jobs WHERE finished_at IS NOT NULL AND finished_at < ?", (cutoff,)
            ).fetchall()
        return [r["id"] for r in rows]

    def delete(self, job_id: str) -> bool:
        with self._lock:
            deleted = self._db.execute("DELETE FROM jobs WHERE id = ?", (job_id,)).rowcount
        shutil.rmtree(self.job_path(job_id), ignore_errors=True)
        return bool(deleted)

    def orphan_dirs(self) -> list[Path]:
        """Job folders without a row (a crash between creating the folder and the row)."""
        with self._lock:
            known = {r["id"] for r in self._db.execute("SELECT id FROM jobs").fetchall()}
        return [p for p in self.root.iterdir() if p.is_dir() and valid_job_id(p.name)
                and p.name not in known]  # fmt: skip


def _row_to_job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        status=row["status"],
        params=json.loads(row["params"]),
        filename=row["filename"],
        input_name=row["input_name"],
        size_bytes=row["size_bytes"],
        created_at=row["created_at"],
        progress=row["progress"],
        message=row["message"],
        error=row["error"],
        summary=json.loads(row["summary"] or "{}"),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


class JobManager:
    """Runs video jobs on ``workers`` threads; at most ``queue_size`` wait for one."""

    def __init__(
        self,
        store: JobStore,
        engine: Engine,
        workers: int = 1,
        queue_size: int = 8,
        ttl_hours: float = 72.0,
        job_timeout_s: float = 3600.0,
    ) -> None:
        self.store = store
        self.engine = engine
        self.workers = workers
        self.queue_size = queue_size
        self.ttl_hours = ttl_hours
        self.job_timeout_s = job_timeout_s
        self._queue: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        # queued, not yet picked up, in the order they run (a dict: ordered, as the queue is)
        self._waiting: dict[str, None] = {}
        self._running: set[str] = set()
        self._cancel: set[str] = set()  # running jobs asked to stop (deleted)
        # Jobs whose summary note names the original server's fields (every_n_second, ...):
        # those /get_video_captions queued, polled on /v1/jobs after its 504. In memory: a job
        # the server restarts under is interrupted, and its note never written.
        self._faces: dict[str, str] = {}
        self._live: dict[str, tuple[float, str]] = {}  # job id -> (progress, message)
        self._started: dict[str, float] = {}  # running job id -> time.time() it started
        self._durations: list[float] = []  # recent job run times, for Retry-After
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        """Recover what a previous server left, then start the workers and the janitor."""
        now = time.time()
        for job_id in self.store.ids_with_status(RUNNING):
            self.store.update(
                job_id,
                status=INTERRUPTED,
                finished_at=now,
                error="the server stopped while this job was running; submit the video again",
                message="interrupted",
            )
            log.warning("job %s was interrupted by a server restart", job_id)
            job = self.store.get(job_id)
            if job is not None:
                self.input_path(job).unlink(missing_ok=True)
        for job_id in self.store.ids_with_status(QUEUED):
            self._waiting[job_id] = None
            self._queue.put(job_id)
        for i in range(self.workers):
            t = threading.Thread(target=self._work, name=f"capsight-job-{i}", daemon=True)
            t.start()
            self._threads.append(t)
        janitor = threading.Thread(target=self._expire_loop, name="capsight-janitor", daemon=True)
        janitor.start()
        self._threads.append(janitor)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the workers; a job still running is marked interrupted, not lost."""
        self._stop.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()
        for job_id in list(self._running):  # a worker stuck past the timeout
            self._finish(job_id, INTERRUPTED, "the server stopped while this job was running;"
                         " submit the video again")  # fmt: skip

    # -- submitting and reading -------------------------------------------------------------
    def reserve(self) -> None:
        """Raise QueueFull when a new job could not be queued now (checked before uploading)."""
        with self._lock:
            if len(self._waiting) >= self.queue_size:
                raise QueueFull(self.retry_after_s())

    def retry_after_s(self) -> int:
        """Seconds until a place in a full queue is likely to open: when the first running job
        ends and its worker takes a waiting one. Each job's end is told from its progress so
        far; the median of recent jobs stands in for one too new to tell. (The median alone
        had told clients to come back in 5 s all through a 10-minute video.)"""
        typical = sorted(self._durations)[len(self._durations) // 2] if self._durations else 30.0
        now, left = time.time(), []
        for job_id in list(self._running):
            if (started := self._started.get(job_id)) is None:
                continue
            elapsed = max(0.0, now - started)
            fraction = self._live.get(job_id, (0.0, ""))[0]
            if fraction >= 0.05:
                guess = elapsed * (1.0 - fraction) / fraction
            else:  # too early to tell: as long as the typical job, or as long again once past it,
                # or half what a first percent or more of progress foretells (3.4% of a 55 s job
                # in had said 2 s, the recent short jobs' median, and clients came straight back)
                early = elapsed * (1.0 - fraction) / fraction / 2 if fraction >= 0.01 else 0.0
                guess = max(typical - elapsed, elapsed, early)
            left.append(min(guess, self.job_timeout_s - elapsed))  # it is stopped there anyway
        soonest = min(left) if left else typical
        return max(1, min(600, math.ceil(soonest)))

    def submit(
        self,
        upload: IO[bytes],
        filename: str,
        extension: str,
        params: VideoParams,
        validate: Callable[[Path], object] | None = None,
        face: str = "api",
    ) -> Job:
        """Store the upload in a new job folder and queue it; QueueFull when no room.

        ``validate(path)`` runs on the stored file before the job is queued (a probe that raises
        ``VideoOpenError`` for a corrupt file); if it raises, nothing is kept. ``face``: how the
        summary's note names the settings (``Analysis.notes``: "legacy" for the original
        server's endpoint).
        """
        self.reserve()
        job_id = uuid.uuid4().hex
        folder = self.store.job_path(job_id)
        folder.mkdir(parents=True)
        input_name = "input" + extension
        try:
            with open(folder / input_name, "wb") as out:
                shutil.copyfileobj(upload, out, length=1024 * 1024)
            size = (folder / input_name).stat().st_size
            if validate is not None:
                try:
                    validate(folder / input_name)
                except CapsightError as exc:
                    raise type(exc)(_as_client_sees(exc, folder / input_name, filename)) from None
            job = Job(job_id, QUEUED, params.to_dict(), filename, input_name, size, time.time(),
                      message="waiting for a worker")  # fmt: skip
            with self._lock:
                if len(self._waiting) >= self.queue_size:  # filled while we copied
                    raise QueueFull(self.retry_after_s())
                self.store.insert(job)
                self._waiting[job_id] = None
                if face != "api":
                    self._faces[job_id] = face
                self._queue.put(job_id)  # (in the lock: the queue's order is _waiting's)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._as_now(job)  # (its place, as GET says it)
        return job

    def get(self, job_id: str) -> Job | None:
        job = self.store.get(job_id)
        if job is not None:
            self._as_now(job)
        return job

    def list(self, limit: int = 50, offset: int = 0, status: str | None = None) -> list[Job]:
        jobs = self.store.list(limit, offset, status)
        for job in jobs:
            self._as_now(job)
        return jobs

    def _as_now(self, job: Job) -> None:
        """A running job's progress as it is now; a queued one's place in the queue (it had
        said "waiting for a worker" whether first or eighth: an audit, 2026-12-08)."""
        if job.status == RUNNING and job.id in self._live:
            job.progress, job.message = self._live[job.id]
        elif job.status == QUEUED:
            with self._lock:
                order = list(self._waiting)
            if job.id in order:
                ahead = order.index(job.id)
                job.message = (f"waiting for a worker: {ahead} job{'s' * (ahead != 1)} ahead of it"
                               if ahead else "waiting for a worker: next")  # fmt: skip

    def delete(self, job_id: str) -> bool:
        """Forget a job and its files; a running one is stopped first."""
        with self._lock:
            self._waiting.pop(job_id, None)
            if job_id in self._running:
                self._cancel.add(job_id)
        return self.store.delete(job_id)

    def analysis(self, job_id: str) -> dict | None:
        path = self.artifact_path(job_id, "json")
        return json.loads(path.read_text()) if path.is_file() else None

    def artifact_path(self, job_id: str, artifact: str) -> Path:
        return self.store.job_path(job_id) / "out" / ARTIFACTS[artifact][0]

    def thumbnail_path(self, job_id: str, index: int) -> Path:
        return self.store.job_path(job_id) / "thumbs" / f"{int(index)}.jpg"

    def input_path(self, job: Job) -> Path:
        return self.store.job_path(job.id) / job.input_name

    @property
    def queued(self) -> int:
        return len(self._waiting)

    @property
    def running(self) -> int:
        return len(self._running)

    # -- workers ----------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                job_id = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            with self._lock:
                if job_id not in self._waiting:
                    continue  # deleted while waiting
                self._waiting.pop(job_id, None)
                self._running.add(job_id)
            try:
                self._run(job_id)
            finally:
                with self._lock:
                    self._running.discard(job_id)
                    self._cancel.discard(job_id)
                self._live.pop(job_id, None)
                self._started.pop(job_id, None)

    def _run(self, job_id: str) -> None:
        from capsight.server.engine import VideoParams

        face = self._faces.pop(job_id, "api")
        job = self.store.get(job_id)
        if job is None:
            return
        started = self._started[job_id] = time.time()
        self.store.update(job_id, status=RUNNING, started_at=started, message="starting")
        last_write = [0.0]

        def on_progress(fraction: float, message: str) -> None:
            if self._stop.is_set() or job_id in self._cancel:
                raise _Stop("stopped")
            if time.time() - started > self.job_timeout_s:
                raise _Stop(f"took longer than the {self.job_timeout_s:g} s job limit")
            fraction = min(max(float(fraction), 0.0), 1.0)
            self._live[job_id] = (fraction, message)
            now = time.monotonic()
            if now - last_write[0] >= _PROGRESS_WRITE_INTERVAL_S:
                last_write[0] = now
                self.store.update(job_id, progress=fraction, message=message)

        try:
            params = VideoParams(**job.params)
            analysis = self.engine.analyze(self.input_path(job), params, progress=on_progress)
            # Reports show the client's file name, never the server's path to its copy.
            analysis.video = dataclasses.replace(analysis.video, path=job.filename)
            on_progress(1.0, "writing the report")
            folder = self.store.job_path(job_id)
            try:
                self.engine.write_outputs(analysis, folder / "out")
                _save_thumbnails(analysis, folder / "thumbs")
            except (OSError, CapsightError) as exc:  # a full disk: the server's fault, not theirs
                # deleted meanwhile: its folder went from under the writer
                if job_id in self._cancel:
                    raise _Stop("deleted") from None
                log.error("job %s: cannot save its outputs: %s", job_id, exc)
                self._finish(job_id, FAILED, "the server could not save this job's outputs (is "
                             "its disk full?); try again later")  # fmt: skip
                return
            if job_id in self._cancel:  # deleted while its outputs were written, which re-made
                raise _Stop("deleted")  # its folder after the delete had removed it
            summary = {
                "moments": len(analysis.moments),
                "novel_moments": len(analysis.novel_moments),
                "duration": analysis.video.duration,
                "seconds": round(time.time() - started, 3),
                # why no moment is novel, and which field to change; frames that end early; a
                # window that spans too little video (null when none applies)
                "note": "; ".join(analysis.notes(face=face)) or None,
            }
            self._durations = (self._durations + [time.time() - started])[-20:]
            self.store.update(job_id, status=DONE, progress=1.0, message="done",
                              summary=summary, finished_at=time.time())  # fmt: skip
            log.info("job %s done: %s", job_id, summary)
        except _Stop as stop:
            if job_id in self._cancel:  # deleted: its row is gone, and its files but for any
                shutil.rmtree(self.store.job_path(job_id), ignore_errors=True)  # written since
                return
            if self._stop.is_set():
                self._finish(job_id, INTERRUPTED, "the server stopped while this job was running;"
                             " submit the video again")  # fmt: skip
            else:
                self._finish(job_id, FAILED, str(stop))
        except CapsightError as exc:
            self._finish(job_id, FAILED, _as_client_sees(exc, self.input_path(job), job.filename))
        except Exception as exc:
            log.exception("job %s failed", job_id)
            self._finish(job_id, FAILED, f"internal error ({type(exc).__name__}); see server log")
        finally:
            # The upload is read once: a finished job keeps only its outputs. (The page serves
            # files of the job folder; a client's original video is never handed back.)
            self.input_path(job).unlink(missing_ok=True)

    def _finish(self, job_id: str, status: str, error: str) -> None:
        if self.store.get(job_id) is not None:
            # The progress reached, which the store saves at most once a second: a failed job's
            # progress went back from the last event's 0.124 to the saved 0.0615.
            live = {"progress": self._live[job_id][0]} if job_id in self._live else {}
            self.store.update(job_id, status=status, error=error, message=status,
                              finished_at=time.time(), **live)  # fmt: skip

    # -- expiry -----------------------------------------------------------------------------
    def expire(self, now: float | None = None) -> list[str]:
        """Delete finished jobs older than the TTL and orphaned folders; returns deleted ids."""
        now = time.time() if now is None else now
        removed = []
        if self.ttl_hours > 0:
            for job_id in self.store.finished_before(now - self.ttl_hours * 3600):
                self.store.delete(job_id)
                removed.append(job_id)
        for folder in self.store.orphan_dirs():
            if now - folder.stat().st_mtime > 3600 and self.store.get(folder.name) is None:
                shutil.rmtree(folder, ignore_errors=True)
        if removed:
            log.info("expired %d job(s)", len(removed))
        return removed

    def _expire_loop(self) -> None:
        interval = 60.0 if self.ttl_hours == 0 else min(600.0, max(5.0, self.ttl_hours * 360))
        while not self._stop.wait(interval):
            try:
                self.expire()
            except Exception:
                log.exception("job expiry failed")


def _as_client_sees(exc: CapsightError, stored: Path, filename: str) -> str:
    """``exc``'s message naming the client's file, never the server's path to its copy."""
    message = str(exc)
    # Longest first: a relative or symlinked job folder's path is part of its resolved one.
    for path in sorted({str(stored.resolve()), str(stored)}, key=len, reverse=True):
        message = message.replace(path, filename)
    return message


def _save_thumbnails(analysis, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for index, moment in enumerate(analysis.moments):
        if moment.is_novel and moment.thumbnail:
            (folder / f"{index}.jpg").write_bytes(moment.thumbnail)
