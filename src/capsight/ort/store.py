"""Where the exported ONNX graphs live, and how a stale one is never used.

    >>> (encoder,) = open_graphs(["efficientnet-lite0"], [weights_file], build)  # a session
    >>> graph_path("efficientnet-lite0", [weights_file])     # cache/onnx/efficientnet-lite0-<key>.onnx

Graphs are written to ``$CAPSIGHT_CACHE/onnx`` (default ``~/.cache/capsight/onnx``, beside the
training feature cache and the classifier's text cache). A graph's file name carries a key made
from the code that defines it (``code_version``: the export module, the packages whose networks
and loaders it runs, and torch's version)
and the path, size and modification time of every file it was exported from (weights, config,
vocabulary), so a retrained checkpoint, a reinstalled package or changed model code gets a fresh
export and an old graph is never read for it.

An export holds a lock (a thread lock, and ``flock`` on ``onnx/.lock`` for other processes, such
as server workers sharing a volume), so one process exports and the others then find its graphs;
files are written under a unique temporary name and renamed, so a reader never sees half a
file. Each graph has a note (``<graph>.json``) of its sources, written first; an export deletes the graphs whose sources changed or went away, graphs without a note, leftovers
of an export that was killed, and graphs of other code unused for ``KEEP_OTHER_CODE_DAYS`` or
unused for ``KEEP_RECENT_HOURS`` and older than the other code version used last, so the folder
does not grow with every reinstall or upgrade (two capsight versions sharing it keep theirs).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from functools import cache, lru_cache
from pathlib import Path

# The code that decides what an exported graph computes: the export module and every module
# of the packages whose networks and loaders it runs (the weights' readers too: a fix to one
# changes the graph as surely as a fix to a network), and torch, which traces them. Whole
# packages: an edit elsewhere in them costs one export (seconds), never a stale graph.
_GRAPH_CODE = ("ort/export.py", "vision/", "captioning/", "text/")
_GRAPH_TOOLS = ("torch", "onnx", "onnxruntime")
KEEP_OTHER_CODE_DAYS = 30
KEEP_OTHER_CODE_VERSIONS = 1  # besides this code's graphs: those of the other version used last
KEEP_RECENT_HOURS = 24  # and of any other version used this recently
_TEMPORARY_MAX_AGE_S = 3600  # an export takes seconds; an older .tmp was left by a killed one
_EXPORTING = threading.Lock()  # one export at a time in this process (torch.onnx has global state)


def cache_dir() -> Path:
    from capsight.cache_root import cache_root

    return cache_root()


@cache
def code_version() -> str:
    """A hash of the graph-defining code (``_GRAPH_CODE``) and of the torch, onnx and
    onnxruntime versions (a graph that one version writes may be unreadable to an older one in
    another environment sharing the cache)."""
    from importlib.metadata import PackageNotFoundError, version

    package = Path(__file__).resolve().parents[1]
    digest = hashlib.sha1()
    for name in _GRAPH_CODE:
        files = sorted((package / name).glob("*.py")) if name.endswith("/") else [package / name]
        for path in files:
            digest.update(f"{path.relative_to(package).as_posix()}\n".encode())
            digest.update(path.read_bytes())
    for tool in _GRAPH_TOOLS:
        try:
            digest.update(f"{tool}=={version(tool)}".encode())
        except PackageNotFoundError:  # not installed, or installed under another name
            digest.update(f"{tool}: unknown".encode())
    return digest.hexdigest()[:12]


def _fingerprint(sources: Iterable[str | os.PathLike]) -> list[list]:
    """(absolute path, size, modification time in whole seconds) of each source file. Whole
    seconds: a container image's layers keep no more, so graphs exported while the image was built
    would otherwise not match their sources in a container from the pulled image."""
    out = []
    for source in sources:
        stat = os.stat(source)
        out.append([os.path.abspath(source), stat.st_size, stat.st_mtime_ns // 10**9])
    return out


def graph_key(sources: Iterable[str | os.PathLike]) -> str:
    text = json.dumps([code_version(), _fingerprint(sources)])
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
    into place after a note of its ``sources``, and prune the folder (module docstring).
    ``report`` hears what is exported. Raises OSError, before exporting anything, when the
    cache folder cannot be written."""
    if all(p.is_file() for p in paths):
        for p in paths:  # in use: a graph of other code is pruned only when long unused
            _touch(p.with_suffix(".json"))
        return
    folder = paths[0].parent
    folder.mkdir(parents=True, exist_ok=True)
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"cannot write the ONNX graph cache {folder} (set CAPSIGHT_CACHE)")
    with _EXPORTING, _folder_lock(folder) as locked:
        if all(p.is_file() for p in paths):  # another thread or process exported them meanwhile
            return
        if report is not None:
            graphs = " and ".join(p.name.rsplit("-", 1)[0] for p in paths)  # (each: "-step" too)
            report(f"exporting {graphs} for ONNX Runtime (once)")
        temporary = [p.with_name(f"{p.stem}.{uuid.uuid4().hex}.tmp") for p in paths]
        note = json.dumps({"code": code_version(), "sources": _fingerprint(sources)})
        try:
            build(temporary)
            for tmp, final in zip(temporary, paths, strict=True):
                _write_atomically(final.with_suffix(".json"), note)  # before the graph, always
                os.replace(tmp, final)
        finally:
            for tmp in temporary:
                tmp.unlink(missing_ok=True)
        prune_stale(folder, locked=locked)


@contextlib.contextmanager
def _folder_lock(folder: Path):
    """An exclusive ``flock`` on ``folder/.lock`` while exporting; yields whether it was taken
    (not where fcntl is missing, nor in a read-only cache without a ``.lock``: then the unique
    temporary names still keep every graph whole, and pruning leaves young temporary files
    alone)."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield False
        return
    # Read-write where it may be (NFS emulates flock with fcntl locks, which need it), else
    # read-only: a .lock another user created (a volume shared by server workers of other
    # uids) locks as well as one's own on a local disk.
    try:
        handle = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError:
        try:
            handle = os.open(folder / ".lock", os.O_RDONLY)
        except FileNotFoundError:  # a read-only cache copied without its .lock: nothing to
            yield False  # lock (`models --prepare` had ended "no such file" on one)
            return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        os.close(handle)


@contextlib.contextmanager
def folder_locked(folder: Path):
    """The export lock, for other work on the folder (``models --prepare``'s pruning); yields
    whether other processes are locked out too (no ``flock`` on Windows)."""
    with _EXPORTING, _folder_lock(folder) as locked:
        yield locked


def prune_stale(folder: Path, locked: bool = False) -> list[Path]:
    """Delete what the module docstring says an export deletes; return the files deleted.
    ``locked``: the caller holds the export lock, so every temporary file is a killed
    export's (every writer takes the lock), not only those over an hour old."""
    gone = []
    now = time.time()
    kept_codes = _recent_other_codes(folder)
    for path in folder.iterdir():
        try:
            age = now - path.stat().st_mtime
        except OSError:  # deleted meanwhile by another process
            continue
        if path.suffix == ".tmp":
            stale = locked or age > _TEMPORARY_MAX_AGE_S
        elif path.suffix == ".onnx":
            stale = not path.with_suffix(".json").exists()
        elif path.suffix == ".json":
            stale = _note_is_stale(path, age, kept_codes)
        else:
            continue
        if stale:
            doomed = [path.with_suffix(".onnx"), path] if path.suffix == ".json" else [path]
            try:
                for p in doomed:
                    p.unlink(missing_ok=True)
            except OSError:  # a read-only cache: its graphs still serve, nothing to tidy
                continue
            gone.append(doomed[0])
    return gone


def _recent_other_codes(folder: Path) -> set[str]:
    """Other code versions whose graphs stay: those used within ``KEEP_RECENT_HOURS`` (a server
    of another version may open more of them) and the ``KEEP_OTHER_CODE_VERSIONS`` used last,
    counting only graphs whose sources are still there."""
    last_used: dict[str, float] = {}
    for note in folder.glob("*.json"):
        try:
            data, used = json.loads(note.read_text()), note.stat().st_mtime
            code, sources = data["code"], data["sources"]
            if code == code_version() or _fingerprint(s[0] for s in sources) != sources:
                continue
        except (OSError, ValueError, KeyError, TypeError, IndexError):
            continue
        last_used[code] = max(used, last_used.get(code, 0.0))
    recent = {
        code for code, used in last_used.items() if time.time() - used < KEEP_RECENT_HOURS * 3600
    }
    latest = sorted(last_used, key=last_used.__getitem__, reverse=True)[:KEEP_OTHER_CODE_VERSIONS]
    return recent | set(latest)


def _note_is_stale(note: Path, age: float, kept_codes: set[str]) -> bool:
    try:
        data = json.loads(note.read_text())
        sources = data["sources"]
        if _fingerprint(s[0] for s in sources) != sources:
            return True  # a source changed: this graph's key can never be asked for again
        other = data["code"] != code_version()
        return other and (data["code"] not in kept_codes or age > KEEP_OTHER_CODE_DAYS * 86400)
    except (OSError, ValueError, KeyError, TypeError, IndexError):  # a source gone, a damaged note
        return True


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:  # a read-only cache still serves its graphs
        pass


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def open_graphs(
    names: list[str],
    sources: list[Path],
    build: Callable[[list[Path]], None],
    report: Callable[[str], None] | None = None,
) -> list:
    """Sessions on the graphs ``names`` exported from ``sources``, exported first where missing.
    A graph ONNX Runtime cannot read (a file cut short by a full disk, say) is exported again,
    once; then RuntimeError. Without onnxruntime: ImportError, and nothing is exported."""
    import onnxruntime  # noqa: F401  before exporting: a broken install is not a damaged graph

    paths = [graph_path(name, sources) for name in names]
    ensure_graphs(paths, sources, build, report)
    try:
        return [session(p) for p in paths]
    except Exception as exc:  # onnxruntime's own exception types derive from Exception only
        folder = paths[0].parent
        if not os.access(folder, os.W_OK):  # (its PermissionError had said only "cannot write")
            raise RuntimeError(
                f"ONNX Runtime cannot read {_unreadable(paths).name}, a damaged graph in the "
                f"read-only cache {folder}: delete it there (the next run that can write the "
                "folder, or `capsight models --prepare`, exports it again), or set CAPSIGHT_CACHE "
                "to a folder you can write"
            ) from exc
        for p in paths:
            p.unlink(missing_ok=True)
        ensure_graphs(paths, sources, build, report)
        try:
            return [session(p) for p in paths]
        except Exception as again:
            raise RuntimeError(f"ONNX Runtime cannot read {paths[0].name}: {again}") from exc


def _unreadable(paths: list[Path]) -> Path:
    """The first of ``paths`` ONNX Runtime cannot open (the first, if each opens now)."""
    for path in paths:
        try:
            session(path)
        except Exception:  # (onnxruntime's exception types derive from Exception only)
            return path
    return paths[0]


@lru_cache(maxsize=16)
def session(path: Path):
    """An ONNX Runtime session on one CPU thread, one per graph file and process (a graph's
    name changes with its sources, so a cached session is never stale): each stage of the
    video pipeline has its own (capsight.novelty.pipeline), and more threads per stage only
    contend for the two cores."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: its warnings are about graph internals
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
