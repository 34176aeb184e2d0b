"""One server per job folder: ``capsight serve`` holds an exclusive lock on ``JOB_DIR/server.lock``
while it runs. A second server on the same folder had marked the first one's running job
"interrupted by a server restart", run its queued job, and left the first to run it again
on an input that was gone.

    >>> lock = hold_job_dir(Path("jobs"))   # keep it referenced: the lock goes with the file
    >>> hold_job_dir(Path("jobs"))          # another process: InvalidParameter naming the pid

The lock is the kernel's (``flock``): it ends with the process, however that ends, so a
killed server leaves no stale lock behind. Where ``fcntl`` is missing (Windows) nothing is
locked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO

from capsight.errors import InvalidParameter

LOCK_NAME = "server.lock"


def hold_job_dir(job_dir: Path) -> IO[str] | None:
    """Lock ``job_dir`` for this process and return the open lock file (None without fcntl);
    InvalidParameter when another process holds it."""
    try:
        import fcntl
    except ImportError:  # (Windows)
        return None
    handle = open(Path(job_dir) / LOCK_NAME, "a+", encoding="utf-8")  # noqa: SIM115 (held)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        who = f" (pid {holder})" if holder.isdigit() else ""
        raise InvalidParameter(f"{job_dir}: another capsight server{who} is using this job "
                               "folder; give each server its own --job-dir") from None  # fmt: skip
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle
