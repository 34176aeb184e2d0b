"""An exclusive lock on an open file, holding the id of the process that holds it: one server per
job folder (``server.job_dir_lock``), one training run per run folder (``training.run_folder``).

    >>> with open("jobs/server.lock", "a+") as handle:
    ...     holder = lock_or_holder(handle)   # None: ours now; "1234": process 1234 holds it

The lock is the kernel's (``flock``): it ends with the process, however that ends, so a killed
process leaves no stale lock behind.
"""

from __future__ import annotations

import os
from typing import IO


def lock_or_holder(handle: IO[str]) -> str | None:
    """Lock the open ``handle`` (opened "a+") without waiting and write this process's id into
    it: None once locked; when another process holds it, that process's id as the file holds it
    ("" if it holds none). OSError where the file system has no locks (some network mounts);
    ImportError without ``fcntl`` (Windows)."""
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read(20).strip()
        return holder if holder.isdigit() else ""
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return None
