"""Render an ``Analysis`` as files a person opens: JSON, CSV, a plot, an HTML report, WebVTT.

    >>> paths = write_outputs(analysis, "out/clip")
    >>> sorted(paths)
    ['analysis.json', 'captions.vtt', 'moments.csv', 'novelty.png', 'report.html']

Each format also has its own function returning text or bytes (``render_json``, ``render_csv``,
``render_vtt``, ``render_plot_png``, ``render_report_html``) so the HTTP server can answer with
them directly. Nothing here computes novelty: it only renders what the pipeline decided.

The plot draws no threshold line: the selection's threshold is in its own units (selection
strength, ``analysis.extra["selection"]``), not the plotted novelty's, so the plot marks the
novel moments and says in a note what made them novel. matplotlib is imported only when a plot
is drawn (Agg backend, no display needed).
"""

from __future__ import annotations

import base64
import csv
import functools
import html
import io
import itertools
import json
import math
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from capsight.errors import InvalidParameter
from capsight.io.folders import make_writable_folder
from capsight.io.new_files import create_new
from capsight.novelty.analysis import Analysis, Moment

OUTPUT_NAMES = ("report.html", "analysis.json", "moments.csv", "novelty.png", "captions.vtt")

CSV_COLUMNS = (
    "time",
    "caption",
    "novelty",
    "novelty_text",
    "novelty_visual",
    "is_novel",
    "top_label",
    "top_label_probability",
    "strength",
)

_ACCENT = "#d9480f"  # novel moments, in the plot and the report
_INK = "#1f2933"
_LINE = "#1c7ed6"


# --------------------------------------------------------------------------- small formatters


def format_clock(
    seconds: float,
    tenths: bool = False,
    rounded: bool = False,
    hundredths: bool = False,
    hours: bool = False,
) -> str:
    """Seconds as ``mm:ss`` (``h:mm:ss`` from one hour on, and always with ``hours``: the times
    of an hour-long video), with ``tenths`` as ``mm:ss.s`` and ``hundredths`` as ``mm:ss.ss``;
    negatives clamp to 00:00. A time in the video counts whole units as a player does (4.9 s
    is 00:04); ``rounded`` is for a length, which is nearer 00:05."""
    digits = 2 if hundredths else 1 if tenths else 0
    if rounded:
        seconds = round(float(seconds), digits)
    total = max(0, int(math.floor(float(seconds) * 100 + 1e-4)))
    whole, part = divmod(total, 100)
    h, rest = divmod(whole, 3600)
    m, s = divmod(rest, 60)
    clock = f"{h}:{m:02d}:{s:02d}" if h or hours else f"{m:02d}:{s:02d}"
    return f"{clock}.{part:02d}"[: len(clock) + 1 + digits] if digits else clock


def moment_clock(analysis: Analysis) -> functools.partial[str]:
    """The clock for ``analysis``'s times: with hours throughout for a video of an hour or more
    (its "00:02" had sat beside "1:00:00"), with tenths when moments are not whole seconds
    apart (``every`` 0.5 s would show 00:00 twice) or the video is shorter than a second, with
    hundredths when they are under a tenth apart (every frame of a 25 fps video, which showed
    00:00.0 twice)."""
    p, v = analysis.params, analysis.video
    tenths = p.every < 1.0 or abs(p.every - round(p.every)) > 1e-6 or v.duration < 1.0
    times = [m.time for m in analysis.moments]
    closest = min((b - a for a, b in itertools.pairwise(times)), default=1.0)
    return functools.partial(format_clock, tenths=tenths, hundredths=closest < 0.1 - 1e-9,
                             hours=round(v.duration) >= 3600)  # fmt: skip


def format_vtt_timestamp(seconds: float) -> str:
    """Seconds as a WebVTT timestamp ``hh:mm:ss.mmm``."""
    millis = max(0, int(round(float(seconds) * 1000)))
    h, rest = divmod(millis, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def _score(x: float | None, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    text = f"{x:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.0000"


def _shorten(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# --------------------------------------------------------------------------- text formats


def render_json(analysis: Analysis) -> str:
    """``analysis.json``: ``Analysis.to_dict()`` (schema in capsight.novelty.analysis)."""
    return compact_json(analysis.to_dict()) + "\n"


def compact_json(value: object, indent: int = 2, level: int = 0) -> str:
    """``json.dumps(value, indent=2)`` with every list of plain values (numbers, text, true,
    false, null) on one line: an hour of video's selection strengths had taken 3,700 lines of
    analysis.json, and as many of the report's run details."""
    pad, inner = " " * (indent * level), " " * (indent * (level + 1))
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k if isinstance(k, str) else json.dumps(k), ensure_ascii=False)}: "
                 f"{compact_json(v, indent, level + 1)}" for k, v in value.items()]  # fmt: skip
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list | tuple) and any(isinstance(v, dict | list | tuple) for v in value):
        items = [inner + compact_json(v, indent, level + 1) for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value, ensure_ascii=False, default=str)  # (a plain value, {} or [])


def render_csv(analysis: Analysis) -> str:
    """``moments.csv``: one row per sampled moment, in time order, with a header row.
    ``strength`` is what the selection compared with its threshold (``analysis.json``'s
    ``extra.selection``; empty where the run kept none): ``novelty`` is not what decides."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    selection = analysis.extra.get("selection") if isinstance(analysis.extra, dict) else None
    strengths = (selection or {}).get("strength") or []
    for i, m in enumerate(analysis.moments):
        label, prob = (m.labels[0][0], f"{float(m.labels[0][1]):.4f}") if m.labels else ("", "")
        strength = strengths[i] if i < len(strengths) else None
        writer.writerow(
            [
                f"{m.time:.3f}",
                m.caption,
                _score(m.novelty, 6),
                _score(m.novelty_text, 6),
                _score(m.novelty_visual, 6),
                int(bool(m.is_novel)),
                label,
                prob,
                _score(strength, 4),
            ]
        )
    return buffer.getvalue()


def render_vtt(analysis: Analysis) -> str:
    """``captions.vtt``: each moment's caption shown from its time until the next moment's.

    The last caption lasts until the end of the video when that is known, else one sampling
    interval (or the moments' last spacing, where frames were further apart than ``every``); of
    an analysis stopped part-way (``extra["stopped_at"]``), one interval too, and a note says
    where it stopped (its last caption had lasted over the half hour never analysed).
    """
    lines = ["WEBVTT", "", "NOTE captions written by capsight, one per sampled moment", ""]
    stopped = analysis.extra.get("stopped_at") if isinstance(analysis.extra, dict) else None
    if isinstance(stopped, (int, float)):
        lines += [f"NOTE stopped part-way: no captions after {format_vtt_timestamp(stopped)}", ""]
    moments = analysis.moments
    for i, m in enumerate(moments):
        start = float(m.time)
        if i + 1 < len(moments):
            end = float(moments[i + 1].time)
        elif (analysis.video.duration and analysis.video.duration > start
              and not isinstance(stopped, (int, float))):  # fmt: skip
            end = float(analysis.video.duration)
        else:
            spacing = start - float(moments[i - 1].time) if i else 0.0
            end = start + max(float(analysis.params.every), spacing)
        if end <= start:  # duplicate times: give the cue a visible millisecond
            end = start + 0.001
        text = _vtt_escape(m.caption) or "…"
        lines += [
            str(i + 1),
            f"{format_vtt_timestamp(start)} --> {format_vtt_timestamp(end)}",
            text,
            "",
        ]
    return "\n".join(lines)


def _vtt_escape(text: str) -> str:
    # Cue text is one line here: no blank lines (they end a cue), no "-->" and no raw markup.
    text = " ".join(text.split()).replace("-->", "->")
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --------------------------------------------------------------------------- the plot


def _values(moments: list[Moment], attr: str) -> list[float]:
    out = []
    for m in moments:
        v = getattr(m, attr)
        out.append(float("nan") if v is None else float(v))
    return out


def previous_moments(window: int, moments: int | None = None) -> str:
    """What each moment is compared with, in words: "the previous 5 moments", "the previous
    moment", or "all the previous moments" when the window reaches back past the first one."""
    if moments is not None and window >= moments - 1:
        return "all the previous moments"
    return "the previous moment" if window == 1 else f"the previous {window} moments"


def novelty_unit(params) -> str:
    """What a novelty number is counted in, in a few words, beside the number."""
    return "x a typical moment" if params.signal == "fused" else f"{params.metric} distance"


def novelty_meaning(params, moments: int | None = None) -> tuple[str, str]:
    """(axis label, one sentence) saying what the reported novelty number is for these params
    (``moments``: how many the video has, to say "all the previous" where the window is wider)."""
    metric, before = params.metric, previous_moments(params.window, moments)
    if params.signal == "fused":
        return (
            f"novelty (x a typical moment; {metric})",
            f"novelty is the mean of two {metric} distances from the mean of {before}, the "
            "image embedding's and the caption's, each divided by its median over the video "
            "(1 = a typical moment)",
        )
    what = "caption" if params.signal == "text" else "image"
    return (
        f"novelty ({metric} distance)",
        f"novelty is the {metric} distance of each moment's {what} embedding from the mean of "
        f"{before}",
    )


MARKED_MOMENTS = 400  # moments up to which the plot draws a dot on each


def _tick_step(duration: float, max_ticks: int = 12) -> float:
    """A clock-friendly tick spacing in seconds (1, 2, 5, 10, 15, 30 s, 1, 2, 5 ... min)."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if duration / step <= max_ticks:
            return float(step)
    return 3600.0 * math.ceil(duration / 3600 / max_ticks)


def preload_plotting() -> None:
    """Import matplotlib's figure machinery now (~0.3 s), e.g. on a thread while a video is
    analysed, so that writing the report does not wait for it. Leaves the caller's
    matplotlib backend alone (the figures draw on their own Agg canvas)."""
    import matplotlib.backends.backend_agg  # noqa: F401
    import matplotlib.figure  # noqa: F401


# What marks a novel moment, beside the plot: the selection (capsight.novelty.selection) keeps a
# change that persists and is unfamiliar, on region features and in floor units, so no level of
# the plotted novelty separates novel moments from the rest and no threshold line is drawn.
NOVEL_NOTE = ("A moment is marked novel when its change lasts and was not on screen shortly "
              "before; no level of this curve decides it.")  # fmt: skip
ONE_MOMENT_NOTE = "only one moment sampled; nothing to compare"
NO_SCORE_NOTE = "no moment could be compared"

# The least top of the plot's novelty axis: twice a typical moment (fused), or a cosine
# distance a little past the visual selection floor at the default sensitivity (0.25).
MIN_AXIS_TOP = {"fused": 2.0, "cosine": 0.3}
_RIGHT_PX = 150  # the legend and the note


def _selection_spans(analysis: Analysis) -> tuple[float, float]:
    """(the +- seconds a pick must be the strongest within, the last seconds that need 1.5x):
    whole moments apart, as the selection counts them (at --every 2, 2 s, not 1; on a
    slideshow of fewer frames than asked for, its frames' spacing)."""
    from capsight.novelty.selection import SelectionConfig, moment_spacing

    config = SelectionConfig()
    every = moment_spacing([m.time for m in analysis.moments], analysis.params.every)
    peak = max(1, round(config.peak_seconds / every)) * every
    end = max(1, round(config.end_seconds / every)) * every
    return peak, end


STRENGTH_HEADER = '<th scope="col">strength</th>'
_PAD_PX = 6  # between the figure's left edge and the y label


def render_plot_png(analysis: Analysis, width_px: int = 1100, height_px: int = 420) -> bytes:
    """``novelty.png``: novelty over time, the novel moments numbered and marked."""
    fig = novelty_figure(analysis, width_px, height_px)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi)
    return buffer.getvalue()


@functools.lru_cache(maxsize=1)
def _font_characters() -> frozenset[int]:
    """The code points matplotlib's default font draws."""
    from matplotlib import font_manager, ft2font

    path = font_manager.findfont(font_manager.FontProperties())
    return frozenset(ft2font.FT2Font(path).get_charmap())


def drawable(text: str) -> str:
    """``text`` with the characters the plot's font lacks as boxes ("日本語.mp4" -> "□□□.mp4"):
    matplotlib drew such boxes anyway, with a warning per glyph, source lines and all, in the
    CLI's output. (report.html names the video whole.)"""
    have = _font_characters()
    return "".join(c if ord(c) in have or c.isspace() else "\u25a1" for c in text)


def novelty_figure(analysis: Analysis, width_px: int = 1100, height_px: int = 420):
    """The matplotlib ``Figure`` behind ``render_plot_png`` (Agg canvas attached; pyplot's
    backend, a notebook's inline one, is left as it is)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MultipleLocator

    dpi = 110
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    moments = analysis.moments
    times = [float(m.time) for m in moments]
    signal = analysis.params.signal
    ys = _values(moments, "novelty")
    finite = [y for y in ys if math.isfinite(y)]

    top = max(finite, default=0.0)
    if finite:
        if signal == "fused":  # its two parts, in the same units: the fused line is their mean
            import numpy as np

            from capsight.novelty.selection import per_median

            for attr, name, color in (
                ("novelty_visual", "image", "#8ab4d8"),
                ("novelty_text", "caption", "#b7c0a8"),
            ):
                part_ys = _values(moments, attr)
                if any(not math.isnan(y) for y in part_ys):
                    part = per_median(np.array(part_ys, dtype=float))
                    ax.plot(
                        times, part, color=color, linewidth=1.1, label=f"{name} novelty", zorder=2
                    )
                    top = max([top, *(float(y) for y in part if math.isfinite(y))])
        ax.plot(
            times,
            ys,
            color=_LINE,
            linewidth=2.0,
            # a dot per moment, while they are apart (an hour's 3,726 made a solid band)
            marker="o" if len(times) <= MARKED_MOMENTS else None,
            markersize=2.8,
            label=f"novelty ({signal})",
            zorder=3,
        )
        if top < 1e-9:  # a still video: 0 throughout, up to float noise (JSON's 0.0)
            top = 1.0
        # A scale that starts where changes begin to matter: a still video's codec blip of
        # 0.026 had filled the axis, drawn as a spike as tall as a cut's.
        top = max(
            top, MIN_AXIS_TOP.get(signal if signal == "fused" else analysis.params.metric, 0.0)
        )
    else:  # nothing to draw: an empty axis that says why, without a made-up scale
        top = 1.0
        ax.set_yticks([])
        note = ONE_MOMENT_NOTE if len(moments) == 1 else NO_SCORE_NOTE
        ax.text(
            0.5,
            0.5,
            note,
            transform=ax.transAxes,
            ha="center",
            va="center",
            fontsize=10,
            color="#52606d",
        )
    ax.set_ylim(0, top * 1.32)  # head room for the numbered labels
    ax.ticklabel_format(axis="y", style="plain", useOffset=False)  # no "1e-6" over the title
    ax.set_ylabel(novelty_meaning(analysis.params)[0], color=_INK)
    left_px = _left_margin_px(fig, ax, width_px)

    novel = analysis.novel_moments
    long_labels = len(novel) <= 6
    end = max([analysis.video.duration or 0.0, *times, 1.0])
    start = min([0.0, *times])
    axis_px = width_px - left_px - _RIGHT_PX
    labels = [f"{n}" + (f"  {_shorten(m.caption, 26)}" if long_labels else "")
              for n, m in enumerate(novel, start=1)]  # fmt: skip
    renderer = fig.canvas.get_renderer()

    def text_px(text: str) -> float:  # drawn, with the box's padding and the 3-point offset
        probe = fig.text(0, 0, text, fontsize=8)
        width = probe.get_window_extent(renderer).width
        probe.remove()
        return width + (2 * 0.2 * 8 + 3) * fig.dpi / 72

    layout = label_layout([m.time for m in novel], labels, start, end, axis_px, text_px)
    # Dozens of lines a few pixels apart had hidden the curve: fainter and thinner when crowded;
    # hundreds (an hour's 501) made an orange wall of lines and dots: then dots alone, smaller.
    crowded = len(novel) > axis_px / 25
    packed = len(novel) > axis_px / 8
    for m, (label, row, left) in zip(novel, layout, strict=True):
        if not packed:
            ax.axvline(m.time, color=_ACCENT, alpha=0.25 if crowded else 0.55,
                       linewidth=0.8 if crowded else 1.2, zorder=1)  # fmt: skip
        if m.novelty is not None and math.isfinite(m.novelty):
            ax.plot([m.time], [m.novelty], "o", color=_ACCENT, zorder=4,
                    markersize=3.5 if packed else 5 if crowded else 7)  # fmt: skip
        if not label:  # no room for its number (the report's table has them all)
            continue
        y = top * (1.24 if row == 0 else 1.11)
        ax.annotate(
            label,
            (m.time, y),
            xytext=(-3 if left else 3, 0),
            textcoords="offset points",
            fontsize=8,
            color=_ACCENT,
            va="center",
            ha="right" if left else "left",
            zorder=5,
            bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8},
        )
    if novel:
        ax.plot([], [], color=_ACCENT, marker="o", linewidth=1.2, label="novel moment")

    stopped = analysis.extra.get("stopped_at") if isinstance(analysis.extra, dict) else None
    if isinstance(stopped, (int, float)) and stopped < end:  # Ctrl-C: the rest was never seen
        ax.axvspan(stopped, end, color="#e4e7eb", alpha=0.6, zorder=0, linewidth=0)
        ax.text((stopped + end) / 2, top * 0.5, "not analysed\n(stopped)", ha="center",
                va="center", fontsize=9, color="#52606d")  # fmt: skip
    ax.set_xlim(start, end)
    ax.xaxis.set_major_locator(MultipleLocator(_tick_step(end)))
    clock = moment_clock(analysis)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: clock(x)))
    ax.set_xlabel("time (h:mm:ss)" if end >= 3600 else "time (mm:ss)", color=_INK)
    before = previous_moments(analysis.params.window, len(analysis.moments))
    ax.set_title(f"{drawable(Path(analysis.video.path).name)}: how unlike {before} each moment is",
                 fontsize=10, color=_INK, loc="left")  # fmt: skip
    ax.grid(axis="y", color="#e9ecef", linewidth=0.8)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    if finite:
        legend = ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
        if novel:
            _note_below(fig, legend, NOVEL_NOTE)
    return fig


def _left_margin_px(fig, ax, width_px: int) -> int:
    """Set the margins, the left one wide enough for the y tick labels and the y label as
    drawn (measured, ~10 ms; tight_layout costs 0.15 s per plot); return it in pixels."""
    height_px = fig.bbox.height
    margins = {"right": 1 - _RIGHT_PX / width_px, "top": 1 - 32 / height_px,
               "bottom": 48 / height_px}  # fmt: skip
    fig.subplots_adjust(left=60 / width_px, **margins)
    drawn = ax.yaxis.get_tightbbox(fig.canvas.get_renderer())
    overhang = ax.get_window_extent().x0 - drawn.x0 if drawn is not None else 0.0
    left_px = int(math.ceil(max(40.0, overhang + _PAD_PX)))
    fig.subplots_adjust(left=left_px / width_px, **margins)
    return left_px


def _note_below(fig, legend, text: str) -> None:
    """``text`` wrapped into the right margin, under the legend (each line measured to fit)."""
    import textwrap

    renderer = fig.canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    x0 = box.x0 + 6
    note = fig.text(
        x0 / fig.bbox.width,
        (box.y0 - 6) / fig.bbox.height,
        text,
        fontsize=7.5,
        color="#52606d",
        va="top",
        ha="left",
        linespacing=1.3,
    )
    room = fig.bbox.width - 4 - x0
    for chars in range(int(room / 4.5), 10, -1):  # from more than fits (~5.6 px a character)
        note.set_text(textwrap.fill(text, chars))
        if note.get_window_extent(renderer).x1 <= x0 + room:
            break


_GAP_PX = 12  # between two labels of a row: closer, two read as one
_LINE_CLEAR_PX = 24  # a label hanging left starts this far, at least, from another moment's line
_LABEL_CHAR_PX = 5.6  # a character of the 8-point labels at 110 dpi (~5 measured), with room


def label_layout(
    times: list[float],
    labels: list[str],
    start: float,
    end: float,
    axis_px: float,
    text_px: Callable[[str], float] | None = None,
) -> list[tuple[str, int, bool]]:
    """(text, row 0 or 1, hangs left) for each novel moment's label on the plot, so that no two
    print over each other: a label with no room to the right of its line before the axis ends
    hangs to the left of it (clear of the legend), but not across another moment's line, where
    it would read as that one's; each
    takes the first row where it fits. When the labels with their captions do not all fit,
    every label is its number alone (the captions are in the report's table); when the numbers
    do not all fit either (dozens of moments seconds apart on a long video), a number with no
    room is left out, its text "": overlapping, they had printed as "111111119". ``text_px``
    gives a label's drawn width with its box and offset (the plot measures it; else it is
    estimated from its length)."""
    text_px = text_px or (lambda text: len(text) * _LABEL_CHAR_PX + 8)
    span = max(end - start, 1e-9)
    xs = [(t - start) / span * axis_px for t in times]
    numbers = [label.split()[0] for label in labels]
    for texts, all_or_none in ((labels, True), (numbers, True), (numbers, False)):
        taken: list[list[tuple[float, float]]] = [[], []]
        placed = []
        for x, text in zip(xs, texts, strict=True):
            width = text_px(text)
            # Hanging left only where it must: all those of a crowded last quarter had been left
            # out, each crossing its neighbour's line.
            left = x + width > axis_px
            extent = (x - width, x) if left else (x, x + width)
            # Read from its left end, a label hanging left must not start beside another line.
            # (a line 15 px left of its start had read as its own)
            crosses_a_line = left and any(extent[0] - _LINE_CLEAR_PX < o < x for o in xs if o != x)
            row = next((r for r, spans in enumerate(taken)
                        if all(extent[1] + _GAP_PX < a or extent[0] > b + _GAP_PX for a, b in spans)), None)  # fmt: skip
            if row is None or crosses_a_line:  # it would read as another moment's label
                if all_or_none:
                    break
                placed.append(("", 0, left))
                continue
            taken[row].append(extent)
            placed.append((text, row, left))
        else:
            return placed
    raise AssertionError("unreachable: the last pass leaves out what does not fit")


# --------------------------------------------------------------------------- the HTML report


_CSS = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1f2933;
  background:#f4f5f7}
main{max-width:1120px;margin:0 auto;padding:28px 24px 48px}
h1{font-size:24px;margin:0 0 4px}
h2{font-size:18px;margin:32px 0 12px}
.sub{color:#52606d;margin:0 0 18px}
.facts{display:flex;flex-wrap:wrap;gap:8px;margin:0 0 18px;padding:0;list-style:none}
.facts li{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:6px 12px}
.facts b{display:block;font-size:11px;text-transform:uppercase;letter-spacing:.04em;
  color:#616e7c;font-weight:600}
.plot{background:#fff;border:1px solid #e4e7eb;border-radius:10px;padding:8px}
.plot img{display:block;width:100%;height:auto}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(240px,1fr));gap:16px}
.card{background:#fff;border:1px solid #e4e7eb;border-radius:10px;overflow:hidden;
  box-shadow:0 1px 2px rgba(0,0,0,.04)}
.card .thumb{position:relative;aspect-ratio:16/9;background:#cbd2d9}
.card img{display:block;width:100%;height:100%;object-fit:contain}
.card .noimg{display:flex;align-items:center;justify-content:center;height:100%;color:#52606d;
  font-size:13px}
.badge{position:absolute;left:8px;top:8px;background:#c2410c;color:#fff;border-radius:6px;
  padding:1px 8px;font-weight:600;font-size:13px}
.time{position:absolute;right:8px;bottom:8px;background:rgba(0,0,0,.7);color:#fff;
  border-radius:4px;padding:0 6px;font:600 13px/1.6 ui-monospace,Menlo,monospace}
.card p{margin:10px 12px 4px}
.card .score{color:#616e7c;font-size:13px;margin:0 12px 12px}
.empty{background:#fff;border:1px dashed #cbd2d9;border-radius:10px;padding:16px}
table{width:100%;border-collapse:collapse;background:#fff;border:1px solid #e4e7eb;
  border-radius:10px;overflow:hidden;font-size:14px}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid #eef0f2;vertical-align:top}
th{background:#f8f9fa;font-size:12px;text-transform:uppercase;letter-spacing:.03em;color:#52606d}
td.num{font-variant-numeric:tabular-nums;white-space:nowrap}
tr.novel td,tr.novel th{background:#fff4e6}
tr.novel th:first-child{box-shadow:inset 3px 0 0 #c2410c}
details{margin-top:24px;color:#52606d}
pre{background:#fff;border:1px solid #e4e7eb;border-radius:8px;padding:12px;overflow:auto;
  font-size:12px}
footer{margin-top:28px;color:#616e7c;font-size:13px}
.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.card h3{font-size:13px;font-weight:600;color:#616e7c;margin:10px 12px 0}
.card h3 a{color:inherit}
tr:target{outline:3px solid #f0b429;outline-offset:-3px}
nav.sub a{color:#334e68}
th[scope=row]{background:none;font-size:inherit;text-transform:none;letter-spacing:0;color:inherit;
  font-weight:400}
table caption{text-align:left;font-size:13px;color:#52606d;padding:0 0 6px 4px}
.scroll{overflow-x:auto;border-radius:10px}
h1,.sub{overflow-wrap:anywhere}
.narrow{display:none}
@media (max-width:600px){main{padding:16px 10px 32px}th,td{padding:5px 6px}td.cap{min-width:11em}
  .wide{display:none}.narrow{display:inline}
  table caption{position:sticky;left:0;max-width:calc(100vw - 24px)}
  table{font-size:13px}
  .plot{overflow-x:auto}.plot img{width:820px;max-width:none}
  .plot::before{content:"Swipe sideways for the whole plot \\2192";display:block;position:sticky;left:0;
    width:max-content;padding:0 2px 6px;font-size:12.5px;color:#52606d}}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _captioner_name(analysis: Analysis) -> str:
    """The captioner that actually ran ("default" resolved, when the pipeline recorded it), and
    "(greedy)" after it when --greedy decoded (said only in the raw JSON before)."""
    extra = analysis.extra if isinstance(analysis.extra, dict) else {}
    used = extra.get("captioner")
    greedy = " (greedy)" if extra.get("decoding") == "greedy" else ""
    return (str(used) if used else analysis.params.captioner) + greedy


def _data_uri(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def plot_alt(analysis: Analysis, name: str) -> str:
    """The novelty plot in words, for a reader who cannot see it: when the novel moments come,
    how high they score, and where every score is."""
    clock = moment_clock(analysis)
    novel = [m for m in analysis.moments if m.is_novel]
    if not novel:
        return f"Novelty over time for {name}: no moment stood out; every score is in the All moments table."
    times = ", ".join(f"{clock(m.time)} ({_score(m.novelty, 2) or '–'})" for m in novel)
    meaning = novelty_meaning(analysis.params, len(analysis.moments))[1]
    return (f"Novelty over time for {name}: {len(novel)} novel moment{'s' * (len(novel) != 1)}, at "
            f"{times}; {meaning}. Every score is in the All moments table.")  # fmt: skip


CARDS_SHOWN = 48  # novel moments shown as cards; the rest behind a "The other N" fold


def render_report_html(analysis: Analysis, plot_png: bytes | None = None) -> str:
    """``report.html``: one self-contained page (inline CSS and images, no scripts, no links out).

    ``plot_png`` defaults to ``render_plot_png(analysis)``; pass it to avoid drawing twice.
    """
    from capsight import __version__

    if plot_png is None:
        plot_png = render_plot_png(analysis)
    v, p = analysis.video, analysis.params
    novel = analysis.novel_moments
    name = Path(v.path).name
    clock = moment_clock(analysis)

    facts = [
        ("duration", clock(v.duration, rounded=True)),
        ("resolution", f"{v.width}×{v.height}"),
        ("frame rate", f"{round(v.fps, 2):g} fps"),  # as the CLI prints it: 29.97, not 30
        (
            "moments",
            f"{len(analysis.moments)}, "
            + ("every frame" if v.fps and p.every < 1.0 / v.fps else f"every {p.every:g} s"),
        ),  # fmt: skip
        ("novel", str(len(novel))),
        ("signal", f"{p.signal}, {p.metric}"),
        ("window", f"{p.window} moments"),
        ("sensitivity", f"{p.sensitivity:g}"),
        ("captioner", _captioner_name(analysis)),
    ]
    facts_html = "".join(f"<li><b>{_e(k)}</b>{_e(val)}</li>" for k, val in facts)

    row_of = {id(m): i for i, m in enumerate(analysis.moments)}  # a card links to its row
    if novel:
        cards = []
        for n, m in enumerate(novel, start=1):
            if m.thumbnail:  # its alt: what the encoder saw (the caption follows as text)
                seen = f"frame at {clock(m.time)}" + (
                    f", the encoder's top class {m.labels[0][0]}" if m.labels else ""
                )
                thumb = f'<img src="{_data_uri("image/jpeg", m.thumbnail)}" alt="{_e(seen)}">'
            else:
                thumb = '<div class="noimg">no thumbnail</div>'
            cards.append(
                f'<article class="card"><div class="thumb">{thumb}'
                f'<span class="badge" aria-hidden="true">{n}</span>'
                f'<span class="time" aria-hidden="true">{_e(clock(m.time))}</span></div>'
                f'<h3><a href="#m{row_of[id(m)]}">Novel moment {n} · {_e(clock(m.time))}</a></h3>'
                f"<p>{_e(m.caption)}</p>"
                f'<p class="score">novelty {_e(_score(m.novelty, 2) or "–")} '
                f"({_e(novelty_unit(analysis.params))})</p></article>"
            )
        novel_html = f'<div class="cards">{"".join(cards[:CARDS_SHOWN])}</div>'
        if len(cards) > CARDS_SHOWN:  # (an hour's 501 cards had filled 44 screens before the table)
            rest = len(cards) - CARDS_SHOWN
            novel_html += (f"<details><summary>The other {rest:,} novel moment{'s' * (rest != 1)}"
                           f'</summary><div class="cards">{"".join(cards[CARDS_SHOWN:])}</div>'
                           "</details>")  # fmt: skip
    else:
        reason = analysis.quiet_reason(face="report") or ""
        novel_html = f'<p class="empty">No novel moments: {_e(reason)}.</p>'
    novel_html += "".join(f'<p class="empty">Note: {_e(aside)}.</p>' for aside in analysis.asides())

    selection = analysis.extra.get("selection") if isinstance(analysis.extra, dict) else None
    strengths = (selection or {}).get("strength") or []
    bar = (selection or {}).get("threshold")
    rows = []
    for i, m in enumerate(analysis.moments):
        label = f"{m.labels[0][0]} ({float(m.labels[0][1]):.0%})" if m.labels else ""
        strength = strengths[i] if i < len(strengths) else None
        strength_cell = (
            f'<td class="num">{_e(_score(strength, 2) or "–")}</td>' if strengths else ""
        )
        rows.append(
            f'<tr id="m{i}" class="{"novel" if m.is_novel else ""}">'
            f'<th scope="row" class="num">{_e(clock(m.time))}'
            f"{'<span class=vh>, novel</span>' if m.is_novel else ''}</th>"
            f'<td class="num">{_e(_score(m.novelty) or "–")}</td>'
            f'<td class="num wide">{_e(_score(m.novelty_text) or "–")}</td>'
            f'<td class="num wide">{_e(_score(m.novelty_visual) or "–")}</td>{strength_cell}'
            f'<td class="cap">{_e(m.caption)}</td><td>{_e(label)}</td></tr>'
        )
    if strengths and isinstance(bar, (int, float)):
        peak, end = _selection_spans(analysis)
        decides = (f"(<em>strength</em>: a moment is novel above a bar of {bar:.2f} here, 1.5 "
                   f"times that in the last {end:g} s, where no moment within {peak:g} s was "
                   "stronger as it was picked; strength is measured since the last novel moment, "
                   "so the one after a novel moment can show more than it did)")  # fmt: skip
    else:
        decides = "(<em>strength</em> in moments.csv)"
    table = (
        '<div class="scroll" tabindex="0" role="region" aria-label="All moments (scrolls sideways)">'
        "<table><caption>Every sampled moment; novel ones are shaded, with a bar at the left. "
        "<em>novelty</em> is the plotted value; the caption and image columns are the raw "
        f"{_e(analysis.params.metric)} distances"
        f"{' (the plot divides each by its median over the video)' if analysis.params.signal == 'fused' else ''}"
        ". A moment is marked novel by how much its change persists and is unfamiliar "
        f"{decides}, so a lasting change can be marked where the curve "
        "is low and a passing spike left unmarked."
        '<span class="narrow"> On a narrow screen the caption and image distances are left out '
        "(moments.csv has them).</span>"
        '</caption><thead><tr><th scope="col">time</th><th scope="col">novelty</th>'
        '<th scope="col" class="wide">caption distance</th><th scope="col" class="wide">image distance</th>'
        f'{STRENGTH_HEADER if strengths else ""}<th scope="col">caption</th>'
        f'<th scope="col">top ImageNet class</th></tr></thead><tbody>{"".join(rows)}'
        "</tbody></table></div>"
    )
    extra = compact_json(analysis.extra)

    where = f" · {_e(v.path)}" if str(v.path) != name else ""  # the heading names the file already
    stopped = analysis.extra.get("stopped_at") if isinstance(analysis.extra, dict) else None
    if isinstance(stopped, (int, float)):  # said at the top: its note came after the gallery
        where += (f" · <strong>stopped part-way: analysed up to {_e(clock(stopped))} of "
                  f"{_e(clock(v.duration, rounded=True))}</strong>")  # fmt: skip
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>capsight · {_e(name)}</title>
<style>{_CSS}</style>
</head>
<body>
<main>
<h1>{_e(name)}</h1>
<p class="sub">{len(novel)} novel moment{"" if len(novel) == 1 else "s"} among
{len(analysis.moments)} sampled{where}</p>
<ul class="facts">{facts_html}</ul>
<nav class="sub" aria-label="On this page"><a href="#novel">Novel moments</a> ·
<a href="#all">All {len(analysis.moments):,} moments</a> · <a href="#details">Run details</a></nav>
<div class="plot" tabindex="0" role="region" aria-label="Novelty plot (scrolls sideways on narrow screens)">
<img src="{_data_uri("image/png", plot_png)}" alt="{_e(plot_alt(analysis, name))}"></div>
<h2 id="novel">Novel moments</h2>
{novel_html}
<h2 id="all">All moments</h2>
{table}
<details id="details"><summary>Run details</summary><pre>{_e(extra)}</pre></details>
<footer>Made by capsight {_e(__version__)} · encoder {_e(p.encoder)} · text embedder
{_e(p.text_embedder)} · {_e(novelty_meaning(p, len(analysis.moments))[1])}.</footer>
</main>
</body>
</html>
"""


# --------------------------------------------------------------------------- all at once


# How each output starts when capsight wrote it (its first 4 KiB): a file of that name that
# does not is a user's own, which writing the report would replace.
OUTPUT_MARKS = {
    "report.html": (b"<title>capsight",),
    "analysis.json": (b'"moments"', b'"params"', b'"video"'),
    "moments.csv": (b"time,caption,novelty",),
    "novelty.png": (b"Matplotlib", b"capsight"),
    "captions.vtt": (b"NOTE captions written by capsight",),
    "summary.csv": (
        b"video,duration_s,moments,novel_moments,",
    ),  # several videos' (capsight video)
}


def written_by_capsight(path: Path) -> bool:
    """Whether ``path`` (an output name) holds what capsight writes there: an earlier run's
    file, or nothing (empty: a write cut short), as against a user's own file of that name."""
    try:
        with path.open("rb") as file:
            head = file.read(4096)
    except OSError:
        return True  # unreadable: writing will say what is wrong
    # all three keys, near its top: a JSON of the user's may hold one
    if path.name == "analysis.json":
        return not head or all(mark in head for mark in OUTPUT_MARKS[path.name])
    return not head or any(mark in head for mark in OUTPUT_MARKS[path.name])


def check_output_dir(out_dir: str | os.PathLike, outputs: tuple[str, ...] = OUTPUT_NAMES) -> Path:
    """``out_dir`` as a Path once a file has been written in it, or InvalidParameter when the
    outputs could not be written there (a file, a folder under a file, a folder that cannot be
    written, an output name taken by a folder or by a file capsight did not write, a place
    like /proc/x that passes a permission look): callers check before the minutes of analysis
    that the report would otherwise be lost after. Folders made for the check are removed again.
    ``outputs``: the names that will be written there (a batch's root holds only summary.csv)."""
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise InvalidParameter(f"{out}: exists and is not a folder; choose another output folder")
    made = _missing_folders(out)
    existing = made[-1].parent if made else out
    if not existing.is_dir():
        raise InvalidParameter(
            f"{out}: a parent is a file, not a folder; choose another output folder"
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InvalidParameter(
            f"{out}: cannot write there (permission denied); choose another output folder"
        )
    for name in outputs:
        if (out / name).is_dir():
            raise InvalidParameter(
                f"{out / name}: is a folder, so the report cannot be written; choose another output folder"
            )
        if (out / name).is_file() and not written_by_capsight(out / name):
            raise InvalidParameter(f"{out / name}: not written by capsight, and the report would "
                                   "replace it; move it or choose another output folder")  # fmt: skip
    try:
        make_writable_folder(out)
    except OSError as exc:
        raise InvalidParameter(
            f"{out}: cannot write the report there ({exc.strerror or exc}); choose another output folder"
        ) from None
    finally:
        _remove_empty(made)
    return out


def _replace_all(out: Path, contents: dict[str, str | bytes]) -> dict[str, Path]:
    """Write every output to a temporary name beside its own, then rename each into place: a
    full disk or Ctrl-C partway leaves the earlier run's files whole, not half of a new one."""
    temporary: dict[str, Path] = {}
    try:
        for name in OUTPUT_NAMES:
            data = contents[name]
            part = out / f".{name}.{secrets.token_hex(6)}.part"
            try:
                handle = create_new(part)  # (no link followed)
            except FileExistsError:  # something took a random name: not a parent that is a file
                raise InvalidParameter(f"{out}: cannot write the report ({part.name} appeared "
                                       "there meanwhile); choose another output folder") from None  # fmt: skip
            temporary[name] = part
            with os.fdopen(handle, "wb") as file:
                # (backslashreplace: a name not in UTF-8, "caf\\xe9.mp4", reaches here as a
                # lone surrogate, which strict UTF-8 refused after the whole analysis)
                file.write(
                    data if isinstance(data, bytes) else data.encode("utf-8", "backslashreplace")
                )
        for name, path in temporary.items():
            os.replace(path, out / name)
    finally:
        for path in temporary.values():
            path.unlink(missing_ok=True)  # (renamed ones are gone already)
    return {name: out / name for name in OUTPUT_NAMES}


def write_outputs(analysis: Analysis | dict, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write the five outputs into ``out_dir`` (created if needed); return name -> path.
    ``analysis`` may also be its ``to_dict()`` (analysis.json read back), which holds no
    thumbnails: the report's cards then say "no thumbnail"."""
    if isinstance(analysis, dict):
        analysis = Analysis.from_dict(analysis)
    elif not isinstance(analysis, Analysis):
        raise InvalidParameter(f"write_outputs needs an Analysis (or its to_dict()), not "
                               f"{type(analysis).__name__!r}")  # fmt: skip
    if not isinstance(out_dir, (str, os.PathLike)):
        raise InvalidParameter(f"out_dir must be a folder path, not {type(out_dir).__name__!r}")
    if isinstance(out_dir, str) and not out_dir.strip():  # Path("") is ".": the current folder
        raise InvalidParameter("out_dir is empty; name a folder for the report")
    out = check_output_dir(out_dir)
    made = _missing_folders(out)  # removed again if nothing could be written (a full disk)
    try:
        plot = render_plot_png(analysis)
        contents: dict[str, str | bytes] = {
            "report.html": render_report_html(analysis, plot_png=plot),
            "analysis.json": render_json(analysis),
            "moments.csv": render_csv(analysis),
            "novelty.png": plot,
            "captions.vtt": render_vtt(analysis),
        }
        # Made once all is drawn: a batch worker stopped meanwhile (a SIGTERM, which runs no
        # handler here) had left the video an empty folder.
        out.mkdir(parents=True, exist_ok=True)
        paths = _replace_all(out, contents)
    except KeyboardInterrupt:  # Ctrl-C while the files were written: no empty folder left
        _remove_empty(made)
        raise
    except PermissionError:
        _remove_empty(made)
        raise InvalidParameter(
            f"{out}: cannot write there (permission denied); choose another output folder"
        ) from None
    except (FileExistsError, NotADirectoryError):
        _remove_empty(made)
        raise InvalidParameter(
            f"{out}: a parent is a file, not a folder; choose another output folder"
        ) from None
    except OSError as exc:  # disk full, read-only file system, name too long ...
        _remove_empty(made)
        reason = exc.strerror or str(exc)
        raise InvalidParameter(
            f"{out}: cannot write the report ({reason}); choose another output folder"
        ) from None
    return paths


def _missing_folders(out: Path) -> list[Path]:
    """``out`` and its parents that do not exist yet, deepest first."""
    missing = []
    while not out.exists() and out != out.parent:
        missing.append(out)
        out = out.parent
    return missing


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first; one that holds anything stays, and its parents
        try:
            folder.rmdir()
        except OSError:
            break
