"""Loading a dataset's JSON file with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from capsight.errors import DatasetError, InputNotFound


def load_json(path: Path) -> Any:
    if not path.is_file():
        raise InputNotFound(f"{path}: no such caption file")
    try:
        with path.open(encoding="utf-8-sig") as f:  # a byte-order mark is allowed
            text = f.read()
        if not text.strip():
            raise DatasetError(f"{path}: is empty; it should hold the captions as JSON")
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc}); fix or re-download the file") from None
