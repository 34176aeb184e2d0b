"""``Analysis``: the one result of a video run. Built once by the pipeline; every face renders it.

    >>> analysis = analyze_video("clip.mp4")
    >>> [m.time for m in analysis.novel_moments]
    [12.0, 31.0]
    >>> analysis.to_dict()  # the schema of analysis.json

Schema of ``to_dict()`` (``analysis.json``)::

    {"video": {"path", "duration", "fps", "width", "height", "rotation", "start_time"},
     "params": {"every", "window", "metric", "signal", "sensitivity", "captioner", ...},
     "moments": [{"time", "caption", "novelty", "novelty_text", "novelty_visual",
                  "is_novel", "labels"}, ...],          # every sampled moment, time order
     "novel_moments": [{"index", "time", "novelty", "caption"}, ...],  # time order; index
                                                      # into "moments"
     "extra": {"timings", "captioner", "decoding", "runtime", "selection", ...},
     "capsight_version": "..."}
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from capsight.errors import InvalidParameter

# At one sample every this many seconds or less (the web UI's smallest "Sample every"), the
# reason given for a restless video no longer advises sampling more often.
DENSEST_EVERY = 0.25


@dataclass(frozen=True)
class VideoInfo:
    path: str
    duration: float  # seconds
    fps: float  # average frame rate
    width: int  # display width (after rotation metadata)
    height: int  # display height
    rotation: int = 0  # degrees clockwise applied to decoded frames
    start_time: float = 0.0  # presentation time of the first frame, seconds


@dataclass(frozen=True)
class AnalysisParams:
    every: float = 1.0  # seconds between samples
    window: int = 5  # K previous moments averaged
    metric: str = "cosine"  # cosine | euclidean
    signal: str = "fused"  # text | visual | fused
    sensitivity: float = 0.5  # 0 = only the strongest changes .. 1 = every plausible change
    captioner: str = "default"
    text_embedder: str = "minilm"
    encoder: str = "efficientnet-lite0"


@dataclass
class Moment:
    time: float  # seconds from the start of the video
    caption: str
    novelty: float | None  # the chosen signal's score; None for the first moment
    novelty_text: float | None = None
    novelty_visual: float | None = None
    is_novel: bool = False
    labels: list[tuple[str, float]] = field(default_factory=list)  # top ImageNet classes
    thumbnail: bytes | None = field(default=None, repr=False)  # small JPEG, not serialised


# How quiet_reason() names a setting, per face: the CLI's flags, the same in the report (read
# away from the terminal too: "in the CLI"), the web page's sliders.
SETTING_NAMES = {
    "cli": {"every": "--every", "sensitivity": "--sensitivity", "window": "--window"},
    # (a report from the web page had named only the CLI's flag beside the page's slider)
    "report": {"every": "--every in the CLI, Sample every on the web page",
               "sensitivity": "--sensitivity in the CLI, Sensitivity on the web page",
               "window": "--window in the CLI, Window on the web page"},
    "page": {"every": "the Sample every slider", "sensitivity": "the Sensitivity slider",
             "window": "the Window slider"},
    "legacy": {"every": "every_n_second", "sensitivity": "sensitivity, on POST /v1/videos",
               "window": "rolling_window_size"},
    # POST /v1/videos' form fields
    "api": {"every": "every", "sensitivity": "sensitivity", "window": "window"},
    # analyze_video's arguments
    "python": {"every": "every=", "sensitivity": "sensitivity=", "window": "window="},
}  # fmt: skip
# The least stretch of video the moments a moment is compared with should span: a dissolve
# changes little over less. A cautious line: pyscenedetect__testvideo.mp4 gave all 7 events
# with the default window down to every 0.1 s (a 0.5 s span) on 2026-12-06, and down to every
# 0.05 s (0.25 s) in a rerun on 2026-12-07; 6 at every frame (0.17 s) both days.
NARROWEST_WINDOW_S = 0.5
# The shortest sampling interval a face offers (the page's slider starts at 0.25 s); others take
# any positive number.
SHORTEST_EVERY = {"page": 0.25}


def _setting_names(face: str) -> dict[str, str]:
    """How ``face`` names the settings a sentence may suggest changing."""
    if face not in SETTING_NAMES:
        raise InvalidParameter(f"face must be one of {', '.join(SETTING_NAMES)}, got {face!r}")
    return SETTING_NAMES[face]


def _clean(x: float | None) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 6)


@dataclass(repr=False)  # the default repr prints every moment: pages for a long video
class Analysis:
    """The result of ``analyze_video``: ``video`` (``VideoInfo``), ``params`` (the options it
    ran with), ``moments`` (every sampled ``Moment``, time order), ``extra`` (timings, models,
    the selection's threshold). ``novel_moments`` are the ones that stand out, ``quiet_reason()``
    says why there are none, ``to_dict()`` is ``analysis.json``; ``write_outputs`` in
    ``capsight.novelty.reports`` writes the report files."""

    video: VideoInfo
    params: AnalysisParams
    moments: list[Moment]
    extra: dict = field(default_factory=dict)  # timings, model descriptions, thresholds ...

    @property
    def novel_moments(self) -> list[Moment]:
        """The moments that stand out, in time order."""
        return [m for m in self.moments if m.is_novel]

    def __repr__(self) -> str:
        times = [f"{m.time:g}" for m in self.novel_moments]
        shown = ", ".join(times[:10]) + (", ..." if len(times) > 10 else "")
        novel = f"{len(times)} novel" + (f" at {shown} s" if times else "")
        n = len(self.moments)
        return f"<Analysis of {self.video.path!r}: {n} moment{'' if n == 1 else 's'}, {novel}>"

    @property
    def picking_stopped(self) -> bool:
        """Whether a stop (Ctrl-C, SIGTERM) came while the novel moments were being picked,
        once the moments were captioned and scored (every one, or those before a first stop
        part-way: ``extra["stopped_at"]``): none is marked novel."""
        selection = self.extra.get("selection") if isinstance(self.extra, dict) else None
        return isinstance(selection, dict) and selection.get("stopped") is True

    def cut_short(self) -> str | None:
        """A sentence when the analysis was stopped part-way (``extra["stopped_at"]``: Ctrl-C
        or SIGTERM, ``StoppedPartWay``), or when the video's frames ended before the length its
        header declares and sampling times near the end found no frame (an MP4 cut off in its
        last frames, which is read up to the cut), else None. Checked only where moments are at
        least two frames apart: sampling every frame, a variable frame rate alone can leave a
        time without one."""
        v, every = self.video, self.params.every
        stopped = self.extra.get("stopped_at") if isinstance(self.extra, dict) else None
        if isinstance(stopped, (int, float)):  # Ctrl-C: the moments analysed are its start
            return (f"stopped part-way: only the moments up to {stopped:.1f} s of the "
                    f"{v.duration:.1f} s were analysed")  # fmt: skip
        step = 1.0 / v.fps if v.fps else 0.04
        if not self.moments or v.duration <= 0 or every < 2 * step:
            return None
        last_target = math.floor((v.duration - step) / every + 1e-6) * every
        last = self.moments[-1].time
        if last + every / 2 >= last_target:
            return None
        missing = round((last_target - last) / every)
        return (f"the video's frames end before the {v.duration:.1f} s its file declares (cut off?): "
                f"{missing} moment{'s' * (missing != 1)} after {last:.1f} s could not be sampled")  # fmt: skip

    def notes(self, face: str = "report") -> list[str]:
        """The sentences to show beside the moments, those that apply: why no moment is novel
        (``quiet_reason``), then the ``asides``. The HTTP API joins them into its ``note``."""
        return [note for note in (self.quiet_reason(face), *self.asides(face)) if note]

    def asides(self, face: str = "report") -> list[str]:
        """The notes that apply whether or not a moment is novel, in the order every face gives
        them: frames too small to caption (``small_frames``), frames that end early
        (``cut_short``), changes left out under a restless video's
        raised bar (``raised_bar``) and a window that spans too little video
        (``narrow_window``)."""
        found = (self.small_frames(), self.cut_short(), self.raised_bar(face),
                 self.narrow_window(face))  # fmt: skip
        return [note for note in found if note]

    def small_frames(self) -> str | None:
        """A sentence when the video's frames have a side under ``TINY_SIDE`` px (a 3000x20
        strip), whose captions are guesses, as a tiny photo's is; else None (they had been
        captioned, and moments picked, without a word)."""
        from capsight.captioning.facade import TINY_SIDE, tiny_size

        v = self.video
        size = tiny_size(v.width, v.height) if v.width and v.height else None
        if size is None:
            return None
        return (f"its frames are {size} (under {TINY_SIDE}): too small to show what the captions "
                "say, which are guesses, as its novel moments may be")  # fmt: skip

    def narrow_window(self, face: str = "report") -> str | None:
        """A sentence when the ``window`` moments each moment is compared with span less than
        ``NARROWEST_WINDOW_S`` of video (sampling far more often than the default, or a tiny
        window), else None: a slow change, a dissolve or a fade, differs little from so short a
        stretch before it and may pass unnoticed. ``face`` as for ``quiet_reason``."""
        hint = _setting_names(face)
        v, p = self.video, self.params
        spacing = max(p.every, 1.0 / v.fps if v.fps else 0.0)  # sampling stops at every frame
        span = p.window * spacing
        if len(self.moments) <= p.window or span >= NARROWEST_WINDOW_S - 1e-9:
            return None
        before = ("the moment before each spans" if p.window == 1
                  else f"the {p.window} moments before each span")  # fmt: skip
        sparser = NARROWEST_WINDOW_S / p.window
        return (f"{before} only {span:.3g} s of video, so a slow change (a dissolve, a "
                f"fade) may pass unnoticed: sample every {sparser:.2g} s or more sparsely "
                f"({hint['every']}), or compare with more moments ({hint['window']})")  # fmt: skip

    def raised_bar(self, face: str = "report") -> str | None:
        """A sentence when some moments are novel but the video counted as restless and the
        bar it raised left out more changes picked at the usual one (``extra["selection"]
        ["left_out"]``) than it kept, else None. (At ``--every 3`` on a slideshow, 3 of its 14
        cuts were picked and the other 11 left out without a word. Fewer left out than kept is
        the raised bar at its work, setting nuisances aside: the bundled sample's 4 events are
        picked and a ripple after the last left out.)"""
        selection = self.extra.get("selection") if isinstance(self.extra, dict) else None
        if not self.novel_moments or not isinstance(selection, dict):
            return None
        left_out = len(selection.get("left_out") or [])
        if left_out <= len(self.novel_moments):
            return None
        hint = _setting_names(face)
        why = ("a restless video" if self.params.every <= DENSEST_EVERY else
               f"a restless video, or too few samples for its shots: sample more often, {hint['every']}")  # fmt: skip
        return (f"most moments differ from the ones before them, so the bar to stand out was "
                f"raised ({selection['threshold']:.3g}x the usual) and {_changes(left_out, 'weaker ')} "
                f"that cleared the usual bar {'was' if left_out == 1 else 'were'} left out ({why})")  # fmt: skip

    def quiet_reason(self, face: str = "report") -> str | None:
        """Why no moment is novel, as one sentence for people (None when some moment is).

        A single sampled moment has nothing to be compared with (sampling more often helps,
        unless the video is one frame). Otherwise either nothing cleared the floor (a higher
        sensitivity shows weaker changes), or so many moments did that the video counts as
        restless and its threshold was raised over all of them (``extra["selection"]``): then
        sensitivity 1 is suggested where it would mark some change and the run was below it, else
        sampling more often, unless the run already sampled every ``DENSEST_EVERY`` seconds or less. A higher sensitivity is suggested only
        where the pipeline found that sensitivity 1 would pick some moment
        (``novel_at_sensitivity_1``). The sentence is shown by the CLI, the
        report, the web page and ``/get_video_captions``: ``face`` ("cli", "report", "page", "api",
        "legacy" or "python") picks how it names the setting to change (``SETTING_NAMES``).
        """
        hint = _setting_names(face)
        if self.novel_moments:
            return None
        if self.picking_stopped:  # (after a first stop part-way, only that part was captioned)
            what = "those analysed are" if "stopped_at" in self.extra else "every moment is"
            return (f"the run was stopped while they were being picked ({what} captioned and "
                    "scored; run it again to have them)")  # fmt: skip
        if not self.moments:
            return "no frame could be sampled from the video"
        if len(self.moments) < 2:  # no moment had another to be compared with
            v, every = self.video, self.params.every
            if v.fps and v.duration * v.fps < 2:
                return "the video holds a single frame, so there is nothing to compare it with"
            shortest = SHORTEST_EVERY.get(face)
            last_frame = v.duration - (1.0 / v.fps if v.fps else 0.0)  # a frame at or after a time
            if shortest is not None and (every <= shortest or last_frame < shortest):
                why = (
                    f"the video lasts {v.duration:.3g} s, too short for two samples at "
                    if last_frame < shortest
                    else f"the video lasts {v.duration:.3g} s, sampled at "
                )
                return (f"only one moment was sampled: {why}{hint['every']}'s shortest interval "
                        f"({shortest:g} s), so there is nothing to compare it with (capsight video "
                        "--every in the CLI samples as often as each frame)")  # fmt: skip
            return (
                "only one moment was sampled, so there is nothing to compare it with (the video "
                f"lasts {v.duration:.3g} s: sample more often than every {every:g} s, "
                f"{hint['every']})"
            )
        selection = self.extra.get("selection") or {}
        return self._quiet_reason(selection, hint) + self._flat_aside(selection)

    def _quiet_reason(self, selection: dict, hint: dict) -> str:
        """``quiet_reason`` for two or more moments, none novel."""
        strengths = [s for s in selection.get("strength") or [] if s is not None]
        at_most = selection.get("novel_at_sensitivity_1")
        sensitivity = self.params.sensitivity
        if selection.get("threshold", 1.0) > 1.0 and any(s > 1.0 for s in strengths):
            every = self.params.every
            # the user's own setting
            if sensitivity < 1 and isinstance(at_most, int) and at_most > 0:
                why = (f"a restless video, at sensitivity {sensitivity:g}; at sensitivity 1 "
                       f"({hint['sensitivity']}), {_changes(at_most)} would stand out")  # fmt: skip
            elif every <= DENSEST_EVERY:
                why = f"a restless video, even at one sample every {every:g} s"
            else:
                why = (f"a restless video, or one sample every {every:g} s is too few for its "
                       f"shots: sample more often, {hint['every']}")  # fmt: skip
            return (f"every moment differs from the ones before it, so the bar to stand out was "
                    f"raised ({why}){self._nearest_miss(selection)}")  # fmt: skip
        if at_most == 0:  # the most sensitive run finds nothing either: no use suggesting it
            return "nothing stands out from what came before, even at the highest sensitivity (1)"
        if isinstance(at_most, int) and at_most > 0:
            return (
                f"nothing stands out from what came before at sensitivity "
                f"{sensitivity:g}; at sensitivity 1 ({hint['sensitivity']}), "
                f"{_changes(at_most, 'weaker ')} would stand out (weaker changes are more often a "
                "nuisance than a new scene)"
            )
        return (
            f"nothing stands out from what came before at sensitivity {sensitivity:g} "
            f"(a higher sensitivity, {hint['sensitivity']}, shows weaker changes)"
        )

    def _flat_aside(self, selection: dict) -> str:
        """The flat moments (a blank frame, a flash, a fade's black), said: their spike on the
        plot ("19x a typical moment" for one white frame) had gone unexplained."""
        from capsight.novelty.reports import moment_clock

        flat = [i for i in selection.get("flat") or [] if 0 < i < len(self.moments)]
        if not flat:
            return ""
        clock = moment_clock(self)
        when = ", ".join(clock(self.moments[i].time) for i in flat[:3]) + (
            f" and {len(flat) - 3} more" if len(flat) > 3 else "")  # fmt: skip
        one = len(flat) == 1
        return (f"; {when} {'is a blank frame' if one else 'are blank frames'} (a flash, a fade, a "
                f"black card), set aside whatever {'its' if one else 'their'} spike on the plot")  # fmt: skip

    def _nearest_miss(self, selection: dict) -> str:
        """The moment of a restless video that came nearest to its bar, and how near, for a
        plot whose spike is not marked novel ("" when the analysis predates ``end_from``)."""
        from capsight.novelty.reports import moment_clock

        strength, end_from = selection.get("strength") or [], selection.get("end_from")
        if end_from is None:
            return ""
        reached = [  # (share of its bar, moment): the bar is 1.5x as high from end_from on
            (s / (selection["threshold"] * (1.5 if i >= end_from else 1.0)), i)
            for i, s in enumerate(strength) if s is not None and i < len(self.moments)
        ]  # fmt: skip
        if not reached:
            return ""
        share, i = max(reached)
        when = moment_clock(self)(self.moments[i].time)
        said = f"; the change that came nearest, at {when}, reached {share:.0%} of the bar"
        if i >= end_from:
            said += " (1.5x higher near the end, where what follows cannot be checked)"
        return said

    def to_dict(self) -> dict:
        """JSON-ready, as analysis.json holds it (thumbnails left out); ``from_dict`` reads it."""
        from capsight import __version__

        return {
            "video": asdict(self.video),
            "params": asdict(self.params),
            "moments": [
                {
                    "time": round(m.time, 3),
                    "caption": m.caption,
                    "novelty": _clean(m.novelty),
                    "novelty_text": _clean(m.novelty_text),
                    "novelty_visual": _clean(m.novelty_visual),
                    "is_novel": m.is_novel,
                    "labels": [[name, p] for name, p in m.labels],
                }
                for m in self.moments
            ],
            # "index": the moment's place in "moments" (and the API's thumbnail number)
            "novel_moments": [
                {
                    "index": i,
                    "time": round(m.time, 3),
                    "novelty": _clean(m.novelty),
                    "caption": m.caption,
                }
                for i, m in enumerate(self.moments)
                if m.is_novel
            ],  # fmt: skip
            "extra": self.extra,
            "capsight_version": __version__,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Analysis:
        """``to_dict()``'s layout (``analysis.json``) back into an Analysis; InvalidParameter
        names what is missing or malformed."""
        if not isinstance(data, dict):  # None: "'NoneType' object is not subscriptable"
            raise InvalidParameter(f"an analysis is a dict, as to_dict() and analysis.json give "
                                   f"it, not {type(data).__name__!r}")  # fmt: skip
        try:
            moments = [
                Moment(
                    time=m["time"],
                    caption=m["caption"],
                    novelty=m.get("novelty"),
                    novelty_text=m.get("novelty_text"),
                    novelty_visual=m.get("novelty_visual"),
                    is_novel=m.get("is_novel", False),
                    labels=[tuple(x) for x in m.get("labels", [])],
                )
                for m in data["moments"]
            ]
            video, params = VideoInfo(**data["video"]), AnalysisParams(**data["params"])
        except KeyError as error:
            raise InvalidParameter(f"not an analysis as capsight writes it: no {error}") from None
        except (TypeError, AttributeError, ValueError) as error:
            raise InvalidParameter(f"not an analysis as capsight writes it: {error}") from None
        if problem := _wrong_kind(video, params, moments):  # (tracebacks in the report's renderers)
            raise InvalidParameter(f"not an analysis as capsight writes it: {problem}")
        return cls(video, params, moments, data.get("extra", {}))


def _number(value: object, finite: bool = True) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and (not finite or math.isfinite(value))
    )


def _wrong_kind(video: VideoInfo, params: AnalysisParams, moments: list[Moment]) -> str | None:
    """What in an analysis read back is not of the kind ``to_dict`` writes, or None."""
    if not isinstance(video.path, str):
        return f"video path {video.path!r} is not text"
    for name in ("duration", "fps", "width", "height"):
        if not _number(getattr(video, name)):
            return f"video {name} {getattr(video, name)!r} is not a number"
    if not (_number(params.every) and params.every > 0):
        return f"every {params.every!r} is not a positive number of seconds"
    for m in moments:
        if not _number(m.time):
            return f"a moment's time {m.time!r} is not a number"
        if not isinstance(m.caption, str):
            return f"the moment at {m.time} s has a caption that is not text ({m.caption!r})"
        for name in ("novelty", "novelty_text", "novelty_visual"):
            value = getattr(m, name)
            if value is not None and not _number(value, finite=False):  # (as the scores came)
                return f"the moment at {m.time} s has a {name} that is not a number ({value!r})"
        if not all(len(pair) == 2 and isinstance(pair[0], str) and _number(pair[1], finite=False)
                   for pair in m.labels):  # fmt: skip
            return f"the moment at {m.time} s has labels that are not [[class, probability], ...]"
    return None


def _changes(count: int, kind: str = "") -> str:
    """ "1 weaker change", "3 weaker changes"."""
    return f"{count} {kind}change{'s' if count > 1 else ''}"


class StoppedPartWay(KeyboardInterrupt):
    """Ctrl-C during ``pipeline.analyze_video`` once moments were captioned: still a
    KeyboardInterrupt, whose ``analysis`` holds those moments, scored and selected as a video
    that ended there (``extra["stopped_at"]``: the last one's time), for a caller to keep.
    (Another KeyboardInterrupt, the CLI's SIGTERM, is raised as it came, with ``analysis``.)"""

    def __init__(self, analysis: Analysis) -> None:
        super().__init__(analysis)  # (in args: a pickled copy is whole)
        self.analysis = analysis
