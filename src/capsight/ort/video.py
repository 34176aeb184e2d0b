"""The models of a video analysis on ONNX Runtime, when it can run them (else None: torch).

>>> models = video_models("default", "minilm", "efficientnet-lite0")
>>> models.encoder, models.captioner, models.embedder
"""

from __future__ import annotations

import errno
import importlib.util
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from capsight.captioning import MODELS_DIR
from capsight.errors import InvalidParameter, ModelNotFound

RUNTIMES = ("auto", "onnx", "torch")
_log = logging.getLogger("capsight")

# What "default" captions a video with (capsight.novelty.pipeline.VIDEO_DEFAULT_CAPTIONER).
_VIDEO_DEFAULT = "show-attend-tell"


@dataclass
class OrtVideoModels:
    encoder: object  # OrtImageEncoder
    captioner: object  # OrtCaptioner
    embedder: object  # OrtMiniLM or WordMeanEmbedder

    def loaded_encoder(self):
        return self.encoder


def runtime_setting() -> str:
    value = os.environ.get("CAPSIGHT_RUNTIME", "auto").strip().lower() or "auto"
    if value not in RUNTIMES:
        raise InvalidParameter(
            f"CAPSIGHT_RUNTIME must be one of {', '.join(RUNTIMES)}, got {value!r}"
        )
    return value


def check_runtime_settings() -> None:
    """InvalidParameter for a CAPSIGHT_RUNTIME or CAPSIGHT_PRECISION no model path can use, said
    once before any work: a server had listened with models that never loaded, a folder of
    videos had said it once per video, and the ONNX path never read CAPSIGHT_PRECISION."""
    from capsight.precision import precision_setting

    runtime_setting()
    precision_setting()


def captioner_folder(name: str) -> Path | None:
    """The checkpoint folder ONNX Runtime would run for captioner ``name``, or None."""
    from capsight.ort.captioner import supported

    # A checkpoint a server serves by name (serve --captioner); registering it imported the
    # registry, which would import torch here otherwise (the ONNX path never does).
    registry = getattr(sys.modules.get("capsight.captioning.base"), "_REGISTRY", {})
    if name in ("default", _VIDEO_DEFAULT):
        folder = MODELS_DIR / _VIDEO_DEFAULT
    else:
        folder = getattr(registry.get(name), "checkpoint_folder", None) or Path(name)
        if not (folder / "config.json").is_file() and (folder / "best" / "config.json").is_file():
            folder = folder / "best"  # a training run folder stands for its best checkpoint
    return folder if folder.is_dir() and supported(folder) is not None else None


def video_models(
    captioner: str,
    text_embedder: str,
    encoder: str,
    report: Callable[[str], None] | None = None,
    setting: str | None = None,
) -> OrtVideoModels | None:
    """Load the three models on ONNX Runtime, or return None where the torch path must run them
    (``CAPSIGHT_RUNTIME=torch``, onnxruntime not installed, a model it cannot run, an export
    that failed). With ``CAPSIGHT_RUNTIME=onnx`` (or ``setting="onnx"``) those cases raise
    ModelNotFound instead."""
    setting = setting or runtime_setting()
    from capsight.precision import precision_setting

    precision_setting()  # (a bad value had passed unread on this path: the torch path reads it)
    if setting == "torch":
        return None
    try:
        return _load(captioner, text_embedder, encoder, report)
    except ModelNotFound as exc:
        if setting == "onnx":  # (the variable named: without it the model runs on torch)
            raise ModelNotFound(f"{exc}, and CAPSIGHT_RUNTIME=onnx asks for ONNX Runtime only "
                                "(unset it to run on torch)") from None  # fmt: skip
        _log.info("video analysis runs on torch: %s", exc)
    except Exception as exc:  # an unwritable cache, a failed export, an odd checkpoint, a bug
        if setting == "onnx":
            raise ModelNotFound(f"ONNX Runtime could not load the models: {_why(exc)}") from exc
        _log.warning(
            "capsight: note: video analysis runs on torch (ONNX Runtime failed: %s)", _why(exc)
        )
    return None


def _why(exc: Exception) -> str:
    from capsight.ort.store import cache_dir

    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:  # the folder, and how much it needs
        return (f"no space left in {cache_dir() / 'onnx'} for its graphs, ~140 MB: free some, or "
                "set CAPSIGHT_CACHE to another disk")  # fmt: skip
    in_cache = isinstance(exc, OSError) and _under(exc.filename, cache_dir())
    if in_cache and exc.errno in (errno.ENOENT, errno.EACCES, errno.EROFS, errno.ENOTDIR,
                                  errno.EPERM):  # fmt: skip
        # "[Errno 2] No such file or directory: '/proc/x'" had not said it was the cache
        return (
            f"cannot write its graphs to the cache {cache_dir() / 'onnx'} "
            f"({exc.strerror or exc}): set CAPSIGHT_CACHE to a folder you can write"
        )
    return str(exc)


def _under(filename, folder) -> bool:
    """Whether the file an OSError names lies in ``folder`` (a missing checkpoint or model
    file is not the cache's fault)."""
    if not isinstance(filename, (str, os.PathLike)):
        return False
    return Path(os.path.abspath(filename)).is_relative_to(os.path.abspath(folder))


def _load(captioner: str, text_embedder: str, encoder: str, report) -> OrtVideoModels:
    from capsight.ort.encoder import RESOLUTIONS

    if importlib.util.find_spec("onnxruntime") is None:
        raise ModelNotFound("onnxruntime is not installed: pip install onnxruntime")
    if encoder not in RESOLUTIONS:
        raise ModelNotFound(f"no ONNX graph for encoder {encoder!r}")
    if text_embedder not in ("minilm", "word-mean"):
        raise ModelNotFound(f"no ONNX graph for text embedder {text_embedder!r}")
    folder = captioner_folder(captioner)
    if folder is None:
        looks_like_path = os.sep in captioner or captioner.startswith(".")
        if looks_like_path and not Path(captioner).exists():
            raise ModelNotFound(f"captioner folder {captioner} does not exist")
        raise ModelNotFound(
            f"captioner {captioner!r} is not a show-attend-tell checkpoint ONNX Runtime runs"
        )
    from capsight.ort.captioner import OrtCaptioner, supported
    from capsight.ort.encoder import OrtImageEncoder

    reads = supported(folder).get("encoder", "efficientnet-lite0")
    if reads != encoder:  # the torch path encodes each frame again for it
        raise ModelNotFound(f"captioner {captioner!r} reads {reads}, not {encoder}")
    # Named as the torch path names it: a folder given as the model is a "checkpoint".
    name = _VIDEO_DEFAULT if captioner in ("default", _VIDEO_DEFAULT) else "checkpoint"
    caption_model = OrtCaptioner.load(folder, name, report)
    if not caption_model.handles(caption_model.default_decoding):
        raise ModelNotFound(
            f"captioner {captioner!r} decodes by {caption_model.default_decoding.method}"
        )
    if text_embedder == "minilm":
        from capsight.ort.text import OrtMiniLM

        embedder = OrtMiniLM.load(report)
    else:
        from capsight.text.embedders import create_text_embedder

        embedder = create_text_embedder(text_embedder)
    return OrtVideoModels(OrtImageEncoder.load(encoder, report), caption_model, embedder)


def cache_status() -> dict:
    """What ``capsight models`` says about the ONNX path: the setting, onnxruntime's version,
    the cache folder and its size, and whether the video default's graphs are exported."""
    from capsight.ort.store import cache_dir, graph_path

    status: dict = {"setting": runtime_setting(), "onnxruntime": None}  # a bad value: its error
    if importlib.util.find_spec("onnxruntime") is not None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            status["onnxruntime"] = version("onnxruntime")
        except PackageNotFoundError:  # installed as onnxruntime-gpu, -openvino, a conda build
            status["onnxruntime"] = "installed (version unknown)"
    folder = cache_dir() / "onnx"
    try:
        files = [f for f in folder.iterdir() if f.suffix in (".onnx", ".tmp")]
    except OSError:  # missing, or not to be listed: nothing to count
        files = []
    status.update(folder=str(folder), graphs=sum(f.suffix == ".onnx" for f in files),
                  megabytes=round(sum(_size(f) for f in files) / 1e6, 1),  # a killed export's too
                  writable=_writable(folder))  # fmt: skip
    try:
        from capsight.ort.captioner import captioner_graphs
        from capsight.ort.encoder import encoder_graphs
        from capsight.ort.text import minilm_graphs
        from capsight.text.embedders import minilm_path

        specs = [encoder_graphs("efficientnet-lite0"), minilm_graphs(minilm_path())]
        folder_sat = captioner_folder("default")
        if folder_sat is not None:
            specs.append(captioner_graphs(folder_sat))
        ours = [graph_path(n, sources) for names, sources in specs for n in names]
        status["video_default_ready"] = folder_sat is not None and all(p.is_file() for p in ours)
        present = [p for p in ours if p.is_file()]
        # (the rest are other versions': what deleting the folder would free beyond these)
        status.update(current_graphs=len(present),
                      current_megabytes=round(sum(_size(p) for p in present) / 1e6, 1))  # fmt: skip
    except (ModelNotFound, OSError):
        status["video_default_ready"] = False
    return status


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # deleted meanwhile
        return 0


def _writable(folder: Path) -> bool:
    """Whether graphs could be exported into ``folder``: a file written and removed in it, or in
    the nearest folder above it that exists (a status command makes no folders). A permission
    look is not enough: root passes it for /proc, and a path under a file fails only when
    written."""
    import tempfile

    existing = folder
    while not existing.exists():
        if existing.parent == existing:
            return False
        existing = existing.parent
    if not existing.is_dir():  # a file where a folder of the path should be
        return False
    try:
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-check-"):
            return True
    except OSError:
        return False


def prepare_video_default(report: Callable[[str], None] | None = None) -> None:
    """Export the video default's graphs now (a Docker build, an admin before read-only use)
    and delete stale ones (``capsight.ort.store.prune_stale``; an export prunes too, but graphs
    already there need none); raises ModelNotFound when ONNX Runtime cannot run them."""
    from capsight.ort.store import cache_dir, folder_locked, prune_stale

    video_models("default", "minilm", "efficientnet-lite0", report, setting="onnx")
    folder = cache_dir() / "onnx"
    with folder_locked(folder) as locked:
        gone = prune_stale(folder, locked=locked)
    graphs = [p for p in gone if p.suffix == ".onnx"]
    if graphs and report is not None:
        report(f"deleted {len(graphs)} stale ONNX graph(s) of other code or sources")
    if (left := len(gone) - len(graphs)) and report is not None:
        report(f"deleted {left} temporary file(s) of an export that was stopped")
