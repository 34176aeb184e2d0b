"""Where capsight keeps what it can make again: ``$CAPSIGHT_CACHE``, by default ``~/.cache/capsight``.

    >>> cache_root() / "onnx"          # PosixPath('/home/me/.cache/capsight/onnx')

Every cache lives under it: the ONNX graphs of video analysis (``onnx/``), the text embeddings
of class prompts (``classify/``) and training's cached encoder features (``features/``). Unset
or empty, the default; ``~`` is expanded; a relative path is taken from the current folder (so
each folder a command runs in gets its own cache) and made absolute, as messages show it.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    value = os.environ.get("CAPSIGHT_CACHE", "").strip()
    root = Path(value).expanduser() if value else Path.home() / ".cache" / "capsight"
    return Path(os.path.abspath(root))
