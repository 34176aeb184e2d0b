"""A Hugging Face hub id resolved to its folder in the local cache, without the network.

    >>> cached_folder("openai/clip-vit-base-patch32")    # the snapshot folder, or None
    >>> cached_folder("./my-clip")                       # a folder is itself

transformers' ``from_pretrained(hub_id, local_files_only=True)`` still looked up huggingface.co
(transformers 5.25, seen by a fake DNS server); handed the cached snapshot folder instead, it
reads the disk only. capsight downloads nothing.
"""

from __future__ import annotations

import os
from pathlib import Path


def cached_folder(path_or_id: str | os.PathLike) -> str | None:
    """``path_or_id`` itself when it exists on disk; else the local cache's snapshot of that
    hub id; None when it is neither."""
    path = Path(path_or_id).expanduser()
    if path.exists():
        return str(path)
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(str(path_or_id), local_files_only=True)
    except Exception:  # not cached, not a valid hub id, huggingface_hub missing: none here
        return None
