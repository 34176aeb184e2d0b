"""One server per job folder: ``capsight serve`` holds an exclusive lock on ``JOB_DIR/server.lock``
while it runs. A second server on the same folder had marked the first one's running job
"interrupted by a server restart", run its queued job, and left the first to run it again
on an input that was gone.

    >>> lock = hold_job_dir(Path("jobs"))   # keep it referenced: the lock goes with the file
    >>> hold_job_dir(Path("jobs"))          # another process: InvalidParameter naming the pid

The lock is the kernel's (``flock``): it ends with the process, however that ends, so a
killed server leaves no stale lock behind. Where ``fcntl`` is missing (Windows), or the file
system has no locks (some network mounts: a warning is logged), nothing is locked.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO

from capsight.errors import InvalidParameter

LOCK_NAME = "server.lock"
log = logging.getLogger("capsight.server")


def hold_job_dir(job_dir: Path) -> IO[str] | None:
    """Lock ``job_dir`` for this process and return the open lock file (None without fcntl, or
    on a file system without locks);
    InvalidParameter when another process holds it."""
    from capsight.io.pid_lock import lock_or_holder

    path = Path(job_dir) / LOCK_NAME
    try:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held while the server runs)
    except OSError as exc:  # (another user's lock file, say)
        raise InvalidParameter(f"{path}: cannot open the job folder's lock file ({exc.strerror}); "
                               "make it writable, or give another --job-dir") from None  # fmt: skip
    try:
        holder = lock_or_holder(handle)
    except ImportError:  # (Windows)
        handle.close()
        return None
    except OSError as exc:  # a file system without locks (some network mounts): run unlocked
        handle.close()
        log.warning("%s: cannot lock the job folder (%s); make sure no other server uses it",
                    job_dir, exc.strerror)  # fmt: skip
        return None
    if holder is not None:
        handle.close()
        who = f" (pid {holder})" if holder else ""
        raise InvalidParameter(f"{job_dir}: another capsight server{who} is using this job "
                               "folder; give each server its own --job-dir")  # fmt: skip
    return handle
