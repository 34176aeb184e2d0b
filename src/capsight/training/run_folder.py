"""A training run's folder: its ``last/`` epoch, replaced whole, and what a resume reads back.

    >>> out = make_run_folder("runs/sat")                       # created, checked writable
    >>> write_last(out, lambda folder: save_checkpoint(model, vocab, folder), optimizer, state)
    >>> last = settled_last(out)                                 # after a kill at any moment
    >>> state = read_trainer_state(last)                         # or one line: damaged
    >>> trouble = load_optimizer(optimizer, last / "optimizer.pt", device)   # None, or why not
    >>> restore_resume_state(last, optimizer, device, say=print)  # optimizer + random state, or notes

``capsight train``, ``capsight.training.ensemble_scst`` and ``capsight.training.end_to_end``
keep their runs this way: ``last/`` holds the weights, ``optimizer.pt``, torch's random state
(``random_state.safetensors``, which dropout draws from) and ``trainer.json`` (where the run
stands), so a resumed run goes on as if it had never stopped.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from capsight.captioning.checkpoint import RUN_MARKERS, holds_checkpoint
from capsight.errors import InvalidParameter
from capsight.io.folders import make_writable_folder
from capsight.io.tensor_files import save_tensors, save_torch

RANDOM_STATE = "random_state.safetensors"  # in last/: torch's generators, for an exact resume
METRICS = "metrics.jsonl"  # a run's log: one JSON record per epoch


# What a run of capsight's own writes in its folder; a run cut short before its first saved epoch
# leaves only the configuration, the metrics and perhaps a best/ (ensemble SCST saves its members
# as they came at epoch 0). Beside them a log the shell writes there (train.log, nohup.out).
_RUN_ENTRIES = {"best", "last.old", *RUN_MARKERS}
_LOG_SUFFIXES = (".log", ".out", ".err", ".txt")


def check_run_folder(out: str | os.PathLike, resume: bool) -> None:
    """Refuse an ``--out`` where a run would overwrite what is there or mix with it: a run (its
    ``last/``) goes on only with ``resume``; otherwise the folder must be new, empty, or hold only
    what a run cut short before its first saved epoch left. A ``best/`` without a ``last/`` (deleted
    to save room: it holds the optimizer) is a finished model, never written over."""
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise InvalidParameter(f"--out {out}: is a file; name a folder for the run")
    if holds_run(folder):
        if not resume:
            raise InvalidParameter(f"--out {out}: holds a run already; add --resume to continue it, "
                                   "or name another folder")  # fmt: skip
        return
    if not folder.is_dir():
        return
    if folder.name in ("best", "last") and holds_run(folder.parent):  # a checkpoint inside a run
        raise InvalidParameter(f"--out {out}: is the {folder.name}/ checkpoint of the run in "
                               f"{folder.parent}; name the run's folder: --out {folder.parent}")  # fmt: skip
    entries = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    # (a last.new beside it and no epoch logged: the first epoch's save failed or was cut short
    # after its best/, so that best/ is the first epoch's, which the run trains again)
    first_save_failed = "last.new" in entries and not any(
        record["epoch"] > 0 for record in logged_epochs(folder / "metrics.jsonl"))  # fmt: skip
    # (a best/ without its config.json, written last, is a first save that failed, as on a
    # full disk: no model, and it had blocked the rerun once room was made)
    if "last" in entries and holds_checkpoint(folder / "last"):  # its trainer.json is gone
        best = f" (its best model so far is in {folder / 'best'})" if "best" in entries else ""
        raise InvalidParameter(f"--out {out}: its last/ has no trainer.json (where the run stands "
                               "in its schedule), so the run cannot be resumed: start it again in "
                               f"another --out{best}")  # fmt: skip
    if (
        "best" in entries
        and holds_checkpoint(folder / "best")
        and not first_save_failed
        and not _cut_short_at_epoch_zero(folder / "metrics.jsonl")
    ):
        raise InvalidParameter(f"--out {out}: holds an earlier run's best/ but no last/ it could be "
                               "resumed from; name another folder (or move best/ away)")  # fmt: skip
    if METRICS in entries and "last.old" not in entries and not _cut_short_log(folder / METRICS):
        raise InvalidParameter(f"--out {out}: its {METRICS} logs epochs whose checkpoints are not "
                               "there (or is not a run's log), and a new run would add its own "
                               f"lines to it; name another folder (or move {METRICS} away)")  # fmt: skip
    foreign = [name for name in entries if name not in _RUN_ENTRIES
               and not (name.endswith(_LOG_SUFFIXES) and (folder / name).is_file())]  # fmt: skip
    if foreign:
        shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
        raise InvalidParameter(f"--out {out}: holds files that are not a training run's ({shown}); "
                               "name a new or empty folder")  # fmt: skip


def log_epoch(out: Path, record: dict) -> None:
    """Append an epoch's record to ``out/metrics.jsonl`` (once ``last/`` holds the epoch)."""
    with open(out / METRICS, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def rewrite_log(out: Path, history: list[dict]) -> None:
    """``out/metrics.jsonl`` as ``history`` has it: a resumed run's log holds the epochs its
    ``last/`` holds, and no line of one that was cut short."""
    (out / METRICS).write_text("".join(json.dumps(r) + "\n" for r in history), encoding="utf-8")


def logged_epochs(metrics: Path) -> list[dict]:
    """The records of ``metrics.jsonl`` (one JSON object a line; others skipped), [] without one."""
    try:
        lines = metrics.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return []
    records = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("epoch"), int):
            records.append(record)
    return records


def _cut_short_at_epoch_zero(metrics: Path) -> bool:
    """Whether a folder's best/ is a run's cut short before its first epoch: its log holds the
    epoch-0 score (ensemble SCST's members as they came) and nothing after it."""
    records = logged_epochs(metrics)
    return bool(records) and all(r["epoch"] == 0 for r in records)


def _cut_short_log(metrics: Path) -> bool:
    """Whether ``metrics.jsonl`` is what a run cut short before its first saved epoch leaves:
    nothing, or the epoch-0 score alone. An earlier run's epochs (its checkpoints deleted) or a
    file of the user's own had had a new run's lines appended to them."""
    try:
        lines = [line for line in metrics.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (OSError, UnicodeDecodeError):
        return False
    records = logged_epochs(metrics)
    return len(records) == len(lines) and all(r["epoch"] == 0 for r in records)


def make_run_folder(out: str | os.PathLike) -> Path:
    """Create the run folder ``out`` (and its parents) and check it can be written, or say why not."""
    if not os.fspath(out).strip():
        raise InvalidParameter("--out is empty; name a folder for the run")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise InvalidParameter(f"--out {out}: is a file; name a folder for the run")
    try:
        make_writable_folder(folder)
    except OSError as error:
        raise InvalidParameter(
            f"--out {out}: cannot write the run there ({error.strerror or error})"
        ) from None
    return folder


LOCK = ".lock"  # in a run folder: held by the run writing there (its process id inside)


_HELD: set[str] = set()  # the run folders this process holds the lock of


@contextlib.contextmanager
def run_folder_lock(out: Path) -> Iterator[None]:
    """Held while a run writes in ``out``: a second run into the same folder stops at once with
    one line. (Two had both run: their epochs interleaved in metrics.jsonl, best/ one run's
    model and train_config.json the other's.) Taken again by the process that holds it, it
    holds on (``capsight train`` takes it before it settles ``last/``, ``train`` again). Where
    locks do not work (Windows, some network file systems) runs are not kept apart."""
    from capsight.io.pid_lock import lock_or_holder

    key = os.path.realpath(out)
    if key in _HELD:
        yield
        return
    with open(out / LOCK, "a+", encoding="utf-8") as handle:
        try:
            holder = lock_or_holder(handle)
        except (ImportError, OSError):  # no fcntl (Windows), or no locks on this file system
            holder = None
        if holder is not None:
            who = f" (process {holder})" if holder else ""
            raise InvalidParameter(f"--out {out}: another training run is writing there now{who}; "
                                   "wait for it to end, or name another folder")  # fmt: skip
        _HELD.add(key)
        try:
            yield
        finally:
            _HELD.discard(key)


def write_last(out: Path, write_weights: Callable[[Path], None], optimizer, state: dict) -> None:
    """``<out>/last``, replaced whole: ``write_weights(folder)`` fills ``last.new``, then the
    optimizer, the random state and trainer.json (last) join it, and it is swapped in, so a run
    killed at any moment resumes from one epoch's files, never a mix (``settled_last`` finishes
    or undoes a swap that was cut short)."""
    new, last, old = out / "last.new", out / "last", out / "last.old"
    shutil.rmtree(new, ignore_errors=True)  # a save cut short before
    new.mkdir(parents=True)
    write_weights(new)
    save_torch(optimizer.state_dict(), new / "optimizer.pt")
    save_random_state(new)
    (new / "trainer.json").write_text(json.dumps(state, indent=1))
    if last.exists():
        os.replace(last, old)
    os.replace(new, last)
    shutil.rmtree(old, ignore_errors=True)


def settled_last(out: str | os.PathLike) -> Path:
    """``<out>/last``, after finishing or undoing a ``write_last`` that was cut short: a
    complete ``last.new`` (its trainer.json is written last) takes a missing ``last``'s place,
    else ``last.old`` comes back; what is left over goes."""
    out = Path(out)
    last, new, old = out / "last", out / "last.new", out / "last.old"
    with contextlib.suppress(FileNotFoundError):  # another torchrun rank settled it first
        if not last.exists() and (new / "trainer.json").is_file():
            os.replace(new, last)
        elif not last.exists() and old.is_dir():
            os.replace(old, last)
    for leftover in (new, old):
        if leftover.exists():
            shutil.rmtree(leftover, ignore_errors=True)
    return last


def holds_run(out: str | os.PathLike) -> bool:
    """Whether ``out`` holds a run's ``last/`` (or a complete ``last.new`` a cut-short save left),
    found without changing anything: a run may be writing there right now."""
    out = Path(out)
    return any((out / name / "trainer.json").is_file() for name in ("last", "last.new"))


def read_trainer_state(last: Path, keys: tuple[str, ...] = ("stage", "epoch")) -> dict:
    """``last/trainer.json`` (where a run stands, with ``keys``), or one line saying it is
    damaged."""
    path = last / "trainer.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(state, dict) and all(key in state for key in keys) and _well_formed(state):
            return state
    except (ValueError, UnicodeDecodeError):
        pass
    # (not "delete last/ to start again here": a best/ without a last/ is a finished model,
    # which check_run_folder never lets a run write over)
    raise InvalidParameter(f"{path}: damaged, so the run cannot be resumed; start it again in "
                           f"another --out (its best model so far is in {last.parent / 'best'})")  # fmt: skip


# What each value of trainer.json holds, where present ("epoch": "x" was a TypeError traceback).
_KINDS = {"stage": str, "finished_stage": str, "epoch": int, "step": int, "patience_left": int,
          "stage_epochs": int, "history": list, "best": (dict, type(None))}  # fmt: skip


def _well_formed(state: dict) -> bool:
    return all(
        isinstance(state[key], kind) and not (kind is int and isinstance(state[key], bool))
        for key, kind in _KINDS.items() if key in state
    ) and all(state[key] >= 0 for key in ("epoch", "step") if key in state)  # fmt: skip


def load_optimizer(optimizer, path: Path, device) -> str | None:
    """Load the saved optimizer state (read as tensors only: ``weights_only``); None when done,
    else what is wrong with it, for a note."""
    if not path.is_file():
        return "is missing"
    try:
        saved = torch.load(path, map_location=device, weights_only=True)
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError):
        return "is damaged"
    try:
        optimizer.load_state_dict(saved)
    except (ValueError, KeyError, RuntimeError):
        return (
            "does not fit this run's parameters (were options such as --fine-tune-blocks changed?)"
        )
    return None


def save_random_state(folder: Path) -> None:
    """torch's generators (the CPU's, and the training GPU's), which dropout draws from."""
    generators = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        generators["cuda"] = torch.cuda.get_rng_state()
    save_tensors(generators, folder / RANDOM_STATE)


def restore_random_state(last: Path) -> bool:
    """torch's generators as ``write_last`` left them; False when that file is missing or
    unreadable (a run saved before it existed: the resume is then not exact)."""
    try:
        generators = load_file(str(last / RANDOM_STATE))
        torch.set_rng_state(generators["cpu"])
        if "cuda" in generators and torch.cuda.is_available():
            torch.cuda.set_rng_state(generators["cuda"])
    except (OSError, SafetensorError, KeyError, RuntimeError):
        return False
    return True


def restore_resume_state(
    last: Path, optimizer, device, say: Callable[[str], None], random_state: bool = True
) -> None:
    """Load the optimizer and (``random_state``) torch's generators from ``last``, and ``say``
    what could not be, since the run then does not go on exactly as it would have."""
    trouble = load_optimizer(optimizer, last / "optimizer.pt", device)
    if trouble:
        say(f"{last / 'optimizer.pt'} {trouble}: resuming with a fresh optimizer, so the run "
            "will not continue exactly as it would have")  # fmt: skip
    if random_state and not restore_random_state(last):
        say(f"{last / RANDOM_STATE} is missing or damaged: dropout will draw other numbers "
            "than an uninterrupted run would")  # fmt: skip
