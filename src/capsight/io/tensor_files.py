"""Tensors saved through Python's own file writes, whole or not at all.

    >>> save_tensors({"w": weights}, folder / "model.safetensors", metadata={"format": "pt"})
    >>> save_torch(optimizer.state_dict(), folder / "optimizer.pt")

safetensors' writer reports a full disk as a ``SafetensorError`` and torch's as a
``RuntimeError`` ("unexpected pos ..."), which no caller knows as a failed write: a training
run that ran out of room ended in a traceback. Serialised in memory first and written by
``write_whole``, a failed write is an ``OSError`` naming the file (``capsight``'s main prints it
in one line), and the file is left as it was. The cost: a second copy of what is saved in
memory while it is written (a checkpoint and its optimizer state, one at a time).
"""

from __future__ import annotations

import io
from pathlib import Path

import torch
from safetensors.torch import save

from capsight.io.new_files import write_whole


def save_tensors(
    tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str] | None = None
) -> None:
    data = save(tensors, metadata=metadata)
    write_whole(Path(path), lambda file: file.write(data))


def save_torch(obj: object, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    write_whole(Path(path), lambda file: file.write(buffer.getbuffer()))
