"""Where the exported ONNX graphs live, and how a stale one is never used.

    >>> (encoder,) = open_graphs(["efficientnet-lite0"], [weights_file], build)  # a session
    >>> graph_path("efficientnet-lite0", [weights_file])     # cache/onnx/efficientnet-lite0-<key>.onnx

Graphs are written to ``$CAPSIGHT_CACHE_DIR/onnx`` (default ``~/.cache/capsight/onnx``). A
graph's file name carries a key made from ``EXPORT_VERSION`` and the path, size and modification
time of every file it was exported from (weights, config, vocabulary), so a retrained checkpoint
or a reinstalled weights package gets a fresh export and an old graph is never read for it.
Files are written under a temporary name and renamed, so two processes exporting at once each
leave a whole file. Each graph has a note (``<graph>.json``) of its sources; an export deletes
the graphs whose sources changed or went away, so the folder does not grow with every
reinstall.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path

# Bump when the export code changes what a graph computes: every cached graph is rebuilt.
EXPORT_VERSION = "1"


def cache_dir() -> Path:
    root = os.environ.get("CAPSIGHT_CACHE_DIR")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "capsight"


def _fingerprint(sources: Iterable[str | os.PathLike]) -> list[list]:
    """(absolute path, size, modification time) of each source file."""
    out = []
    for source in sources:
        stat = os.stat(source)
        out.append([os.path.abspath(source), stat.st_size, stat.st_mtime_ns])
    return out


def graph_key(sources: Iterable[str | os.PathLike]) -> str:
    text = json.dumps([EXPORT_VERSION, _fingerprint(sources)])
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def graph_path(name: str, sources: Iterable[str | os.PathLike]) -> Path:
    return cache_dir() / "onnx" / f"{name}-{graph_key(sources)}.onnx"


def ensure_graphs(
    paths: list[Path],
    sources: list[Path],
    build: Callable[[list[Path]], None],
    report: Callable[[str], None] | None = None,
) -> None:
    """Call ``build(temporary paths)`` when any of ``paths`` is missing, then move each result
    into place beside a note of its ``sources``, and delete the graphs whose sources changed or
    went away (a reinstalled package, a deleted run). ``report`` hears what is exported.
    Raises OSError when the cache folder cannot be written."""
    if all(p.is_file() for p in paths):
        return
    if report is not None:
        report(f"exporting {paths[0].name.rsplit('-', 1)[0]} for ONNX Runtime (once)")
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    temporary = [p.with_name(f"{p.stem}.{os.getpid()}.tmp") for p in paths]
    note = json.dumps({"version": EXPORT_VERSION, "sources": _fingerprint(sources)})
    try:
        build(temporary)
        for tmp, final in zip(temporary, paths, strict=True):
            final.with_suffix(".json").write_text(note)  # before the graph: no graph without one
            os.replace(tmp, final)
    finally:
        for tmp in temporary:
            tmp.unlink(missing_ok=True)
    prune_stale(paths[0].parent)


def prune_stale(folder: Path) -> list[Path]:
    """Delete the graphs (and notes) whose sources no longer match; return what was deleted."""
    gone = []
    for note in folder.glob("*.json"):
        try:
            data = json.loads(note.read_text())
            sources = data["sources"]
            fresh = data["version"] == EXPORT_VERSION and _fingerprint(s[0] for s in sources) == sources
        except (OSError, ValueError, KeyError, TypeError):  # a source gone, a damaged note
            fresh = False
        if not fresh:
            for path in (note.with_suffix(".onnx"), note):
                path.unlink(missing_ok=True)
            gone.append(note.with_suffix(".onnx"))
    return gone


def open_graphs(
    names: list[str],
    sources: list[Path],
    build: Callable[[list[Path]], None],
    report: Callable[[str], None] | None = None,
) -> list:
    """Sessions on the graphs ``names`` exported from ``sources``, exported first where missing.
    A graph ONNX Runtime cannot read (a file cut short by a full disk, say) is exported again,
    once; then RuntimeError."""
    paths = [graph_path(name, sources) for name in names]
    ensure_graphs(paths, sources, build, report)
    try:
        return [session(p) for p in paths]
    except Exception as exc:  # onnxruntime's own exception types derive from Exception only
        for p in paths:
            p.unlink(missing_ok=True)
        ensure_graphs(paths, sources, build, report)
        try:
            return [session(p) for p in paths]
        except Exception as again:
            raise RuntimeError(f"ONNX Runtime cannot read {paths[0].name}: {again}") from exc


@lru_cache(maxsize=16)
def session(path: Path):
    """An ONNX Runtime session on one CPU thread, one per graph file and process (a graph's
    name changes with its sources, so a cached session is never stale): each stage of the video pipeline has its own
    (capsight.novelty.pipeline), and more threads per stage only contend for the two cores."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings are about graph internals
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
