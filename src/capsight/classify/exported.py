"""Run a classifier file that ``capsight classifier build`` wrote, as capsight runs its own.

    >>> clf = load_classifier("kitchen.pt")       # TorchScript; "kitchen.pt2": torch.export
    >>> clf.labels
    ['mug', 'teapot', 'kettle']
    >>> top_labels(clf, [load_image("mug.jpg")], k=1)[0]
    [('mug', 0.91)]

The file holds its own encoder, resize step and class names, so nothing else is loaded and the
scores are the ones the file gives anywhere else. A file this cannot read, or one without class
names, is refused with ``InvalidParameter``; pixels the file's own checks refuse raise it too.
Loading runs code the file carries (TorchScript; torch.export unpickles): load only files you
trust, as with any PyTorch model file.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from capsight.errors import InputNotFound, InvalidParameter

SUFFIXES = (".pt", ".pt2")
_LOGGER_SWAP = threading.Lock()
_NOT_A_CLASSIFIER = "not a classifier file (build one with `capsight classifier build`)"


class LoadedClassifier(nn.Module):
    """A loaded file behind the ``ImageClassifier`` interface: ``labels`` and pixels -> probs."""

    def __init__(self, network: nn.Module, labels: list[str], engine: str, path: Path) -> None:
        super().__init__()
        self.training = False
        self.network = network
        self.labels = labels
        self.engine = engine
        self.path = path

    def train(self, mode: bool = True) -> LoadedClassifier:
        """Only the flag: a loaded file runs as it was saved, in eval mode (a torch.export
        program refuses ``train()`` and ``eval()`` outright)."""
        self.training = mode
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if isinstance(images, torch.Tensor) and images.ndim == 4 and len(images) == 0:
            # a torch.export program's batch starts at 1
            return images.new_zeros(0, len(self.labels))
        if self.path.suffix == ".pt2" and isinstance(images, torch.Tensor) and images.ndim == 4:
            images = _within_export_sides(images)
        try:
            probs = self.network(images)
        except Exception as error:  # torch.jit.Error or the program's failed assertion
            last = (
                str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            )
            raise InvalidParameter(f"{self.path} refused the photo: {last}") from None
        return self._checked(probs, len(images))

    def _checked(self, probs: object, n: int) -> torch.Tensor:
        """A file capsight did not build may answer anything: (N, classes) probabilities only."""
        wanted = (
            f"(N, {len(self.labels)}) class probabilities for its {len(self.labels)} class names"
        )
        if not isinstance(probs, torch.Tensor) or tuple(probs.shape) != (n, len(self.labels)):
            got = tuple(probs.shape) if isinstance(probs, torch.Tensor) else type(probs).__name__
            raise InvalidParameter(f"{self.path}: answered {got} where a classifier gives "
                                   f"{wanted}; {_NOT_A_CLASSIFIER}")  # fmt: skip
        probs = probs.float()
        if not bool(torch.isfinite(probs).all()):  # ("rows sum to nan-nan")
            raise InvalidParameter(f"{self.path}: its scores are not numbers (NaN or infinite), as "
                                   "a damaged file's are; build or copy it again")  # fmt: skip
        sums = probs.sum(dim=1)
        if bool((probs < -1e-4).any()) or not bool(
            torch.allclose(sums, torch.ones_like(sums), atol=1e-3)
        ):
            raise InvalidParameter(f"{self.path}: its scores are not probabilities (rows "
                                   f"sum to {float(sums.min()):.3g}-{float(sums.max()):.3g}); "
                                   f"{_NOT_A_CLASSIFIER}")  # fmt: skip
        return probs

    def describe(self) -> dict:
        return {"engine": self.engine, "classes": len(self.labels), "file": str(self.path)}


# The sides a torch.export file takes (``export.py`` exports with this range).
EXPORT_SIDES = (2, 8192)


def _within_export_sides(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) resized, where a side is outside ``EXPORT_SIDES``, to the nearest size inside
    (the file squashes every photo to its own resolution anyway, so a 8,300 px panorama scores as
    it would have): the program refuses other sides outright."""
    low, high = EXPORT_SIDES
    h, w = images.shape[-2:]
    size = (min(max(h, low), high), min(max(w, low), high))
    if size == (h, w):
        return images
    down = size[0] <= h and size[1] <= w
    return torch.nn.functional.interpolate(
        images, size=size, mode="bilinear" if down else "nearest",
        **({"antialias": True, "align_corners": False} if down else {}),
    ).clamp(0.0, 1.0)  # fmt: skip


def _is_checkpoint(path: Path) -> bool:
    """A ``torch.save`` archive: pickled data, none of TorchScript's code and constants."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
    return any(n.endswith("/data.pkl") for n in names) and not any(
        n.endswith("/constants.pkl") or "/code/" in n for n in names)  # fmt: skip


def load_classifier(path: str | os.PathLike) -> LoadedClassifier:
    """The classifier in ``path`` (``.pt`` TorchScript or ``.pt2`` torch.export program)."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():  # (pathlib's TypeError)
        raise InvalidParameter(f"the classifier file must be a path, got {path!r:.60}")
    path = Path(path).expanduser()
    if not path.exists():
        raise InputNotFound(f"{path}: no such classifier file")
    if path.is_dir():
        raise InvalidParameter(f"{path}: is a folder; name a .pt or .pt2 classifier file")
    if path.suffix not in SUFFIXES:
        raise InvalidParameter(f"{path}: a classifier file ends in .pt (TorchScript) or .pt2 "
                               "(torch.export)")  # fmt: skip
    if not zipfile.is_zipfile(path):  # both formats are zip archives; torch's own error is long
        raise InvalidParameter(f"{path}: {_NOT_A_CLASSIFIER}")
    if path.suffix == ".pt" and _is_checkpoint(path):  # torch's error: "likely ... corrupted"
        raise InvalidParameter(f"{path}: a checkpoint of torch.save (weights, no code), not a "
                               f"TorchScript module; {_NOT_A_CLASSIFIER}")  # fmt: skip
    extra = {"labels.json": "", "engine": ""}
    logged: list[BaseException] = []
    try:
        if path.suffix == ".pt":
            network = torch.jit.load(str(path), map_location="cpu", _extra_files=extra).eval()
            labels = list(getattr(network, "labels", None) or [])
        else:
            with _logged_errors("torch.export") as logged:  # it logs a traceback, then raises
                # Its module has no eval(): the program was exported in eval mode and stays so.
                network = torch.export.load(str(path), extra_files=extra).module()
            labels = json.loads(_text(extra["labels.json"]) or "[]")
    except Exception as error:  # RuntimeError, torch.jit.Error, KeyError, JSON's ValueError...
        said = logged[-1] if path.suffix == ".pt2" and logged else error
        reason = " ".join(str(said).split())[:200] or type(said).__name__
        raise InvalidParameter(f"{path}: {_NOT_A_CLASSIFIER}; torch says: {reason}") from None
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise InvalidParameter(f"{path}: has no class names; {_NOT_A_CLASSIFIER}")
    return LoadedClassifier(network, labels, _text(extra["engine"]) or "file", path)


@contextmanager
def _logged_errors(name: str) -> Iterator[list[BaseException]]:
    """Keep the exceptions logger ``name`` logs (kept off stderr) in the yielded list."""
    seen: list[BaseException] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.exc_info and record.exc_info[1] is not None:
                seen.append(record.exc_info[1])

    logger, handler = logging.getLogger(name), Keep()
    # Its own handlers too: torch's logging set-up gives "torch.export" one of its own. Under a
    # lock: two loads at once would otherwise restore each other's swapped-in state.
    with _LOGGER_SWAP:
        handlers, propagate = logger.handlers[:], logger.propagate
        logger.handlers, logger.propagate = [handler], False
        try:
            yield seen
        finally:
            logger.handlers, logger.propagate = handlers, propagate


def _text(value: str | bytes) -> str:
    """An extra file's content: TorchScript hands back bytes, torch.export a string."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
