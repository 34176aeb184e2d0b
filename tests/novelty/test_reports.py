"""The report renderers on a hand-made Analysis: every format parses back and says the truth."""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
import json
import os
import re
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from capsight.errors import InvalidParameter
from capsight.novelty.analysis import Analysis, AnalysisParams, Moment, VideoInfo
from capsight.novelty.reports import (
    CSV_COLUMNS,
    NO_SCORE_NOTE,
    NOVEL_NOTE,
    ONE_MOMENT_NOTE,
    format_clock,
    format_vtt_timestamp,
    moment_clock,
    novelty_figure,
    render_csv,
    render_plot_png,
    render_report_html,
    render_vtt,
    write_outputs,
)

NASTY = 'a <script>alert("x")</script> & a cat --> dog\n\nnext'


def _jpeg(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 36), color).save(buffer, "JPEG")
    return buffer.getvalue()


def make_analysis(
    n: int = 12, novel: tuple[int, ...] = (4, 9), caption_at: dict[int, str] | None = None
) -> Analysis:
    caption_at = caption_at or {}
    moments = []
    for i in range(n):
        score = None if i == 0 else (0.7 if i in novel else 0.1)
        moments.append(
            Moment(
                time=float(i),
                caption=caption_at.get(i, f"a photo of scene {i // 5}"),
                novelty=score,
                novelty_text=None if score is None else score * 0.9,
                novelty_visual=None if score is None else score * 1.1,
                is_novel=i in novel,
                labels=[("tabby", 0.61), ("tiger cat", 0.2)],
                thumbnail=_jpeg((20 * i, 80, 120)),
            )
        )
    return Analysis(
        VideoInfo("/videos/clip.mp4", float(n), 25.0, 480, 270), AnalysisParams(), moments, {}
    )


def test_clock_and_vtt_timestamps():
    assert format_clock(0) == "00:00"
    assert format_clock(65.9) == "01:05"
    assert format_clock(3725) == "1:02:05"
    assert format_vtt_timestamp(3725.5) == "01:02:05.500"
    assert format_clock(0.5, tenths=True) == "00:00.5"
    assert format_clock(3725.96, tenths=True) == "1:02:05.9"
    # a length rounds: a 25.97 s video is 00:26 long, though its last moment is at 00:25
    assert format_clock(25.97, rounded=True) == "00:26" and format_clock(25.97) == "00:25"
    assert format_clock(25.97, tenths=True, rounded=True) == "00:26.0"
    # An hour-long video's times all have hours ("00:02" had sat beside "1:00:00")
    assert format_clock(2, hours=True) == "0:00:02" and format_clock(3725, hours=True) == "1:02:05"
    hour = dataclasses.replace(make_analysis(), video=VideoInfo("long.mp4", 3700.0, 25.0, 64, 48))
    assert moment_clock(hour)(2.0) == "0:00:02" and moment_clock(make_analysis())(2.0) == "00:02"
    almost = dataclasses.replace(hour, video=VideoInfo("long.mp4", 3599.6, 25.0, 64, 48))
    assert moment_clock(almost)(2.0) == "0:00:02"  # its length reads 1:00:00


def test_moments_half_a_second_apart_are_told_apart():
    analysis = make_analysis()
    assert moment_clock(analysis)(4.0) == "00:04"  # every 1 s: whole seconds
    half = dataclasses.replace(analysis, params=AnalysisParams(every=0.5))
    assert moment_clock(half)(0.5) == "00:00.5"
    assert "00:04.0" in render_report_html(half, plot_png=b"")
    every_frame = dataclasses.replace(analysis, params=AnalysisParams(every=1e-9))  # frame times
    assert moment_clock(every_frame)(3.754) == "00:03.7"
    # every frame of a 25 fps video: 0.00 and 0.04 had both read 00:00.0
    frames = [dataclasses.replace(m, time=i / 25) for i, m in enumerate(analysis.moments)]
    at_25 = dataclasses.replace(every_frame, moments=frames)
    assert [moment_clock(at_25)(m.time) for m in frames[:3]] == ["00:00.00", "00:00.04", "00:00.08"]
    assert format_clock(2.675, hundredths=True) == "00:02.67"


def test_csv_has_a_row_per_moment_and_marks_the_novel_ones():
    analysis = make_analysis()
    rows = list(csv.DictReader(io.StringIO(render_csv(analysis))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert len(rows) == len(analysis.moments)
    assert rows[0]["novelty"] == ""  # the first moment has nothing before it
    assert [r["time"] for r in rows if r["is_novel"] == "1"] == ["4.000", "9.000"]
    assert rows[4]["top_label"] == "tabby" and float(rows[4]["novelty"]) == pytest.approx(0.7)
    assert rows[4]["strength"] == ""  # a run without a selection record
    analysis.extra["selection"] = {"strength": [None, *[0.5 + i for i in range(11)]]}
    rows = list(csv.DictReader(io.StringIO(render_csv(analysis))))
    assert rows[0]["strength"] == "" and rows[4]["strength"] == "3.5000"
    analysis.extra["selection"] = {"strength": [None, -0.00001, -0.25, *[0.5] * 9]}
    rows = list(csv.DictReader(io.StringIO(render_csv(analysis))))
    assert rows[1]["strength"] == "0.0000" and rows[2]["strength"] == "-0.2500"  # no "-0.0000"


def test_vtt_cues_run_from_each_moment_to_the_next_and_escape_text():
    analysis = make_analysis(n=3, novel=(), caption_at={1: NASTY})
    vtt = render_vtt(analysis)
    assert vtt.startswith("WEBVTT\n\n")
    timings = re.findall(r"^(\S+) --> (\S+)$", vtt, flags=re.M)
    assert timings == [
        ("00:00:00.000", "00:00:01.000"),
        ("00:00:01.000", "00:00:02.000"),
        ("00:00:02.000", "00:00:03.000"),
    ]
    cue = vtt.split("00:00:01.000 --> 00:00:02.000\n")[1].split("\n\n")[0]
    assert "\n" not in cue and "<script>" not in cue and "-->" not in cue
    assert "&lt;script&gt;" in cue and "&amp;" in cue
    # The last cue runs to the end of the video, even when sampling was finer than the frames.
    fine = dataclasses.replace(analysis, params=AnalysisParams(every=0.001))
    assert re.findall(r"^(\S+) --> (\S+)$", render_vtt(fine), flags=re.M)[-1] == (
        "00:00:02.000",
        "00:00:03.000",
    )
    unknown = dataclasses.replace(fine, video=dataclasses.replace(fine.video, duration=0.0))
    assert re.findall(r"^(\S+) --> (\S+)$", render_vtt(unknown), flags=re.M)[-1] == (
        "00:00:02.000",
        "00:00:03.000",
    )  # no duration: the moments' own spacing
    # Stopped part-way (Ctrl-C at 00:02 of a longer video): the last cue lasts one interval,
    # not the rest of the video, and a note says where captions stop.
    long = dataclasses.replace(analysis, video=dataclasses.replace(analysis.video, duration=3600))
    stopped = dataclasses.replace(long, extra={"stopped_at": 2.0})
    assert re.findall(r"^(\S+) --> (\S+)$", render_vtt(stopped), flags=re.M)[-1] == (
        "00:00:02.000",
        "00:00:03.000",
    )
    assert "NOTE stopped part-way: no captions after 00:00:02.000" in render_vtt(stopped)
    assert re.findall(r"^(\S+) --> (\S+)$", render_vtt(long), flags=re.M)[-1][1] == "01:00:00.000"


def test_plot_is_a_readable_png():
    png = render_plot_png(make_analysis())
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (1100, 420)
    assert len(set(image.convert("RGB").getdata())) > 50  # something was drawn


def test_drawing_the_plot_leaves_the_callers_matplotlib_backend_alone(tmp_path):
    """matplotlib.use("Agg") had switched a notebook's backend: its plots stopped showing."""
    import subprocess
    import sys

    script = (
        "import matplotlib, matplotlib.pyplot\n"
        "matplotlib.use('svg')\n"
        "from capsight.novelty.reports import preload_plotting, render_plot_png\n"
        "from tests.novelty.test_reports import make_analysis\n"
        "preload_plotting(); render_plot_png(make_analysis())\n"
        "print(matplotlib.get_backend())\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["svg"]


def test_a_video_named_in_a_script_the_font_lacks_draws_without_warnings():
    """matplotlib warned once per missing glyph, source lines and all, in the CLI's output."""
    import warnings

    analysis = make_analysis()
    named = dataclasses.replace(
        analysis, video=dataclasses.replace(analysis.video, path="/videos/日本語.mp4")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert Image.open(io.BytesIO(render_plot_png(named))).size == (1100, 420)
    from capsight.novelty.reports import drawable

    assert (
        drawable("日本語 clip é.mp4") == "\u25a1\u25a1\u25a1 clip é.mp4"
    )  # boxes, as drawn before


def _texts(fig) -> list[str]:
    """Every text drawn in the figure and its axes, whitespace collapsed."""
    artists = [*fig.texts, *(t for ax in fig.axes for t in ax.texts)]
    return [" ".join(t.get_text().split()) for t in artists]


def _pipeline_analysis() -> Analysis:
    """An Analysis whose ``extra`` is what the pipeline writes: a real selection on a cut."""
    from capsight.novelty.scoring import novelty_scores
    from capsight.novelty.selection import select_novel_moments

    rng = np.random.default_rng(0)
    scenes = rng.normal(size=(2, 64))
    x = np.stack([scenes[int(i >= 15)] + 0.05 * rng.normal(size=64) for i in range(30)])
    selection = select_novel_moments({"visual": x}, every=1.0)
    assert selection.indices == [15]
    scores = novelty_scores(x)
    moments = [Moment(time=float(i), caption=f"scene {int(i >= 15)}",
                      novelty=None if i == 0 else float(scores[i]),
                      novelty_visual=None if i == 0 else float(scores[i]),
                      is_novel=i in selection.indices) for i in range(30)]  # fmt: skip
    return Analysis(
        VideoInfo("/videos/cut.mp4", 30.0, 25.0, 480, 270),
        AnalysisParams(signal="visual"),
        moments,
        {"selection": selection.describe()},
    )


def test_the_plot_marks_novel_moments_and_says_why_instead_of_a_threshold_line():
    # The selection's threshold is in strength units (extra["selection"]), not the plotted
    # novelty's: no line on the plot can stand for it, so the plot names what marks a moment.
    analysis = _pipeline_analysis()
    fig = novelty_figure(analysis)
    (ax,) = fig.axes
    assert NOVEL_NOTE in _texts(fig)
    level_lines = [line for line in ax.lines
                   if len(line.get_xdata()) > 1 and len(set(line.get_ydata())) == 1]  # fmt: skip
    assert not level_lines  # no horizontal threshold line, in any units
    marked = [line.get_xdata()[0] for line in ax.lines
              if len(line.get_xdata()) == 2 and len(set(line.get_xdata())) == 1]  # fmt: skip
    assert marked == [15.0]
    assert "novel moment" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_an_hours_plot_says_its_clock_has_hours_and_draws_no_dot_per_moment():
    """An hour at a moment a second: "time (mm:ss)" under ticks that read 1:00:00, and 3,726
    dots that made the curve a solid band."""
    import matplotlib.pyplot as plt

    from capsight.novelty.reports import MARKED_MOMENTS

    n = 3700
    moments = [Moment(time=float(t), caption="a road", novelty=None if t == 0 else 0.1 + (t % 7) / 10)
               for t in range(n)]  # fmt: skip
    long = Analysis(VideoInfo("long.mp4", float(n), 25.0, 64, 48), AnalysisParams(), moments)
    fig = novelty_figure(long)
    (ax,) = fig.axes
    assert ax.get_xlabel() == "time (h:mm:ss)"
    curve = next(line for line in ax.lines if len(line.get_xdata()) == n)
    assert curve.get_marker() in (None, "None", "") and n > MARKED_MOMENTS
    plt.close(fig)
    short = novelty_figure(_pipeline_analysis())
    assert short.axes[0].get_xlabel() == "time (mm:ss)"
    plt.close(short)


def test_a_plot_without_novel_moments_has_no_note_about_them():
    fig = novelty_figure(make_analysis(novel=()))
    assert NOVEL_NOTE not in _texts(fig)


@pytest.mark.parametrize("peak", [15.0, 1000.0, 2e-5])  # ticks up to "17.5", "1200", "0.000025"
def test_the_y_axis_label_and_ticks_fit_in_the_figure_at_any_scale(peak):
    analysis = make_analysis()
    analysis.params = dataclasses.replace(analysis.params, signal="visual", metric="euclidean")
    for m in analysis.moments[1:]:
        m.novelty = m.novelty_visual = m.novelty / 0.7 * peak
    fig = novelty_figure(analysis)
    fig.canvas.draw()
    (ax,) = fig.axes
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert max(len(t) for t in ticks) >= 4
    drawn = ax.yaxis.get_tightbbox(fig.canvas.get_renderer())  # tick labels and the axis label
    assert 0 <= drawn.x0 <= 20  # inside the figure, without a wide empty margin
    assert ax.yaxis.get_offset_text().get_text() == ""  # no "1e-5" multiplier over the title


def test_a_still_video_plots_its_zero_novelty_on_a_readable_scale():
    # every moment equal to the ones before it (a still or uniformly fading frame): the ticks
    # were 0.0000002 .. 0.0000012, or 17 decimals where float noise (2e-16, JSON's 0.0) was
    # left in the caption's novelty: a made-up scale for a curve that is 0 throughout
    analysis = make_analysis(novel=())
    for m in analysis.moments[1:]:
        m.novelty_visual = 0.0
        m.novelty = m.novelty_text = 2.2e-16
    fig = novelty_figure(analysis)
    fig.canvas.draw()
    (ax,) = fig.axes
    assert ax.get_ylim()[1] >= 1.0
    assert max(len(t.get_text()) for t in ax.get_yticklabels()) <= 3  # "0.0" .. "1.2"


@pytest.mark.parametrize(("signal", "least"), [("fused", 2.0), ("visual", 0.3)])
def test_a_small_blip_in_a_still_video_is_not_drawn_as_tall_as_a_cut(signal, least):
    """A still video's codec blip (0.026) had filled the axis: a spike as tall as any cut."""
    analysis = make_analysis(novel=())
    analysis.params = dataclasses.replace(analysis.params, signal=signal, metric="cosine")
    for m in analysis.moments[1:]:
        m.novelty = m.novelty_visual = m.novelty_text = 0.002
    analysis.moments[5].novelty = analysis.moments[5].novelty_visual = 0.026
    (ax,) = novelty_figure(analysis).axes
    assert ax.get_ylim()[1] >= least * 1.3


@pytest.mark.parametrize(("n", "note"), [(1, ONE_MOMENT_NOTE), (4, NO_SCORE_NOTE)])
def test_a_plot_with_nothing_to_compare_says_so_on_an_empty_axis(n, note):
    analysis = make_analysis(n=n, novel=())
    for m in analysis.moments:
        m.novelty = m.novelty_text = m.novelty_visual = None
    fig = novelty_figure(analysis)
    fig.canvas.draw()
    (ax,) = fig.axes
    assert _texts(fig) == [note]
    assert not ax.lines and len(ax.get_yticks()) == 0  # no scale for values that do not exist
    assert ax.yaxis.get_offset_text().get_text() == ""
    assert ax.get_xlim() == (0.0, float(n))  # the video's duration
    image = Image.open(io.BytesIO(render_plot_png(analysis)))
    assert image.format == "PNG" and image.size == (1100, 420)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_report_is_self_contained_and_shows_each_novel_moment():
    analysis = make_analysis(caption_at={9: NASTY})
    page = render_report_html(analysis)
    parser = _Collector()
    parser.feed(page)
    tags = [t for t, _ in parser.tags]
    assert "script" not in tags  # the caption's <script> was escaped, not injected
    assert '<script>alert("x")</script>' in "".join(parser.text)  # shown as text, intact
    sources = [a["src"] for t, a in parser.tags if t == "img"]
    assert all(s.startswith("data:image/") for s in sources)  # nothing fetched from elsewhere
    assert not [a for t, a in parser.tags if t == "link"]
    # one plot + one thumbnail per novel moment, and the thumbnails are the moments' own JPEGs
    assert len(sources) == 1 + len(analysis.novel_moments)
    thumbs = [base64.b64decode(s.split(",", 1)[1]) for s in sources[1:]]
    assert thumbs == [m.thumbnail for m in analysis.novel_moments]
    assert Image.open(io.BytesIO(base64.b64decode(sources[0].split(",", 1)[1]))).format == "PNG"
    text = " ".join(parser.text)
    assert "00:04" in text and "00:09" in text
    assert text.count("a photo of scene") >= len(analysis.moments) - 1  # the all-moments table
    # For a screen reader: the plot in words, a heading per novel moment, novel rows named.
    plot_alt = [a["alt"] for t, a in parser.tags if t == "img"][0]
    assert (
        plot_alt.startswith("Novelty over time for") and "00:04" in plot_alt and "00:09" in plot_alt
    )
    assert "Novel moment 1 · 00:04" in text and text.count(", novel") == len(analysis.novel_moments)
    assert "2 novel moments among\n12 sampled · /videos/clip.mp4</p>" in page  # where it is
    analysis.video = dataclasses.replace(analysis.video, path="clip.mp4")
    assert "12 sampled</p>" in render_report_html(analysis)  # not the heading's name again


def test_on_a_phone_the_reports_plot_says_it_scrolls_sideways():
    """At 390 px the plot was cut at the screen's edge, with nothing saying it went on."""
    page = render_report_html(make_analysis(), plot_png=b"\x89PNG")
    narrow = page.split("@media (max-width:600px)")[1].split("</style>")[0]
    assert (
        ".plot{overflow-x:auto}" in narrow
        and 'content:"Swipe sideways for the whole plot \\2192"' in narrow
    )


def test_report_without_novel_moments_says_so():
    page = render_report_html(make_analysis(novel=()), plot_png=b"\x89PNG")
    assert "No novel moments: nothing stands out" in page and "--sensitivity" in page


def test_without_novel_moments_the_reason_tells_a_quiet_video_from_a_restless_one():
    quiet = make_analysis(novel=())
    quiet.extra["selection"] = {"threshold": 1.0, "strength": [None, 0.2, 0.9, 0.4]}
    assert "higher sensitivity, --sensitivity in the CLI" in quiet.quiet_reason()
    # every moment cleared the floor, so the threshold was raised over all of them: sensitivity
    # would not help, denser sampling might; the advice names the setting for the CLI and the UI
    restless = make_analysis(novel=())
    restless.extra["selection"] = {"threshold": 9.2, "strength": [None, 1.5, 3.5, 3.1]}
    reason = restless.quiet_reason()
    assert "every moment differs" in reason and "one sample every 1 s" in reason
    assert "sample more often, --every in the CLI, Sample every on the web page" in reason
    assert "sensitivity" not in reason
    assert "sample more often, the Sample every slider)" in restless.quiet_reason(face="page")
    assert "largest change" not in reason  # an analysis from before end_from was recorded
    assert make_analysis().quiet_reason() is None  # it has novel moments


@pytest.mark.parametrize(
    ("end_from", "said"),
    [
        (3, "; the change that came nearest, at 00:02, reached 38% of the bar"),  # 3.5 / 9.2
        (
            2,
            "; the change that came nearest, at 00:02, reached 25% of the bar (1.5x higher near the end, "
            "where what follows cannot be checked)",
        ),  # 3.5 / (1.5 x 9.2)
        (1, "; the change that came nearest, at 00:02, reached 25% of the bar (1.5x higher"),
    ],
)
def test_a_restless_video_names_its_largest_change_against_the_bar(end_from, said):
    """The plot shows a spike that is not marked novel: the reason says how far it fell short."""
    restless = make_analysis(novel=())
    restless.extra["selection"] = {
        "threshold": 9.2,
        "strength": [None, 1.5, 3.5, 3.1],
        "end_from": end_from,
    }
    assert said in restless.quiet_reason()


def test_the_nearest_miss_is_measured_against_each_moments_own_bar():
    """A stronger change near the end, where the bar is 1.5x, may be further from its bar."""
    restless = make_analysis(novel=())
    restless.extra["selection"] = {
        "threshold": 4.0,
        "strength": [None, 1.5, 3.9, 5.0],
        "end_from": 3,
    }
    assert "at 00:02, reached 98% of the bar" in restless.quiet_reason()  # not 00:03's 83%


def test_a_blank_frame_set_aside_is_said_where_nothing_is_novel():
    """One white frame on a still video peaks at 19x a typical moment on the plot, and the
    note said only that nothing stands out."""
    flash = make_analysis(novel=())
    flash.extra["selection"] = {"threshold": 1.0, "strength": [None, 0.2, 0.4],
                                "novel_at_sensitivity_1": 0, "flat": [5]}  # fmt: skip
    assert flash.quiet_reason().endswith(
        "; 00:05 is a blank frame (a flash, a fade, a black card), set aside whatever its spike "
        "on the plot"
    )
    flash.extra["selection"]["flat"] = [0, 2, 3, 4, 5]  # (the first moment has no spike)
    assert "; 00:02, 00:03, 00:04 and 1 more are blank frames" in flash.quiet_reason()
    flash.extra["selection"]["flat"] = []
    assert "blank frame" not in flash.quiet_reason()


def test_a_higher_sensitivity_is_suggested_only_where_it_would_find_something():
    """The pipeline reruns the selection at sensitivity 1 when it found nothing: where that
    finds nothing either (or only a restless video), suggesting it would send people in a circle."""
    hopeless = make_analysis(novel=())
    hopeless.extra["selection"] = {"threshold": 1.0, "strength": [None, 0.2, 0.4],
                                   "novel_at_sensitivity_1": 0}  # fmt: skip
    reason = hopeless.quiet_reason()
    assert "even at the highest sensitivity (1)" in reason and "--sensitivity" not in reason
    hopeful = make_analysis(novel=())
    hopeful.extra["selection"] = {"threshold": 1.0, "strength": [None, 0.2, 0.9],
                                  "novel_at_sensitivity_1": 2}  # fmt: skip
    reason = hopeful.quiet_reason(face="page")
    assert "at sensitivity 1 (the Sensitivity slider), 2 weaker changes would stand out" in reason


def test_a_restless_video_at_a_low_sensitivity_is_told_of_the_sensitivity_first():
    """At --sensitivity 0 the bottle clip's advice was to sample more often; at 0.5 it has 7."""
    low = make_analysis(novel=())
    low.params = AnalysisParams(sensitivity=0.0)
    low.extra["selection"] = {"threshold": 6.0, "strength": [None, 1.5, 3.5, 3.1], "end_from": 9,
                              "novel_at_sensitivity_1": 7}  # fmt: skip
    reason = low.quiet_reason()
    assert (
        "a restless video, at sensitivity 0; at sensitivity 1 (--sensitivity in the CLI, Sensitivity on the web page), 7 changes would stand out"
        in reason
    )
    assert "sample more often" not in reason
    low.params = AnalysisParams(sensitivity=1.0)  # already at 1: sampling is what is left
    assert "sample more often" in low.quiet_reason()


def test_a_single_sampled_moment_is_the_reason_not_the_sensitivity():
    # --every longer than the video (or a video under one --every): one moment, nothing before
    # it; a higher sensitivity cannot help, a smaller --every can
    one = make_analysis(n=1, novel=())
    one.video = VideoInfo("/videos/clip.mp4", 9.968, 16.05, 480, 270)
    one.params = AnalysisParams(every=100.0)
    one.extra["selection"] = {"threshold": 1.0, "strength": [None]}
    reason = one.quiet_reason()
    assert "only one moment was sampled" in reason and "lasts 9.97 s" in reason
    assert "more often than every 100 s, --every in the CLI" in reason
    assert "every 100 s, the Sample every slider)" in one.quiet_reason(face="page")
    assert "sensitivity" not in reason
    # Seven frames, 0.28 s: the last at 0.24 s, before a second sample at the page's shortest
    # interval, so its slider cannot help
    one.video = VideoInfo("/videos/blink.mp4", 0.28, 25.0, 480, 270)
    page = one.quiet_reason(face="page")
    assert (
        "lasts 0.28 s, too short for two samples at the Sample every slider's shortest interval (0.25 s)"
        in page
    )
    assert "more often than" not in page
    one.params = AnalysisParams(every=0.25)  # the slider at its end already, whatever the video
    one.video = VideoInfo("/videos/short.mp4", 0.4, 25.0, 480, 270)
    assert (
        "lasts 0.4 s, sampled at the Sample every slider's shortest interval"
        in one.quiet_reason(face="page")
    )
    one.params = AnalysisParams(every=100.0)
    one.video = VideoInfo("/videos/blink.mp4", 0.28, 25.0, 480, 270)
    assert "more often than every 100 s, --every in the CLI" in one.quiet_reason()
    one.video = VideoInfo("/videos/still.mp4", 0.04, 25.0, 480, 270)  # a one-frame video
    assert one.quiet_reason() == (
        "the video holds a single frame, so there is nothing to compare it with"
    )


@pytest.mark.parametrize("every", [0.25, 0.1])
def test_a_restless_video_sampled_densely_is_not_told_to_sample_more_often(every):
    restless = make_analysis(novel=())
    restless.params = AnalysisParams(every=every)
    restless.extra["selection"] = {"threshold": 9.2, "strength": [None, 1.5, 3.5, 3.1]}
    reason = restless.quiet_reason()
    assert "every moment differs" in reason and f"one sample every {every:g} s" in reason
    assert "more often" not in reason and "--every" not in reason


def test_the_report_says_what_the_novelty_number_is_for_each_signal():
    analysis = make_analysis()
    fused = render_report_html(analysis, plot_png=b"\x89PNG")  # default signal: fused
    assert "divided by its median over the video" in fused
    analysis.params = dataclasses.replace(analysis.params, signal="text", metric="euclidean")
    text = render_report_html(analysis, plot_png=b"\x89PNG")
    assert "the euclidean distance of each moment&#x27;s caption embedding" in text


def test_a_window_wider_than_the_video_is_all_the_previous_moments():
    from capsight.novelty.reports import previous_moments

    analysis = make_analysis()
    n = len(analysis.moments)
    assert previous_moments(5, n) == "the previous 5 moments"
    assert previous_moments(1, n) == "the previous moment"
    assert previous_moments(n - 1, n) == previous_moments(1000, n) == "all the previous moments"
    analysis.params = dataclasses.replace(analysis.params, window=1000)
    assert "from the mean of all the previous moments" in render_report_html(analysis, b"\x89PNG")


def test_write_outputs_writes_five_files_that_parse(tmp_path):
    analysis = make_analysis()
    paths = write_outputs(analysis, tmp_path / "new" / "dir")
    assert sorted(paths) == [
        "analysis.json",
        "captions.vtt",
        "moments.csv",
        "novelty.png",
        "report.html",
    ]
    data = json.loads(paths["analysis.json"].read_text())
    assert [m["time"] for m in data["novel_moments"]] == [4.0, 9.0]
    assert data["moments"][0]["novelty"] is None
    assert Analysis.from_dict(data).novel_moments[1].caption == analysis.moments[9].caption
    assert paths["novelty.png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_analysis_json_keeps_lists_of_numbers_on_one_line():
    """An hour's selection strengths had taken 3,700 lines of analysis.json, one number each."""
    from capsight.novelty.reports import compact_json, render_json

    analysis = _pipeline_analysis()
    analysis.extra["selection"] = {"strength": [0.5, None, 1.25] * 400, "threshold": 1.0}
    text = render_json(analysis)
    assert json.loads(text) == json.loads(json.dumps(analysis.to_dict(), default=str))
    assert '"strength": [0.5, null, 1.25, 0.5,' in text and len(text.splitlines()) < 400
    assert (
        Analysis.from_dict(json.loads(text)).moments
        == Analysis.from_dict(analysis.to_dict()).moments
    )
    nested = {"labels": [["tabby", 0.5], ["tiger cat", 0.25]], "empty": {}, "none": [], 1: True}
    assert json.loads(compact_json(nested)) == json.loads(json.dumps(nested))
    assert '\n    ["tabby", 0.5],\n' in compact_json(nested)  # a pair a line


def test_write_outputs_takes_analysis_json_read_back_and_refuses_other_things(tmp_path):
    data = json.loads(json.dumps(make_analysis().to_dict()))  # analysis.json, read back
    again = write_outputs(data, tmp_path / "again")
    assert json.loads(again["analysis.json"].read_text())["novel_moments"] == data["novel_moments"]
    with pytest.raises(
        InvalidParameter, match=r"needs an Analysis \(or its to_dict\(\)\), not 'list'"
    ):
        write_outputs([], tmp_path / "x")
    with pytest.raises(InvalidParameter, match="out_dir must be a folder path, not 'NoneType'"):
        write_outputs(make_analysis(), None)
    # (it wrote into the current folder)
    with pytest.raises(InvalidParameter, match="out_dir is empty"):
        write_outputs(make_analysis(), "")


def test_write_outputs_refuses_a_file_as_the_folder(tmp_path):
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(InvalidParameter, match="not a folder"):
        write_outputs(make_analysis(), target)


def test_the_output_check_writes_a_file_and_leaves_no_folders_behind(tmp_path):
    from capsight.novelty.reports import check_output_dir

    assert check_output_dir(tmp_path / "new" / "deep") == tmp_path / "new" / "deep"
    assert list(tmp_path.iterdir()) == []  # checked by writing, then tidied away
    (tmp_path / "o" / "novelty.png").mkdir(parents=True)
    with pytest.raises(InvalidParameter, match="novelty.png: is a folder"):
        check_output_dir(tmp_path / "o")


def test_a_file_of_an_output_name_capsight_did_not_write_is_not_replaced(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "moments.csv").write_text("my own,numbers\n1,2\n")
    with pytest.raises(InvalidParameter, match=r"moments.csv: not written by capsight, and the "
                                               "report would replace it"):  # fmt: skip
        write_outputs(make_analysis(), out)
    assert (out / "moments.csv").read_text() == "my own,numbers\n1,2\n"
    assert sorted(p.name for p in out.iterdir()) == ["moments.csv"]
    (out / "moments.csv").unlink()
    write_outputs(make_analysis(), out)  # then a rerun into it replaces its own files
    # one key is not enough
    (out / "analysis.json").write_text('{"video": "mine.mp4", "notes": []}')
    with pytest.raises(InvalidParameter, match="analysis.json: not written by capsight"):
        write_outputs(make_analysis(), out)
    (out / "analysis.json").unlink()
    (out / "novelty.png").write_bytes(b"")  # (or an empty one a cut-short write left)
    assert sorted(write_outputs(make_analysis(), out)) == sorted(p.name for p in out.iterdir())


def test_a_failed_write_leaves_the_earlier_report_whole(tmp_path, monkeypatch):
    """A full disk (or Ctrl-C) partway used to leave a new report.html beside the earlier run's
    other files: each output is written aside and renamed into place once all are written."""
    import capsight.novelty.reports as reports

    out = tmp_path / "r"
    write_outputs(make_analysis(), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real = reports.create_new

    def full_disk(path):
        if "moments.csv" in path.name:
            raise OSError(28, "No space left on device")
        return real(path)

    monkeypatch.setattr(reports, "create_new", full_disk)
    other = make_analysis()
    other.video = dataclasses.replace(other.video, path="another.mp4")
    with pytest.raises(
        InvalidParameter, match="cannot write the report \\(No space left on device\\)"
    ):
        write_outputs(other, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # and no half-written files
    # A new --out folder (and its new parent) that nothing could be written into is not left
    # behind, empty; a folder that was there stays.
    (tmp_path / "kept").mkdir()
    with pytest.raises(InvalidParameter, match="No space left on device"):
        write_outputs(other, tmp_path / "kept" / "new" / "r")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept", "r"] and not any(
        (tmp_path / "kept").iterdir()
    )


def test_outputs_are_written_through_fresh_names_that_no_planted_link_can_take(tmp_path):
    """The temporary names were '.report.html.<pid>.part': a link planted there by another user
    of a shared folder was followed, and the file it named was overwritten."""
    victim = tmp_path / "victim.txt"
    victim.write_text("mine")
    out = tmp_path / "shared"
    out.mkdir()
    for name in ("report.html", "analysis.json", "moments.csv", "novelty.png", "captions.vtt"):
        (out / f".{name}.{os.getpid()}.part").symlink_to(victim)
    (out / f".capsight-write-check-{os.getpid()}").symlink_to(victim)
    write_outputs(make_analysis(), out)
    assert victim.read_text() == "mine"
    import capsight.novelty.reports as reports

    with pytest.MonkeyPatch.context() as patch:  # a link planted at the very name about to be used
        patch.setattr(reports.secrets, "token_hex", lambda n: "guessed")
        (out / ".report.html.guessed.part").symlink_to(victim)
        with pytest.raises(InvalidParameter, match="cannot write the report .* appeared there"):
            write_outputs(make_analysis(), out)
    assert victim.read_text() == "mine" and (out / ".report.html.guessed.part").is_symlink()
    umask = os.umask(0)
    os.umask(umask)
    assert (out / "report.html").stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_a_place_that_passes_a_permission_look_but_takes_no_file_is_refused():
    from capsight.novelty.reports import check_output_dir

    with pytest.raises(InvalidParameter, match="cannot write the report there"):
        check_output_dir("/proc/capsight-no-such/x")


def test_plot_labels_never_print_over_each_other():
    from capsight.novelty.reports import _LABEL_CHAR_PX, label_layout

    times = [2.0, 3.0, 4.0, 15.75, 21.0, 22.75, 25.0]
    labels = [f"{n}  a caption of twenty-six chars" for n in range(1, 8)]
    layout = label_layout(times, labels, 0.0, 26.0, 890)
    extents = []
    for t, (text, row, left) in zip(times, layout, strict=True):
        x = t / 26.0 * 890
        width = len(text) * _LABEL_CHAR_PX + 8
        extents.append((row, x - width if left else x, x if left else x + width))
    for a in range(len(extents)):
        for b in range(a):
            same_row = extents[a][0] == extents[b][0]
            assert not (
                same_row and extents[a][1] <= extents[b][2] and extents[b][1] <= extents[a][2]
            )
    assert [text for text, _, _ in layout] == [str(n) for n in range(1, 8)]  # captions do not fit
    assert not any(left for _, _, left in layout)  # each number has room right of its line
    # a caption with no room before the axis ends hangs left of its line
    near_the_end = label_layout([2.0, 15.0, 25.0], labels[:3], 0.0, 26.0, 890)
    assert [left for _, _, left in near_the_end] == [False, False, True]
    spread = label_layout([2.0, 3.0, 15.0], labels[:3], 0.0, 26.0, 890)
    assert spread == [(labels[0], 0, False), (labels[1], 1, False), (labels[2], 0, False)]
    # moment 4's label would hang left from 00:21 and start beside moment 3's line at 00:15.75
    crowded = label_layout([5.0, 10.0, 15.75, 21.0], labels[:4], 0.0, 26.0, 890)
    assert [text for text, _, _ in crowded] == ["1", "2", "3", "4"]


def test_ctrl_c_while_the_report_is_drawn_leaves_no_empty_folder(tmp_path, monkeypatch):
    """An interrupted `capsight video DIR` had left an empty folder for the video it was on."""
    import capsight.novelty.reports as reports

    def interrupted(analysis):
        raise KeyboardInterrupt

    monkeypatch.setattr(reports, "render_plot_png", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(make_analysis(), tmp_path / "batch" / "clip")
    assert not (tmp_path / "batch").exists()


def test_no_folder_is_made_before_the_report_is_drawn(tmp_path, monkeypatch):
    """A batch worker stopped while the plot was drawn (the pool's SIGTERM runs no handler
    there) had left the video an empty folder: it is made only once everything is drawn."""
    import capsight.novelty.reports as reports

    seen = []
    real = reports.render_plot_png
    monkeypatch.setattr(reports, "render_plot_png",
                        lambda a: seen.append((tmp_path / "clip").exists()) or real(a))  # fmt: skip
    write_outputs(make_analysis(), tmp_path / "clip")
    assert seen == [False] and (tmp_path / "clip" / "report.html").is_file()


def test_numbers_with_no_room_are_left_out_not_printed_over_each_other():
    """119 cuts in 10 minutes: the numbers had overlapped into strips like "111111119"."""
    from capsight.novelty.reports import _LABEL_CHAR_PX, label_layout

    times = [5.0 * n for n in range(1, 120)]
    labels = [f"{n}  a caption" for n in range(1, 120)]
    layout = label_layout(times, labels, 0.0, 600.0, 890)
    shown = [(t, text, row, left) for t, (text, row, left) in zip(times, layout, strict=True)
             if text]  # fmt: skip
    assert 20 < len(shown) < 119 and shown[0][1] == "1"
    # the last quarter's as legible as the rest (all but one of its numbers had been left out)
    per_quarter = [sum(1 for t, *_ in shown if q * 150 <= t < (q + 1) * 150) for q in range(4)]
    assert min(per_quarter) >= 0.6 * max(per_quarter), per_quarter
    assert all(text == str(times.index(t) + 1) for t, text, _, _ in shown)  # its own number
    spans = []
    for t, text, row, left in shown:
        x, width = t / 600.0 * 890, len(text) * _LABEL_CHAR_PX + 8
        spans.append((row, x - width if left else x, x if left else x + width))
    for a in range(len(spans)):
        for b in range(a):
            assert not (spans[a][0] == spans[b][0] and spans[a][1] <= spans[b][2]
                        and spans[b][1] <= spans[a][2])  # fmt: skip


def test_the_output_folder_may_start_with_a_tilde(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    paths = write_outputs(make_analysis(), "~/reports")
    assert paths["report.html"].parent == tmp_path / "reports"
    assert not (tmp_path / "~").exists()  # not a folder literally named "~"


def test_the_table_says_the_plot_scales_its_parts_only_when_it_draws_them():
    fused = render_report_html(make_analysis(), plot_png=b"")
    assert "raw cosine distances (the plot divides each by its median over the video)" in fused
    text_only = dataclasses.replace(make_analysis(), params=AnalysisParams(signal="text"))
    page = render_report_html(text_only, plot_png=b"")
    assert "raw cosine distances. A moment is marked novel" in page and "divides each" not in page


def test_the_report_table_shows_the_strength_that_decides_and_its_bar():
    """The table had sent readers to moments.csv for the number that marks a moment novel."""
    analysis = make_analysis()
    page = render_report_html(analysis, plot_png=b"")
    assert "strength</th>" not in page and "(<em>strength</em> in moments.csv)" in page  # none kept
    strengths = [None] + [2.31 if i in (4, 9) else 0.4 for i in range(1, 12)]
    analysis.extra = {"selection": {"strength": strengths, "threshold": 1.25}}
    page = render_report_html(analysis, plot_png=b"")
    assert '<th scope="col">strength</th>' in page and "above a bar of 1.25 here" in page
    assert (
        page.count('<td class="num">2.31</td>') == 2
        and page.count('<td class="num">0.40</td>') == 9
    )


def test_the_strength_rule_gives_the_spans_the_selection_used_and_the_caption_column_is_wide():
    """At --every 2 the rule had said "within 1 s" where the selection compared moments 2 s
    apart; and the phone layout's wide column was the strength, not the caption."""
    import dataclasses

    analysis = make_analysis()
    analysis.extra["selection"] = {"threshold": 1.2, "strength": [None] + [0.5] * 11}
    page = render_report_html(analysis, plot_png=b"")
    assert "1.5 times that in the last 4 s, where no moment within 1 s was stronger" in page
    assert "strength is measured since the last novel moment" in page
    assert '<td class="cap">a photo of scene 0</td>' in page and "td.cap{min-width:11em}" in page
    # on a phone the table scrolls sideways; its explanation stays on the screen, wrapped
    assert "table caption{position:sticky;left:0;max-width:calc(100vw - 24px)}" in page
    analysis.params = dataclasses.replace(analysis.params, every=2.0)
    page = render_report_html(analysis, plot_png=b"")
    assert "in the last 4 s, where no moment within 2 s was stronger" in page
    analysis.params = dataclasses.replace(analysis.params, every=3.0)
    assert "in the last 3 s, where no moment within 3 s was" in render_report_html(analysis, b"")
    # a slideshow of fewer frames than asked for: its frames' spacing, as the selection had it
    analysis.params = dataclasses.replace(analysis.params, every=0.5)
    for m in analysis.moments:
        m.time *= 2  # one frame every 2 s
    assert "where no moment within 2 s was" in render_report_html(analysis, b"")


def test_a_label_hanging_left_stays_clear_of_another_moments_line_and_widths_are_measured():
    """A label that started 16 px right of another moment's line read as that line's; and the
    estimated widths (characters x 5.6 px) let two labels of a row touch."""
    from capsight.novelty.reports import label_layout

    def width(text: str) -> float:  # as measured: the long one 274 px
        return 274.0 if len(text) > 3 else 12.0

    # line 1 at 700 px; label 2 hangs left from 990 px, so it starts at 716 px
    assert label_layout([70, 99], ["1 a", "2 a dog on a long road"], 0, 100, 1000, width) == [
        ("1", 0, False), ("2", 0, True)]  # fmt: skip
    # measured wider than estimated: a second row, not the first where the estimate fit
    labels = ["1 a dog runs", "2 a cat sits"]
    assert [row for _, row, _ in label_layout([10, 19], labels, 0, 100, 1000)] == [0, 0]
    wide = label_layout([10, 19], labels, 0, 100, 1000, lambda text: 85.0)
    assert [row for _, row, _ in wide] == [0, 1]


def test_the_report_says_every_frame_where_the_summary_does():
    """--every 0.0001: the summary said "every frame", the report "every 0.0001 s"."""
    import dataclasses

    from capsight.novelty.reports import render_report_html

    analysis = make_analysis()
    analysis.params = dataclasses.replace(analysis.params, every=0.0001)
    assert "every frame" in render_report_html(analysis, plot_png=b"")
    analysis.extra["decoding"] = "greedy"  # --greedy: said beside the captioner, not in JSON only
    assert "(greedy)" in render_report_html(analysis, plot_png=b"")
    assert "every 1 s" in render_report_html(make_analysis(), plot_png=b"")


def test_a_sensitivity_of_minus_zero_reads_as_zero():
    from capsight.novelty.pipeline import _check_params

    assert str(_check_params(1.0, 5, "cosine", "fused", -0.0, None)[4]) == "0.0"


def test_a_stopped_runs_report_says_so_at_the_top():
    """Its "stopped part-way" note came after the whole gallery: the top read "9 novel moments
    among 112 sampled" beside the video's whole duration."""
    analysis = make_analysis()
    analysis.extra["stopped_at"] = 6.0
    page = render_report_html(analysis, plot_png=b"")
    top = page[: page.index(">Novel moments</h2>")]
    assert "stopped part-way: analysed up to 00:06 of 00:12" in top
    assert "stopped part-way" not in render_report_html(make_analysis(), plot_png=b"")


def test_a_python_caller_is_not_told_of_a_cli_flag(tmp_path):
    """write_outputs(analysis, "notes.txt") had said "choose another --out"."""
    from capsight.novelty.reports import write_outputs

    taken = tmp_path / "notes.txt"
    taken.write_text("x")
    info = VideoInfo(path="clip.mp4", duration=2.0, fps=10.0, width=64, height=48)
    with pytest.raises(InvalidParameter, match="choose another output folder$") as caught:
        write_outputs(Analysis(info, AnalysisParams(), []), taken)
    assert "--out" not in str(caught.value)


def test_a_long_videos_report_folds_its_cards_and_links_them_to_the_table(monkeypatch):
    """An hour's 501 novel moments filled 44 screens with cards before the table, and nothing on
    the page pointed anywhere: past CARDS_SHOWN the cards fold, each links to its table row, and
    a line at the top leads to each part."""
    from capsight.novelty import reports

    monkeypatch.setattr(reports, "CARDS_SHOWN", 1)
    analysis = make_analysis()  # novel at 4 s and 9 s
    page = render_report_html(analysis, plot_png=b"")
    assert page.count('<article class="card">') == 2
    assert "<details><summary>The other 1 novel moment</summary>" in page
    assert page.index("The other 1 novel") < page.index("Novel moment 2 ·")
    assert (
        '<a href="#m4">Novel moment 1 · 00:04</a>' in page and '<tr id="m4" class="novel">' in page
    )
    assert '<a href="#all">All 12 moments</a>' in page and '<h2 id="all">' in page


def test_hundreds_of_novel_moments_are_plotted_as_dots_without_lines(monkeypatch):
    """An hour's 501 novel moments drew 501 lines and big dots: an orange wall over the curve."""
    from matplotlib.axes import Axes

    lines = []
    axvline = Axes.axvline
    monkeypatch.setattr(
        Axes, "axvline", lambda self, *a, **k: lines.append(a) or axvline(self, *a, **k)
    )
    render_plot_png(make_analysis(n=40, novel=(4, 9, 30)))
    assert len(lines) == 3  # a few: each with its line
    lines.clear()
    render_plot_png(make_analysis(n=1200, novel=tuple(range(2, 1200, 6))))  # 200 of them
    assert lines == []


def test_a_phone_shows_the_caption_column_without_swiping():
    """On a 390 px phone the table was 625 px wide and the captions off-screen: the two raw
    distance columns are left out there, and the table's caption says so."""
    page = render_report_html(make_analysis(), plot_png=b"")
    assert page.count('<td class="num wide">') == 2 * 12
    assert '<th scope="col" class="wide">caption distance</th>' in page
    assert "@media (max-width:600px)" in page and ".wide{display:none}" in page
    assert "On a narrow screen the caption and image distances are left out" in page
