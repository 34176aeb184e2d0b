"""The ``capsight`` command: one argparse parser built from one module per subcommand.

    $ capsight video clip.mp4 --out out/clip
    $ capsight caption photo.jpg --json
    $ python -m capsight models

Each subcommand lives in its own module under ``capsight._cli`` with two functions:

    def add_parser(subparsers) -> argparse.ArgumentParser   # declares the options
    def run(args: argparse.Namespace) -> int                # does the work, returns exit status

and is listed once in ``SUBCOMMANDS`` below. Subcommand modules import nothing heavy at module
level (torch, transformers, matplotlib load only inside ``run``), so ``capsight --help`` is fast.

Exit statuses: 0 success; 2 bad input or options (a ``CapsightError`` or an argparse error,
reported as one line ``capsight: error: <message>`` on stderr, never a traceback); 130 when
interrupted with Ctrl-C; 143 when stopped by SIGTERM, which stops a command as Ctrl-C does;
1 when a write found no room (standard output on a full disk), also said in one line.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import re
import sys
from collections.abc import Sequence

from capsight import __version__
from capsight._cli.parser import OneLineParser
from capsight.errors import CapsightError

PROG = "capsight"

# One module per subcommand, in the order `capsight --help` lists them. Add yours here.
SUBCOMMANDS: list[str] = [
    "capsight._cli.video",
    "capsight._cli.caption",
    "capsight._cli.models",
    "capsight._cli.serve",
    "capsight._cli.train",
    "capsight._cli.eval",
    "capsight._cli.classify",
    "capsight._cli.classifier",
    "capsight._cli.search",
]

EXIT_OK = 0
EXIT_USAGE = 2  # bad input, bad options: the same status argparse uses
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C
EXIT_TERMINATED = 143  # 128 + SIGTERM
EXIT_OUTPUT_FAILED = 1  # the results could not be written (stdout on a full disk)


class Terminated(KeyboardInterrupt):
    """SIGTERM (``docker compose stop``, Slurm, Kubernetes, ``kill``), raised in the main thread
    as Ctrl-C is, so that a run stops the same way: a training run marked KILLED in MLflow with
    its finished epochs kept, a batch of videos summarised."""


def _on_sigterm(signum, frame) -> None:
    import signal

    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends the process at once
    raise Terminated


# Commands that are done when they return and leave nothing for exit handlers to finish (no
# MLflow run, no Java subprocess): the console script skips the interpreter's teardown after
# them, which costs ~0.35 s once torch is loaded (a quarter of a second on every short run).
FAST_EXIT_COMMANDS = {"video", "caption", "classify", "models"}


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG,
        description=(
            "Describe images in words and find the moments in a video unlike what came before. "
            "Runs offline."
        ),
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in SUBCOMMANDS:
        # A subcommand whose optional extra is missing still appears and says what to install
        # when run, so its module must import only the standard library and capsight.errors.
        module = importlib.import_module(module_name)
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run, _parser=sub)
    return parser


def cli_message(error: CapsightError) -> str:
    """``error``'s message as the terminal should read it: a Python argument's name at the start
    becomes the flag that sets it (``every must be ...`` -> ``--every must be ...``)."""
    text, name = str(error), getattr(error, "parameter", None)
    if name and text.startswith(f"{name} "):
        return f"--{name.replace('_', '-')}{text[len(name) :]}"
    return text


def error_line(message: str, kind: str = "error") -> str:
    """The single stderr line for a failure (or a ``note``); newlines folded to keep one line,
    other control characters (an escape sequence in a file name) escaped."""
    from capsight._cli.shown_names import shown_name

    folded = re.sub(
        r"[ \t\r\n]+", " ", str(message)
    ).strip()  # (str.split folded \x1c and \x85 too)
    return f"{PROG}: {kind}: {shown_name(folded)}"


NAMES_AS_GIVEN = "capsight-names"  # the error handler below, as codecs knows it


def _name_bytes_or_escape(error: UnicodeError) -> tuple[str | bytes, int]:
    """Lone surrogates (bytes of a name that were not UTF-8) as those bytes; any other character
    the output's encoding lacks as a backslash escape ("\\xfc")."""
    import codecs

    if not isinstance(error, UnicodeEncodeError):
        raise error
    chunk = error.object[error.start : error.end]
    out = b"".join(bytes([ord(c) - 0xDC00]) if "\udc80" <= c <= "\udcff"
                   else codecs.backslashreplace_errors(UnicodeEncodeError(
                       error.encoding, c, 0, 1, error.reason))[0].encode("ascii")
                   for c in chunk)  # fmt: skip
    return out, error.end


def _names_as_given() -> None:
    """A file name that is not UTF-8 ("caf\\xe9.mp4" from an old Windows share) reaches Python
    as lone surrogates, which a UTF-8 locale's strict stdout refused in the middle of a batch:
    it is printed as the bytes it came as (stderr escapes them, as Python's always does). A
    character an ASCII or Latin-1 output cannot hold ("猫.jpg" under PYTHONIOENCODING=ascii) is
    escaped: it had been a UnicodeEncodeError traceback."""
    import codecs

    if getattr(sys.stdout, "errors", None) == "strict" and hasattr(sys.stdout, "reconfigure"):
        try:
            codecs.lookup_error(NAMES_AS_GIVEN)
        except LookupError:
            codecs.register_error(NAMES_AS_GIVEN, _name_bytes_or_escape)
        try:
            sys.stdout.reconfigure(errors=NAMES_AS_GIVEN)
        except (ValueError, OSError):  # (closed, or not reconfigurable): left as it is
            pass


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: sys.argv[1:]), run the subcommand, return the exit status."""
    _names_as_given()
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(argv)  # exits 2 itself on a usage error
        if unknown and getattr(args, "rest", None) is not None:
            args.rest = unknown + args.rest  # `train --epochs 1 DATA`: the options before DATA
        elif unknown:  # named by the command's own parser, whose --help lists its options
            getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
        return int(args._run(args) or EXIT_OK)
    except CapsightError as exc:
        print(error_line(cli_message(exc)), file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt as stop:
        words = list(sys.argv[1:] if argv is None else argv)
        hint = ""
        if words[:1] == ["train"] and getattr(stop, "epoch_saved", False):  # say how to go on
            hint = f"; {_resume_hint(words)} to continue from the last finished epoch"
        elif words[:1] == ["train"]:
            hint = "; no epoch had finished, so run the same command to start again"
        how = "stopped (SIGTERM)" if isinstance(stop, Terminated) else "interrupted"
        print(f"\n{PROG}: {how}{hint}", file=sys.stderr)
        return EXIT_TERMINATED if isinstance(stop, Terminated) else EXIT_INTERRUPTED
    except BrokenPipeError:
        # `capsight caption *.jpg | head -1`: the reader left; not an error worth a traceback.
        _silence_stdout()
        return EXIT_OK
    except OSError as exc:
        if exc.errno in _FULL:
            words = list(sys.argv[1:] if argv is None else argv)
            if words[:1] == ["train"] and getattr(exc, "epoch_saved", False):  # as for Ctrl-C
                return _output_failed(exc, f"{_resume_hint(words)} to continue from the last "
                                           "saved epoch")  # fmt: skip
            return _output_failed(exc)
        if (message := file_refusal(exc)) is None:  # no file to name: a fault, shown whole
            raise
        print(error_line(message), file=sys.stderr)
        return EXIT_USAGE


def file_refusal(exc: OSError) -> str | None:
    """A file the system would not let capsight open, or that vanished mid-run, as one line
    naming it (a captions file without read permission had been a 30-line traceback); None for
    an OSError that names no file, or one no path explains (``_REFUSALS``)."""
    if exc.filename is None or not exc.strerror or exc.errno not in _REFUSALS:
        return None
    import os

    where = os.fsdecode(exc.filename)
    if exc.filename2 is not None:  # a rename or a link: both ends
        where += f" -> {os.fsdecode(exc.filename2)}"
    hint = "; check its permissions" if exc.errno in (errno.EACCES, errno.EPERM) else ""
    return f"{where}: {exc.strerror[:1].lower()}{exc.strerror[1:]}{hint}"


# What the system says of a path a user named or can fix; any other OSError is shown whole.
_REFUSALS = {errno.ENOENT, errno.EACCES, errno.EPERM, errno.EISDIR, errno.ENOTDIR, errno.EROFS,
             errno.ENAMETOOLONG, errno.ELOOP}  # fmt: skip


# A write that found no room: on standard output (`capsight caption x.jpg > /dev/full`) there is
# no file name to say, and files capsight writes say their own; either way the disk is the cause.
_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _resume_hint(words: list[str]) -> str:
    """How a stopped ``capsight train`` goes on: the same command, with ``--resume``."""
    return f"run the same command {'again' if '--resume' in words else 'with --resume'}"


def _output_failed(exc: OSError, then: str = "") -> int:
    """One line, not a traceback (twice: at exit too, as the output was flushed). A write names
    no file: standard output, most often, or a file a command was writing. ``then``: how to go
    on once there is room (a training run that had saved an epoch: resume it)."""
    _silence_stdout()
    where = f" {exc.filename}" if exc.filename else " the output, or a file being written"
    advice = f"make room, then {then}" if then else "make room, or write elsewhere"
    print(error_line(f"cannot write{where}: {exc.strerror or exc}; {advice}"), file=sys.stderr)
    return EXIT_OUTPUT_FAILED


def console() -> None:
    """Entry point of the ``capsight`` script and ``python -m capsight``: run, then exit."""
    from capsight.allocator import reuse_freed_memory

    # Before any thread starts (capsight.allocator): a thread that allocated before the call
    # keeps an arena of its own, and later threads such as the video encoder's may be handed
    # it; such arenas give freed pages straight back (400k page faults per 70 s clip, not 210k).
    reuse_freed_memory()
    import os
    import signal

    # A stream the shell closed (`capsight search A q >&-`) is None in Python: output written to
    # it had been an AttributeError traceback; it goes nowhere instead, as the user asked.
    for name in ("stdout", "stderr"):
        if getattr(sys, name) is None:
            setattr(sys, name, open(os.devnull, "w"))  # noqa: SIM115 (open for the process's life)
    command = next((a for a in sys.argv[1:] if not a.startswith("-")), None)
    if command != "train":
        # OpenMP threads that spin while they wait for each other make inference on a busy
        # machine 10x slower (the encoder: 5 against 46 photos/s at load 3.5; `capsight serve`
        # has set this since it shared its cores); an explicit value wins. Before torch loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # The server stops on SIGTERM as its own (uvicorn's) handler says; under torchrun, whose
    # ranks it stops with SIGTERM when one fails, the ranks keep the default (they end at once).
    if command != "serve" and os.environ.get("WORLD_SIZE", "1") in ("", "1"):
        signal.signal(signal.SIGTERM, _on_sigterm)
    status = main()
    try:  # output still buffered: written now, where a failure can be said in one line
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
    except OSError as exc:  # (whatever the cause: this is where the output ends)
        status = _output_failed(exc)
    except ValueError:  # closed
        pass
    if command in FAST_EXIT_COMMANDS:
        import logging

        try:
            sys.stderr.flush()
        except (BrokenPipeError, ValueError):
            pass
        logging.shutdown()
        os._exit(status)
    raise SystemExit(status)


def _silence_stdout() -> None:
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    console()
