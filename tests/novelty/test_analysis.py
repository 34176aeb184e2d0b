"""``Analysis``, the result a notebook user holds: short to print, usable when empty."""

from __future__ import annotations

import json

import pytest

from capsight.errors import InvalidParameter
from capsight.novelty.analysis import Analysis, AnalysisParams, Moment, VideoInfo


def _analysis(moments: list[Moment]) -> Analysis:
    return Analysis(VideoInfo("clip.mp4", 30.0, 25.0, 64, 48), AnalysisParams(), moments)


def test_repr_summarises_instead_of_listing_every_moment():
    moments = [Moment(float(t), f"caption {t}", 0.1, is_novel=t in (5, 12)) for t in range(600)]
    text = repr(_analysis(moments))
    assert text == "<Analysis of 'clip.mp4': 600 moments, 2 novel at 5, 12 s>"
    assert str(_analysis(moments)) == text
    many = repr(_analysis([Moment(float(t), "a", 1.0, is_novel=True) for t in range(30)]))
    assert "30 novel at 0, 1, 2" in many and many.endswith(", ... s>") and "29" not in many
    assert (
        repr(_analysis([Moment(0.0, "a", None)])) == "<Analysis of 'clip.mp4': 1 moment, 0 novel>"
    )


def test_an_empty_analysis_answers_every_question():
    empty = _analysis([])
    assert empty.novel_moments == []
    assert empty.quiet_reason() == "no frame could be sampled from the video"
    assert repr(empty) == "<Analysis of 'clip.mp4': 0 moments, 0 novel>"
    data = json.loads(json.dumps(empty.to_dict(), allow_nan=False))
    assert data["moments"] == [] and data["novel_moments"] == []
    assert Analysis.from_dict(data).moments == []


@pytest.mark.parametrize(
    "change, fragment",
    [
        (lambda d: d.pop("moments"), "no 'moments'"),
        (lambda d: d.pop("video"), "no 'video'"),
        (lambda d: d["moments"][0].pop("caption"), "no 'caption'"),
        (lambda d: d["params"].update(colour="red"), "colour"),
        (lambda d: d.update(moments=[5]), "not an analysis"),
        # Of the wrong kind: each was a traceback in the report's renderers (write_outputs).
        (lambda d: d["moments"][0].update(caption=None), "has a caption that is not text"),
        (lambda d: d["moments"][0].update(time="x"), "time 'x' is not a number"),
        (lambda d: d["moments"][0].update(novelty="x"), "has a novelty that is not a number"),
        (lambda d: d["moments"][0].update(labels="cat"), "labels that are not"),
        (lambda d: d["params"].update(every="x"), "every 'x' is not a positive number"),
        (lambda d: d["video"].update(duration="x"), "video duration 'x' is not a number"),
        (lambda d: d["video"].update(path=5), "video path 5 is not text"),
    ],
)
def test_a_damaged_analysis_json_is_named_in_one_line(change, fragment):
    data = json.loads(json.dumps(_analysis([Moment(1.0, "a dog", 0.2)]).to_dict()))
    change(data)
    with pytest.raises(InvalidParameter, match=fragment):
        Analysis.from_dict(data)


def test_a_video_whose_frames_end_before_its_declared_length_says_so():
    """An MP4 cut off in its last frames is read up to the cut; the moments after were lost
    without a word."""
    whole = [Moment(t / 10, "a", 0.1) for t in range(300)]  # 30 s at 25 fps, every 0.1 s
    params = AnalysisParams(every=0.1)
    info = VideoInfo("clip.mp4", 30.0, 25.0, 64, 48)
    assert Analysis(info, params, whole).cut_short() is None
    short = Analysis(info, params, whole[:-2]).cut_short()
    assert short == ("the video's frames end before the 30.0 s its file declares (cut off?): "
                     "2 moments after 29.7 s could not be sampled")  # fmt: skip
    every_frame = AnalysisParams(every=0.05)  # under two frames apart: no claim made
    assert Analysis(info, every_frame, whole[:-2]).cut_short() is None
    assert _analysis([]).cut_short() is None


def test_changes_left_out_under_a_restless_videos_raised_bar_are_said():
    """At --every 3 on a slideshow, 3 of 14 cuts were picked and 11 left out without a word."""
    moments = [Moment(float(t), "a", 0.1, is_novel=t == 2) for t in range(9)]
    selection = {"threshold": 2.0, "strength": [None] + [0.5] * 8, "left_out": [5, 7]}
    analysis = Analysis(VideoInfo("clip.mp4", 9.0, 25.0, 64, 48), AnalysisParams(every=3.0),
                        moments, {"selection": selection})  # fmt: skip
    assert analysis.raised_bar(face="cli") == (
        "most moments differ from the ones before them, so the bar to stand out was raised (2x "
        "the usual) and 2 weaker changes that cleared the usual bar were left out (a restless "
        "video, or too few samples for its shots: sample more often, --every)"
    )
    assert analysis.raised_bar(face="cli") in analysis.notes(face="cli")
    dense = Analysis(analysis.video, AnalysisParams(every=0.1), moments, analysis.extra)
    assert dense.raised_bar().endswith("left out (a restless video)")  # sampled densely already
    for fewer in ([], [5]):  # as many left out as kept, or fewer: the raised bar at its work
        kept = {"selection": {**selection, "left_out": fewer}}  # (the sample's one ripple)
        assert Analysis(analysis.video, analysis.params, moments, kept).raised_bar() is None
    assert _analysis(moments).raised_bar() is None  # (an analysis.json from before: no note)


def test_a_window_that_spans_too_little_video_says_so():
    """every_n_second=0.0001 with rolling_window_size=3 found 3 of testvideo's 7 events, and
    nothing said that the moments compared spanned a tenth of a second."""
    info = VideoInfo("clip.mp4", 10.0, 30.0, 64, 48)
    moments = [Moment(t / 30, "a", 0.1) for t in range(300)]
    dense = Analysis(info, AnalysisParams(every=0.0001, window=3), moments)  # every frame
    assert dense.narrow_window(face="legacy") == (
        "the 3 moments before each span only 0.1 s of video, so a slow change (a dissolve, a "
        "fade) may pass unnoticed: sample every 0.17 s or more sparsely (every_n_second), or "
        "compare with more moments (rolling_window_size)"
    )
    assert "(--every)" in dense.narrow_window(face="cli")
    fine = [(0.1, 5), (1.0, 1), (0.5, 1), (0.05, 10)]  # 0.5 s or more: no note
    for every, window in fine:
        assert (
            Analysis(info, AnalysisParams(every=every, window=window), moments).narrow_window()
            is None
        )
    few = Analysis(
        info, AnalysisParams(every=0.01, window=5), moments[:5]
    )  # no moment has 5 before
    assert few.narrow_window() is None
    with pytest.raises(InvalidParameter, match="face must be one of"):
        dense.narrow_window(face="tv")


def test_python_callers_get_one_line_for_what_is_not_an_analysis_or_a_face():
    """Analysis.from_dict(None) had said "'NoneType' object is not subscriptable", and
    quiet_reason("python") was a KeyError."""
    with pytest.raises(InvalidParameter, match="an analysis is a dict, .* not 'NoneType'"):
        Analysis.from_dict(None)
    quiet = _analysis([Moment(0.0, "a dog", None), Moment(1.0, "a dog", 0.01)])
    with pytest.raises(
        InvalidParameter, match="face must be one of cli, report, page, legacy, api, python"
    ):
        quiet.quiet_reason("notebook")
    assert "--" not in quiet.quiet_reason("python")  # in the arguments' names, not the CLI's flags


def test_frames_too_small_to_caption_are_said():
    """A 3000x20 strip had been captioned ("a white dog is walking in the snow") and its
    moments picked without a word, where a photo that small is said to be a guess."""
    moments = [Moment(float(t), "a dog", 0.1, 0.1, 0.1, False) for t in range(4)]
    strip = Analysis(VideoInfo("strip.mp4", 4.0, 25.0, 3000, 20), AnalysisParams(), moments)
    assert strip.asides()[0] == (
        "its frames are 3000x20 px, only 20 on its short side (under 32): too small to show "
        "what the captions say, which are guesses, as its novel moments may be"
    )
    assert _analysis(moments).small_frames() is None  # 64x48: small, not too small
