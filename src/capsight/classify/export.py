"""Classifiers that travel: save a built classifier as a file that needs only ``torch``.

    >>> save_classifier(clf, "clf.pt")      # TorchScript
    >>> save_classifier(clf, "clf.pt2")     # torch.export (ExportedProgram)

Anywhere with torch installed (no capsight)::

    import torch
    m = torch.jit.load("clf.pt")
    probs = m(images)                       # images (N, 3, H, W) RGB floats in [0, 1], any H, W
    m.labels                                # the class names, in column order

    extra = {"labels.json": ""}
    ep = torch.export.load("clf.pt2", extra_files=extra)
    probs = ep.module()(images); labels = json.loads(extra["labels.json"])

The file holds the encoder, the resize step and the class weights, nothing else (the offline
engine's 1,000-class mapping is a (C, 1000) matrix, so the file is the ~19 MB encoder plus
4 kB per class).
"""

import copy
import io
import json
import os
import secrets
import shutil
import warnings
import zipfile
from pathlib import Path
from typing import List  # noqa: UP035 - TorchScript reads the annotation below

import torch
from torch import nn

from capsight.classify.classifier import ImageClassifier
from capsight.errors import InvalidParameter
from capsight.progress import ProgressCallback, check_progress


class _TravellingClassifier(nn.Module):
    """A scripted shell around the traced network that carries the class names."""

    labels: List[str]  # noqa: UP006
    engine: str

    def __init__(self, traced: torch.jit.ScriptModule, labels: list[str], engine: str) -> None:
        super().__init__()
        self.network = traced
        self.labels = labels
        self.engine = engine

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # Checked here, in the scripted shell: the traced network would take uint8 or 0..255
        # pixels without a word (they clamp to almost all white) and answer nonsense.
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(
                "expected RGB images as a (N, 3, H, W) tensor, got shape " + str(images.shape)
            )
        if not images.is_floating_point():
            raise ValueError("expected float pixels in [0, 1]; divide 8-bit pixels by 255")
        if bool(torch.isnan(images).any()):  # (NaN passes every comparison below)
            raise ValueError("expected pixels in [0, 1], got NaN values")
        if images.numel() > 0 and (bool(images.min() < -0.5) or bool(images.max() > 1.5)):
            seen = "got values from " + str(float(images.min())) + " to " + str(float(images.max()))
            hint = "divide 8-bit pixels by 255 and do not normalise (the module does)"
            raise ValueError("expected pixels in [0, 1], " + seen + ": " + hint)
        return self.network(images.float())


class _CheckedPixels(nn.Module):
    """The exported program's guard: torch.export keeps a runtime assertion, not a raise."""

    def __init__(self, classifier: ImageClassifier) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # Integer (or bool) pixels: the graph cannot branch on a dtype, but a 0.5 filled in the
        # input's own dtype stays 0.5 only in a float one (uint8 pixels all 0 or 1 had passed
        # the range check below and been read as black and white).
        half = torch.full_like(images[:1, :1, :1, :1], 0.5)
        torch._assert_async(
            (half == 0.5).all(), "expected float pixels in [0, 1]; divide 8-bit pixels by 255"
        )
        torch._assert_async(~torch.isnan(images).any(), "expected pixels in [0, 1], got NaN values")
        # (comparisons, not min() and max(): those fail on an empty batch)
        out_of_range = ((images < -0.5) | (images > 1.5)).any()
        torch._assert_async(~out_of_range, "expected float pixels in [0, 1]: divide 8-bit pixels "
                                           "by 255 and do not normalise (the module does)")  # fmt: skip
        # Float64 or float16 pixels are converted, as the .pt file converts them. (An explicit
        # copy: images.float() is traced away for a float32 example, and a float64 photo then
        # failed in the first matrix product with "mat1 and mat2 must have the same dtype".)
        return self.classifier(torch.ops.aten._to_copy.default(images, dtype=torch.float32))


def _example(classifier: ImageClassifier) -> torch.Tensor:
    size = int(getattr(classifier, "resolution", 224))
    return torch.rand(2, 3, size + 17, size - 9, generator=torch.Generator().manual_seed(0))


def _frozen(classifier: ImageClassifier) -> ImageClassifier:
    """A copy in eval mode whose weights need no gradient: exported as they are, the module's
    output required grad, and a user's ``probs.numpy()`` failed outside ``torch.no_grad()``.
    (A copy: the classifier itself may be a server's cached one, or be trained further.)"""
    return copy.deepcopy(classifier).eval().requires_grad_(False)


def to_torchscript(classifier: ImageClassifier) -> torch.jit.ScriptModule:
    # The tracer warns about Python arithmetic on shapes (the encoder's SAME padding); the
    # classifier resizes every input to its fixed resolution first, so those shapes are
    # constants and the warnings say nothing a user can act on.
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(_frozen(classifier), _example(classifier), check_trace=False)
        return torch.jit.script(
            _TravellingClassifier(traced, list(classifier.labels), classifier.engine)
        )


def to_exported(classifier: ImageClassifier) -> torch.export.ExportedProgram:
    batch = torch.export.Dim("batch", min=1, max=1024)
    from capsight.classify.exported import EXPORT_SIDES

    height = torch.export.Dim("height", min=EXPORT_SIDES[0], max=EXPORT_SIDES[1])
    width = torch.export.Dim("width", min=EXPORT_SIDES[0], max=EXPORT_SIDES[1])
    with torch.inference_mode(False), torch.no_grad():
        return torch.export.export(
            _CheckedPixels(_frozen(classifier)),
            (_example(classifier),),
            dynamic_shapes={"images": {0: batch, 2: height, 3: width}},
        )


def check_output(path: str | os.PathLike) -> Path:
    """Refuse, before any work, an output ``path`` that ``save_classifier`` could not write."""
    if not isinstance(path, (str, os.PathLike)) or not str(path).strip():  # (pathlib's TypeError)
        raise InvalidParameter(
            f"the classifier's output must be a path ending in .pt or .pt2, got {path!r:.60}"
        )
    path = Path(path).expanduser()
    if path.suffix not in (".pt", ".pt2"):
        raise InvalidParameter(
            f"{path}: the output must end in .pt (TorchScript) or .pt2 (torch.export)"
        )
    if path.is_dir():
        raise InvalidParameter(f"{path}: is a folder; name the file to write")
    parent = path.parent
    if not parent.is_dir():
        existing = next((p for p in (parent, *parent.parents) if p.exists()), None)
        if existing is not None and not existing.is_dir():
            raise InvalidParameter(f"{existing}: is a file, not a folder; choose another output")
        raise InvalidParameter(f"{parent}: output folder does not exist; create it first")
    # The file is renamed into place, so its folder (a link's target's) must be writable.
    if not _target(path).parent.is_dir():  # a link to a file in a folder that is gone
        raise InvalidParameter(f"{path}: a link to {_target(path)}, whose folder does not exist; "
                               "create it first, or name another output")  # fmt: skip
    if not os.access(_target(path).parent, os.W_OK):
        raise InvalidParameter(f"{path}: cannot write there (permission denied)")
    if _target(path).is_file() and not is_classifier_file(_target(path)):  # a model, a photo ...
        raise InvalidParameter(f"{path}: exists and is not a capsight classifier, so it is not "
                               "replaced; choose another output, or remove it first")  # fmt: skip
    return path


def is_classifier_file(path: Path) -> bool:
    """A file ``save_classifier`` wrote, which a new build may replace: its labels inside and
    the name of an engine of capsight's. A PyTorch checkpoint is a zip archive too, without
    them, and a user's own export may well carry a ``labels.json`` of its own."""
    from capsight.classify.engines import ENGINES

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            engine = [n for n in names if n.endswith("/extra/engine")]
            if len(engine) != 1 or not any(n.endswith("/extra/labels.json") for n in names):
                return False
            return archive.read(engine[0]).decode("utf-8", "replace") in ENGINES
    except (OSError, zipfile.BadZipFile, KeyError):
        return False


def _target(path: Path) -> Path:
    """The file ``path`` names: a link ("current.pt" -> "v3/clf.pt") is written through."""
    return Path(os.path.realpath(path)) if path.is_symlink() else path


def save_classifier(
    classifier: ImageClassifier, path: str | os.PathLike, progress: ProgressCallback | None = None
) -> Path:
    """Write ``.pt`` (TorchScript) or ``.pt2`` (torch.export) by the file's suffix.
    ``progress`` hears when the export starts (seconds; ~10 s for torch.export on 2 cores)."""
    if not (
        isinstance(classifier, nn.Module)
        and hasattr(classifier, "labels")
        and hasattr(classifier, "engine")
    ):
        raise InvalidParameter(f"save_classifier needs a built classifier (engine.build(...)), not "
                               f"{type(classifier).__name__!r}")  # fmt: skip
    path = check_output(path)
    check_progress(progress)
    meta = {"labels.json": json.dumps(list(classifier.labels)), "engine": classifier.engine}
    # Written beside the destination under a name of its own (two builds may run at once) and
    # renamed over it only when complete: a failed or interrupted build leaves an existing
    # classifier file as it was. The name keeps the suffix, which torch.export insists on.
    target = _target(path)
    partial = target.with_name(f".{target.stem}.{os.getpid()}-{secrets.token_hex(4)}{path.suffix}")
    try:
        partial.open("xb").close()  # torch reports a failed open as a C++ RuntimeError
    except OSError as error:
        raise InvalidParameter(f"{path}: cannot write it ({error.strerror or error})") from None
    if progress is not None:
        progress(0.0, f"writing {path.name}")
    try:
        # Into memory first (~20 MB): torch's own writer aborts the process on a full disk,
        # Python's raises OSError, which is one line.
        buffer = io.BytesIO()
        if path.suffix == ".pt":
            torch.jit.save(to_torchscript(classifier), buffer, _extra_files=meta)
        else:
            torch.export.save(to_exported(classifier), buffer, extra_files=meta)
        try:
            partial.write_bytes(buffer.getbuffer())
        except OSError as error:
            raise InvalidParameter(f"{path}: cannot write it ({error.strerror or error})") from None
        if target.exists():
            shutil.copymode(target, partial)  # a replaced file keeps its permissions
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return path
