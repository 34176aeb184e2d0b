"""Many videos at once: each analysed into a folder of its own, in this process, on a pool of
local processes, or on a Ray cluster (``capsight video archive/ --out out/archive``, with
``--workers N`` and ``--ray ADDRESS``).

    >>> from capsight.batch import analyze_videos
    >>> for outcome in analyze_videos(["a.mp4", "b.mp4"], "out/archive", workers=2, every=1.0):
    ...     print(outcome.video, outcome.novel_at_s if outcome.ok else outcome.error)
    a.mp4 (5.0, 12.0)
    b.mp4 b.mp4: not a video (it looks like text)

Each video goes into ``out``/<its name>/ (``analysis.json``, ``report.html`` and the rest, as
``capsight.novelty.reports.write_outputs`` writes them). Outcomes (``VideoOutcome``) come back as
the videos finish; a video that fails is an outcome with its ``error`` and the others go on. An
unknown model would fail every video alike: its ``ModelNotFound`` is raised instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from capsight.batch.outcome import VideoOutcome, analyze_into, output_folders
from capsight.errors import InvalidParameter, ModelNotFound

__all__ = ["VideoOutcome", "analyze_into", "analyze_videos", "check_workers", "output_folders"]

MAX_WORKERS = 256


def analyze_videos(
    videos: Iterable[str | os.PathLike],
    out: str | os.PathLike,
    *,
    workers: int = 1,
    ray: str | None = None,
    progress: Callable[[int, float, str], None] | None = None,
    **options,
) -> Iterator[VideoOutcome]:
    """Analyse ``videos`` into folders under ``out``; an iterator of their ``VideoOutcome``s.

    ``options``: ``analyze_video``'s (``every``, ``window``, ``metric``, ...), checked before
    any video. ``workers``: videos analysed at once (1: one after the other in this process,
    the models loaded once; more: a pool of processes, or Ray actors). ``ray``: a Ray address
    ("auto", "local", "ray://head:10001") to run on Ray (capsight.batch.ray_runner).
    ``progress(i, fraction, message)`` hears the i-th video's analysis, in this process only.
    Bad arguments raise ``InvalidParameter`` here, before any video is read; an unknown model
    name, found as the first video loads it, raises ``ModelNotFound`` and ends the batch. With
    ``workers`` > 1 the workers are spawned processes, which import the calling script: run the
    batch under ``if __name__ == "__main__":``, as with any multiprocessing. A video named twice
    (by any path to it) is analysed once."""
    from capsight.novelty.pipeline import check_options
    from capsight.progress import check_video_progress

    videos = _video_list(videos)
    if not isinstance(out, (str, os.PathLike)) or not str(out).strip():
        raise InvalidParameter(f"out must be a folder path, got {out!r:.60}", "out")
    workers = check_workers(workers)
    check_video_progress(progress)
    if ray is not None and (not isinstance(ray, str) or not ray.strip()):
        raise InvalidParameter(
            f"ray must be a Ray address such as 'auto' or 'local', got {ray!r}", "ray"
        )
    if unknown := sorted(set(options) - _OPTIONS):
        raise InvalidParameter(f"analyze_videos has no option {unknown[0]!r}; it takes "
                               f"analyze_video's: {', '.join(sorted(_OPTIONS))}")  # fmt: skip
    check_options(
        **{**_CHECKED_DEFAULTS, **{k: options[k] for k in _CHECKED_DEFAULTS if k in options}},
        thumbnail_size=options.get("thumbnail_size"),
        model=options.get("model"),
    )
    tasks = list(zip(videos, output_folders(videos, out), strict=True))
    if ray is not None:
        from capsight.batch.ray_runner import connect, disconnect, run_on_ray

        started = connect(ray.strip())  # before the output folder is made
        try:
            made = _make_folder(out)
        except BaseException:
            disconnect(started)  # (run_on_ray does it when its outcomes end)
            raise
        return _checked_outcomes(run_on_ray(tasks, options, workers, started), made)
    made = _make_folder(out)  # once, here: each worker's own check makes and removes what it lacks
    return _checked_outcomes(_run(tasks, options, workers, progress), made)


def _video_list(videos) -> list[str]:
    """``videos`` as paths, each file once (the first naming kept); one path is a list of one."""
    if isinstance(videos, (str, os.PathLike)):
        videos = [videos]  # not the characters of its name, one video each
    try:
        videos = list(videos)
    except TypeError:
        raise InvalidParameter(f"videos must be paths, got {videos!r:.60}", "videos") from None
    if bad := [v for v in videos if not isinstance(v, (str, os.PathLike))]:
        raise InvalidParameter(f"videos must be paths, got {bad[0]!r:.60}", "videos")
    seen, kept = set(), []
    for video in map(os.fspath, videos):
        if (real := os.path.realpath(video)) not in seen:
            seen.add(real)
            kept.append(video)
    return kept


def _make_folder(out: str | os.PathLike) -> Path | None:
    """Make ``out``; the folder, when this call made it (else None)."""
    folder = Path(out)
    existed = folder.is_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidParameter(
            f"{out}: cannot make the output folder ({exc.strerror or exc})"
        ) from None
    return None if existed else folder


def _run(tasks, options: dict, workers: int, progress) -> Iterator[VideoOutcome]:
    from capsight.batch.local import run_in_process, run_on_pool

    if workers > 1 and len(tasks) > 1:
        return run_on_pool(tasks, options, workers)
    return run_in_process(tasks, options, progress)


def _checked_outcomes(
    outcomes: Iterator[VideoOutcome], made: Path | None = None
) -> Iterator[VideoOutcome]:
    """``outcomes``, until one says the model is unknown: that is raised, and the runner ended
    (a pool's workers stopped) rather than left to fail every other video alike; the output
    folder, when the batch made it and it is still empty, removed (a typo had left it)."""
    try:
        for outcome in outcomes:
            if isinstance(outcome.error, ModelNotFound):
                outcomes.close()
                if made is not None:
                    with contextlib.suppress(OSError):  # not empty: another video's outputs
                        made.rmdir()
                raise outcome.error
            yield outcome
    finally:
        outcomes.close()


# analyze_video's keywords, less the two a batch sets itself (the video and the progress).
_OPTIONS = {"every", "window", "metric", "signal", "sensitivity", "captioner", "greedy",
            "text_embedder", "encoder", "thumbnail_size", "model"}  # fmt: skip
# check_options' keywords at analyze_video's defaults, for those a caller leaves out.
_CHECKED_DEFAULTS = {"every": 1.0, "window": 5, "metric": "cosine", "signal": "fused",
                     "sensitivity": 0.5, "captioner": "default", "greedy": False}  # fmt: skip


def check_workers(workers) -> int:
    """``workers`` as an int from 1 to MAX_WORKERS, else InvalidParameter naming it."""
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= MAX_WORKERS:
        raise InvalidParameter(
            f"workers must be a whole number from 1 to {MAX_WORKERS}, got {workers!r}", "workers"
        )
    return workers
