"""A Hugging Face hub id resolved to its folder in the local cache, by reading the disk only.

    >>> cached_folder("openai/clip-vit-base-patch32")    # the snapshot folder, or None
    >>> cached_folder("./my-clip")                       # a folder is itself

Runs only when a user names such a model (``--clip``, ``PrefixGPT2.from_pretrained``).
transformers' ``from_pretrained(hub_id, local_files_only=True)`` still looked up huggingface.co
(transformers 5.25, seen by a fake DNS server); handed the cached snapshot folder instead, it
reads the disk only. The folder is found as the hub cache lays it out, with no hub client call:
``$HF_HUB_CACHE/models--<owner>--<name>/refs/main`` names the snapshot in ``snapshots/``.
capsight downloads nothing.
"""

from __future__ import annotations

import os
from pathlib import Path


def hub_cache_dir() -> Path:
    """Where the Hugging Face hub keeps downloaded models (its own environment variables)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = (
        os.environ.get("HF_HOME")
        or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "huggingface"
    )
    return Path(home).expanduser() / "hub"


def cached_folder(path_or_id: str | os.PathLike) -> str | None:
    """``path_or_id`` itself when it exists on disk; else the local cache's snapshot of that
    hub id (its ``main`` revision); None when it is neither."""
    path = Path(path_or_id).expanduser()
    if path.exists():
        return str(path)
    parts = str(path_or_id).split("/")
    if not 1 <= len(parts) <= 2 or not all(parts) or any(p in (".", "..") for p in parts):
        return None  # not a hub id ("owner/name" or "name")
    repo = hub_cache_dir() / ("models--" + "--".join(parts))
    try:
        revision = (repo / "refs" / "main").read_text("utf-8").strip()
    except OSError:
        return None
    snapshot = repo / "snapshots" / revision
    return str(snapshot) if revision and snapshot.is_dir() else None
