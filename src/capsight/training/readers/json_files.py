"""Loading a dataset's JSON file with errors that name the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from capsight.errors import DatasetError, InputNotFound


def load_json(path: Path, holds: str = "the captions") -> Any:
    """``path``'s JSON (``holds``: what it should hold, for the errors: "the splits")."""
    if not path.is_file():
        raise InputNotFound(f"{path}: no such caption file")
    try:
        with path.open(encoding="utf-8-sig") as f:  # a byte-order mark is allowed
            text = f.read()
        if not text.strip():
            raise DatasetError(f"{path}: is empty; it should hold {holds} as JSON")
        return json.loads(text, object_pairs_hook=_no_repeated_keys(path))
    except UnicodeDecodeError as exc:  # the JSON may be fine: it is the encoding ("not valid JSON")
        raise DatasetError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}), as JSON "
                           "must be: save the file as UTF-8") from None  # fmt: skip
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc}); fix or re-download the file") from None
    except RecursionError:  # "[[[[...": nested past Python's limit
        raise DatasetError(f"{path}: nested too deeply to be a caption file") from None


def _no_repeated_keys(path: Path):
    """A JSON object with a key twice kept its last value without a word (a photo's five
    captions replaced by another line's one)."""

    def build(pairs: list[tuple[str, Any]]) -> dict:
        out: dict = {}
        for key, value in pairs:
            if key in out:
                raise DatasetError(f"{path}: {key!r} appears twice in one object; keep one")
            out[key] = value
        return out

    return build
