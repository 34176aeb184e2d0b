"""``VideoOutcome``: what became of one video of a batch, and ``analyze_into``, which makes it.

``analyze_into`` is what every runner calls for each video, in this process, in a pool worker or
in a Ray actor: it analyses the video, writes its five outputs into the video's folder, and
returns the outcome (plain data, so it crosses process and machine boundaries). A failure the
user can act on (a corrupt file, a path that is no video) becomes the outcome's ``error``; a bug
propagates, as anywhere in capsight.

    >>> outcome = analyze_into("clip.mp4", "out/clip", {"every": 1.0})
    >>> outcome.novel_at_s, outcome.report
    ((5.0, 12.0), 'out/clip/report.html')
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from capsight.errors import CapsightError


@dataclass(frozen=True)
class VideoOutcome:
    """One video of a batch: its analysis (``analysis.json``'s content) and where its outputs
    went, or the ``error`` that stopped it."""

    video: str
    folder: str
    # Analysis.to_dict(); capsight.novelty.analysis.Analysis.from_dict. Out of the repr: a few
    # thousand characters of it had buried the video's name and error.
    analysis: dict | None = field(default=None, repr=False)
    outputs: dict[str, str] = field(default_factory=dict)  # "report.html" -> its path
    error: CapsightError | None = None

    @property
    def ok(self) -> bool:
        """Whether the video was analysed (otherwise ``error`` says why)."""
        return self.error is None

    @property
    def novel_at_s(self) -> tuple[float, ...]:
        """The novel moments' times, in seconds."""
        moments = (self.analysis or {}).get("moments", [])
        return tuple(m["time"] for m in moments if m.get("is_novel"))

    @property
    def report(self) -> str | None:
        """The path of its report.html, or None for a video that failed."""
        return self.outputs.get("report.html")

    def to_dict(self) -> dict:
        """JSON-ready: the video, its folder, its analysis and outputs, or its ``error`` as
        text."""
        if self.error is not None:
            return {"video": self.video, "folder": self.folder, "error": str(self.error)}
        return {"video": self.video, "folder": self.folder, "analysis": self.analysis,
                "outputs": dict(self.outputs)}  # fmt: skip


def analyze_into(
    video: str, folder: str | os.PathLike, options: dict, progress=None
) -> VideoOutcome:
    """Analyse ``video`` with ``analyze_video(**options)`` and write its outputs into ``folder``.
    ``progress(fraction, message)``, when given, hears the analysis and the writing."""
    from capsight.novelty.pipeline import analyze_video
    from capsight.novelty.reports import check_output_dir, write_outputs

    try:
        check_output_dir(folder)  # before the minutes of analysis a bad folder would waste
        # (no partial analysis on Ctrl-C: the batch reads an interrupted video as not analysed)
        analysis = analyze_video(video, progress=progress, partial=False, **options)
        # whose folder this is, absolute: a path as typed means another file from elsewhere
        analysis.extra[SOURCE_KEY] = os.path.realpath(video)
        if progress is not None:
            progress(1.0, "writing report")
        outputs = write_outputs(analysis, folder)
    except CapsightError as exc:
        return VideoOutcome(str(video), str(folder), error=exc)
    written = {name: str(path) for name, path in outputs.items()}
    return VideoOutcome(str(video), str(folder), analysis.to_dict(), written)


# analysis.json's extra[SOURCE_KEY]: the real path of the video a batch analysed into a folder.
SOURCE_KEY = "batch_video"
_UNKNOWN = object()  # a folder holding a report of no known video: never taken


def output_folders(videos: list[str], root: str | os.PathLike) -> list[Path]:
    """A folder under ``root`` per video, named after it and made unique (``clip``, ``clip-2``);
    never ``summary.csv``, the CLI's table of the batch beside them.

    The same from run to run: a video whose folder an earlier run made (its ``analysis.json``
    names the video's real path) keeps it, and a folder that holds another video's report, or
    a report that does not say whose it is (written before 2026-12-07), is never given to this
    one. Numbered in the order named, a rerun with fewer videos had written ``sub/clip.mp4``'s
    report over ``clip.mp4``'s in ``clip/``. Names differing only in case are one name (one
    folder on macOS and Windows)."""
    root = Path(root)
    used, folders = {"summary.csv"}, {}
    owners: dict[str, object] = {}
    try:
        existing = {entry.name for entry in os.scandir(root) if entry.is_dir()}
    except OSError:  # (no --out yet)
        existing = set()

    def owner(name: str) -> object:  # the real path of the video whose report it holds
        if name not in owners:
            owners[name] = _report_owner(root / name) if name in existing else None
        return owners[name]

    for video in videos:  # first, each video back into its own folder
        real, stem = os.path.realpath(video), _folder_stem(video)
        for name in sorted(n for n in existing if _numbered(n, stem)):
            if name.casefold() not in used and owner(name) == real:
                folders[video] = root / name
                used.add(name.casefold())
                break
    for video in videos:
        if video in folders:
            continue
        real, stem, n = os.path.realpath(video), _folder_stem(video), 1
        while (name := stem if n == 1 else f"{stem}-{n}").casefold() in used or owner(name) not in (
            None, real):  # fmt: skip
            n += 1
        used.add(name.casefold())
        folders[video] = root / name
    return [folders[video] for video in videos]


def _folder_stem(video: str) -> str:
    """The name a video's folder starts from: its stem ("..mp4" and "...mp4", whose stems are
    "." and "..", had written a report into --out itself and into its parent)."""
    stem = Path(video).stem
    return stem if stem.strip(".") else "video"


def _numbered(name: str, stem: str) -> bool:
    """``name`` is ``stem`` or ``stem-N``."""
    return name == stem or (name.startswith(stem + "-") and name[len(stem) + 1 :].isdigit())


def _report_owner(folder: Path) -> object:
    """The real path of the video whose report ``folder`` holds (``SOURCE_KEY``); None for a
    folder with no report (a run cut short: it may be written into), ``_UNKNOWN`` for a report
    that does not say (its relative path meant a file from where that run started)."""
    import json

    try:
        saved = json.loads((folder / "analysis.json").read_text("utf-8"))
    except OSError:
        return None
    except ValueError:
        return _UNKNOWN
    extra = saved.get("extra") if isinstance(saved, dict) else None
    source = extra.get(SOURCE_KEY) if isinstance(extra, dict) else None
    return source if isinstance(source, str) and os.path.isabs(source) else _UNKNOWN
