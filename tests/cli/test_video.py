"""`capsight video`: the summary, --json, the files written, and every bad input end to end.

The first tests stand a fake ``capsight.novelty.pipeline`` in for the real one, so they check
only what the CLI does with an ``Analysis``; the end-to-end tests run the real pipeline.
"""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import pytest

from capsight.novelty.analysis import Analysis, AnalysisParams, Moment, VideoInfo
from capsight.novelty.reports import OUTPUT_NAMES


def _fake_analysis(path: str, **params) -> Analysis:
    moments = [
        Moment(
            time=float(t),
            caption="a photo of a cat" if t < 3 else "a photo of an espresso",
            novelty=None if t == 0 else (0.8 if t == 3 else 0.1),
            is_novel=t == 3,
            labels=[("tabby", 0.5)],
        )
        for t in range(6)
    ]
    keep = {k: v for k, v in params.items() if k in AnalysisParams.__dataclass_fields__}
    return Analysis(VideoInfo(path, 6.0, 25.0, 320, 180), AnalysisParams(**keep), moments)


@pytest.fixture
def fake_pipeline(monkeypatch):
    """Replace the pipeline; return the list of calls (kwargs) it received."""
    calls: list[dict] = []

    def analyze_video(path, progress=None, **params):
        calls.append({"path": path, **params})
        if "broken" in str(path):
            from capsight.errors import VideoOpenError

            raise VideoOpenError(f"{path}: not a video FFmpeg can read")
        if "ctrl-c-picking" in str(path):  # stopped while picking: every moment, none novel
            from capsight.novelty.analysis import StoppedPartWay

            part = _fake_analysis(str(path), **params)
            part.extra["selection"] = {"stopped": True}
            for m in part.moments:
                m.is_novel = False
            raise StoppedPartWay(part)
        if "ctrl-c-part" in str(path):  # stopped at 00:04 of 00:06
            from capsight.novelty.analysis import StoppedPartWay

            part = _fake_analysis(str(path), **params)
            part.moments[5:] = []
            part.extra["stopped_at"] = 4.0
            if "picking" in str(path):  # and a second stop while picking the part's moments
                part.extra["selection"] = {"stopped": True}
            if "term" in str(path):  # SIGTERM: the CLI's own kind of interrupt, kept
                from capsight._cli.main import Terminated

                stop = Terminated()
                stop.analysis = part
                raise stop
            raise StoppedPartWay(part)
        if "ctrl-c" in str(path):
            if "late" in str(path) and progress is not None:
                progress(0.5, "captioned up to 00:03")
            raise KeyboardInterrupt
        if progress is not None:
            if "first-run" in str(path):  # the ONNX graphs exported on a machine's first video
                progress(0.0, "exporting minilm for ONNX Runtime (once)")
                progress(0.0, "exporting minilm for ONNX Runtime (once)")
            progress(0.5, "halfway")
        return _fake_analysis(str(path), **params)

    from capsight.novelty.pipeline import check_options  # the real option checks (no models)

    module = types.ModuleType("capsight.novelty.pipeline")
    module.analyze_video = analyze_video
    module.check_options = check_options
    monkeypatch.setitem(sys.modules, "capsight.novelty.pipeline", module)
    return calls


def test_summary_lists_novel_moments_and_the_report(run_cli, fake_pipeline, tmp_path):
    status, out, err = run_cli("video", "clip.mp4", "--out", tmp_path / "o")
    assert status == 0, err
    assert out.splitlines()[0].startswith("clip.mp4: 00:06, 320x180 at 25 fps; 6 moments")
    assert "1 novel moment (time, novelty x a typical moment, caption):" in out
    assert "00:03  0.80  a photo of an espresso" in out
    assert f"report: {tmp_path / 'o' / 'report.html'}" in out
    for name in ("report.html", "analysis.json", "moments.csv", "novelty.png", "captions.vtt"):
        assert (tmp_path / "o" / name).is_file()
    assert "novelty 0.80 (x a typical moment)</p>" in (tmp_path / "o" / "report.html").read_text()
    # One signal alone is a plain distance, and says so.
    status, out, err = run_cli("video", "clip.mp4", "--out", tmp_path / "t", "--signal", "text",
                               "--metric", "euclidean")  # fmt: skip
    assert "1 novel moment (time, novelty euclidean distance, caption):" in out
    assert "novelty 0.80 (euclidean distance)</p>" in (tmp_path / "t" / "report.html").read_text()
    assert err == ""  # stderr is not a terminal here: no progress bar
    status, _, err = run_cli("video", "clip.mp4", "--out", tmp_path / "o")  # the same again
    assert status == 0 and err.strip() == (f"capsight: note: {tmp_path / 'o'}: replaced report.html, "
                                           "analysis.json, moments.csv, novelty.png, captions.vtt of an earlier run")  # fmt: skip
    # Another video's report replaced is said to be (it read as a rerun of the same video)
    status, _, err = run_cli("video", "other.mp4", "--out", tmp_path / "o")
    assert status == 0 and err.strip().endswith("of an earlier run, of another video (clip.mp4)")


def test_several_videos_each_get_a_folder_and_one_summary(
    run_cli, fake_pipeline, tmp_path, one_error_line
):
    archive = tmp_path / "archive"
    (archive / "day2").mkdir(parents=True)
    for name in ("a.mp4", "day2/a.mp4", "broken.mov", "notes.txt"):
        (archive / name).write_bytes(b"x")
    status, out, err = run_cli("video", archive, "--out", tmp_path / "o")
    assert status == 2  # one video failed; the others were analysed
    one_error_line(err, "broken.mov: not a video FFmpeg can read")
    assert [c["path"] for c in fake_pipeline] == [
        str(archive / n) for n in ("a.mp4", "broken.mov", "day2/a.mp4")
    ]
    assert (tmp_path / "o" / "a" / "report.html").is_file() and (
        tmp_path / "o" / "a-2" / "report.html"
    ).is_file()
    import csv

    rows = list(csv.DictReader((tmp_path / "o" / "summary.csv").open()))
    assert [(r["video"], r["novel_moments"], r["novel_at_s"]) for r in rows] == [
        (str(archive / "a.mp4"), "1", "3"),
        (str(archive / "broken.mov"), "", ""),
        (str(archive / "day2" / "a.mp4"), "1", "3"),
    ]
    assert "not a video" in rows[1]["error"]
    assert out.splitlines()[0] == f"[1/3] {archive / 'a.mp4'}"
    assert (
        out.splitlines()[-1] == f"2 of 3 videos analysed; summary: {tmp_path / 'o' / 'summary.csv'}"
    )


def test_ctrl_c_among_several_videos_says_what_was_kept(run_cli, fake_pipeline, tmp_path):
    import csv

    names = ("a.mp4", "b-ctrl-c.mp4", "c.mp4")
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    status, out, err = run_cli("video", *(tmp_path / n for n in names), "--out", tmp_path / "o")
    assert status == 130 and "Traceback" not in err
    summary = tmp_path / "o" / "summary.csv"
    assert f"1 of 3 videos analysed before the interruption; summary: {summary}" in err
    assert err.rstrip().endswith("capsight: interrupted")
    rows = list(csv.DictReader(summary.open()))
    assert [(Path(r["video"]).name, r["novel_moments"], r["error"]) for r in rows] == [
        ("a.mp4", "1", ""), ("b-ctrl-c.mp4", "", "not analysed: interrupted"),
        ("c.mp4", "", "not analysed: interrupted"),
    ]  # fmt: skip


def test_ctrl_c_on_one_video_says_how_far_it_got_and_that_nothing_was_written(
    run_cli, fake_pipeline, tmp_path
):
    """Half an hour's work went with one line, "capsight: interrupted", and no word of it."""
    (tmp_path / "ctrl-c-late.mp4").write_bytes(b"x")
    status, out, err = run_cli("video", tmp_path / "ctrl-c-late.mp4", "--out", tmp_path / "o")
    assert status == 130 and "Traceback" not in err
    assert (f"ctrl-c-late.mp4: stopped before the end (captioned up to 00:03); nothing was "
            f"written to {tmp_path / 'o'}") in err  # fmt: skip
    assert err.rstrip().endswith("capsight: interrupted")


def test_ctrl_c_part_way_through_one_video_writes_the_part_analysed(
    run_cli, fake_pipeline, tmp_path
):
    (tmp_path / "ctrl-c-part.mp4").write_bytes(b"x")
    status, out, err = run_cli("video", tmp_path / "ctrl-c-part.mp4", "--out", tmp_path / "o")
    assert status == 130 and "Traceback" not in err
    assert (f"ctrl-c-part.mp4: stopped at 00:04 of 00:06; the report in {tmp_path / 'o'} covers "
            "the 5 moments analysed up to there") in err  # fmt: skip
    report = (tmp_path / "o" / "report.html").read_text()
    assert "stopped part-way: only the moments up to 4.0 s of the 6.0 s" in report
    assert len(json.loads((tmp_path / "o" / "analysis.json").read_text())["moments"]) == 5
    status, out, err = run_cli("video", tmp_path / "ctrl-c-part.mp4", "--out", tmp_path / "j",
                               "--json")  # fmt: skip
    assert status == 130 and json.loads(out)["extra"]["stopped_at"] == 4.0  # printed as it is
    (tmp_path / "ctrl-c-part-term.mp4").write_bytes(b"x")
    status, _, err = run_cli("video", tmp_path / "ctrl-c-part-term.mp4", "--out", tmp_path / "t")
    assert status == 143 and (tmp_path / "t" / "report.html").is_file(), err  # not "interrupted"


def test_ctrl_c_while_picking_the_novel_moments_writes_every_moment(
    run_cli, fake_pipeline, tmp_path
):
    (tmp_path / "ctrl-c-picking.mp4").write_bytes(b"x")
    status, out, err = run_cli("video", tmp_path / "ctrl-c-picking.mp4", "--out", tmp_path / "o")
    assert status == 130 and "Traceback" not in err
    assert (f"ctrl-c-picking.mp4: stopped while picking the novel moments; the report in "
            f"{tmp_path / 'o'} has all 6 moments, captioned and scored, none marked novel") in err  # fmt: skip
    report = (tmp_path / "o" / "report.html").read_text()
    assert "No novel moments: the run was stopped while they were being picked" in report
    assert "not analysed" not in report and len(
        json.loads((tmp_path / "o" / "analysis.json").read_text())["moments"]) == 6  # fmt: skip
    # stopped part-way first: the part is what it covers, whatever the second stop interrupted
    (tmp_path / "ctrl-c-part-picking.mp4").write_bytes(b"x")
    status, _, err = run_cli("video", tmp_path / "ctrl-c-part-picking.mp4", "--out", tmp_path / "p")
    assert status == 130 and "stopped at 00:04 of 00:06" in err and "has all" not in err


def test_ctrl_c_among_several_videos_as_json_still_prints_the_list(
    run_cli, fake_pipeline, tmp_path
):
    names = ("a.mp4", "b-ctrl-c.mp4", "c.mp4")
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    status, out, err = run_cli("video", *(tmp_path / n for n in names), "--out", tmp_path / "o",
                               "--json")  # fmt: skip
    assert status == 130 and "Traceback" not in err
    data = json.loads(out)  # one closed list: the video done, and a row for each of the rest
    assert [Path(d["video"]["path"]).name for d in data] == list(names)
    assert data[0]["outputs"]["report.html"] == str(tmp_path / "o" / "a" / "report.html")
    assert [d.get("error") for d in data[1:]] == ["not analysed: interrupted"] * 2


def test_an_analysis_written_just_before_ctrl_c_is_read_back_for_json(tmp_path):
    import time

    from capsight._cli.video import _json_from_folder

    started = time.time() - 1
    folder = tmp_path / "a"
    folder.mkdir()
    assert _json_from_folder(folder, started) is None  # nothing written there
    (folder / "report.html").write_text("<p>")
    (folder / "analysis.json").write_text(json.dumps({"video": {"path": "a.mp4"}, "moments": []}))
    entry = _json_from_folder(folder, started)
    assert entry["video"] == {"path": "a.mp4"} and list(entry["outputs"]) == [
        "report.html", "analysis.json"
    ]  # fmt: skip
    assert _json_from_folder(folder, time.time() + 60) is None  # an earlier run's
    (folder / "analysis.json").write_text("[1, 2]")
    assert _json_from_folder(folder, started) is None


def test_several_videos_as_json_is_one_list(run_cli, fake_pipeline, tmp_path):
    for name in ("one.mp4", "two.mp4", "broken.mp4"):
        (tmp_path / name).write_bytes(b"x")
    status, out, err = run_cli(
        "video",
        tmp_path / "one.mp4",
        tmp_path / "gone.mp4",
        tmp_path / "broken.mp4",
        tmp_path / "two.mp4",
        "--out",
        tmp_path / "o",
        "--json",
    )
    assert status == 2  # the missing one is said at once, before any analysis
    assert "gone.mp4: no such file" in err and "broken.mp4: not a video" in err
    assert len(fake_pipeline) == 3
    data = json.loads(out)  # a failure in its place, as `capsight caption --json` has it
    names = [Path(d["video"]["path"]).name for d in data]
    assert names == ["gone.mp4", "one.mp4", "broken.mp4", "two.mp4"]
    assert data[0]["error"].endswith("gone.mp4: no such file") and "outputs" not in data[0]
    assert "broken.mp4: not a video" in data[2]["error"] and "moments" not in data[2]
    assert data[3]["outputs"]["report.html"] == str(tmp_path / "o" / "two" / "report.html")


def test_a_batch_that_finds_no_video_still_prints_a_json_list(run_cli, fake_pipeline, tmp_path):
    """Two missing paths with --json printed nothing at all on stdout (not JSON)."""
    status, out, err = run_cli("video", tmp_path / "gone1.mp4", tmp_path / "gone2.mp4", "--json",
                               "--out", tmp_path / "o")  # fmt: skip
    assert status == 2 and err.count("no such file") == 2
    data = json.loads(out)
    assert [Path(d["video"]["path"]).name for d in data] == ["gone1.mp4", "gone2.mp4"]
    assert all(d["error"].endswith("no such file") for d in data)


def test_an_error_a_spreadsheet_would_run_as_a_formula_is_written_as_text(
    run_cli, fake_pipeline, tmp_path, monkeypatch
):
    """The error starts with the file's name: "=1+2broken.mp4: ..." was a formula in Excel."""
    import csv

    monkeypatch.chdir(tmp_path)
    for name in ("=1+2broken.mp4", "ok.mp4"):
        (tmp_path / name).write_bytes(b"x")
    status, _, _ = run_cli("video", "=1+2broken.mp4", "ok.mp4", "--out", "o")
    assert status == 2
    rows = list(csv.DictReader((tmp_path / "o" / "summary.csv").open()))
    assert rows[0]["error"].startswith("'=1+2broken.mp4: not a video")
    assert rows[0]["video"] == str(tmp_path / "=1+2broken.mp4") and rows[1]["error"] == ""


def test_a_long_videos_summary_lists_its_strongest_novel_moments_and_says_how_many_more():
    """An hour's 486 novel moments had pushed the summary's first line off the screen; then the
    first 25 of 501 were all in its first 4 minutes: the strongest are listed, in time order."""
    from capsight._cli.video import SUMMARY_MOMENTS, format_summary

    weak = {1, 5, 9, 13, 17, 21, 25, 29, 33, 35}  # 10 weaker ones, spread through the video
    moments = [Moment(time=float(t), caption=f"scene {t}", novelty=None if t == 0 else
                      1.5 if t in weak else 2.0, is_novel=t > 0)
               for t in range(SUMMARY_MOMENTS + 11)]  # fmt: skip
    text = format_summary(Analysis(VideoInfo("long.mp4", 36.0, 25.0, 64, 48), AnalysisParams(),
                                   moments), {})  # fmt: skip
    assert f"{SUMMARY_MOMENTS + 10} novel moments; the {SUMMARY_MOMENTS} strongest" in text
    listed = re.findall(r"scene (\d+)\n", text)
    assert [int(t) for t in listed] == [t for t in range(1, SUMMARY_MOMENTS + 11) if t not in weak]
    assert "  ... and 10 more (all in the report, analysis.json and moments.csv)" in text
    # By the selection's strength where the run has it (the report's "strength"), not the plot's
    picked = Analysis(VideoInfo("long.mp4", 36.0, 25.0, 64, 48), AnalysisParams(), moments,
                      {"selection": {"strength": [None] + [9.0 if t in weak else 2.0
                                                           for t in range(1, len(moments))]}})  # fmt: skip
    listed = re.findall(r"scene (\d+)\n", format_summary(picked, {}))
    assert {1, 5, 9} <= {int(t) for t in listed}


def test_summary_says_what_was_really_sampled():
    from capsight._cli.video import format_summary

    one = Analysis(VideoInfo("vfr.mp4", 0.5, 16.050911, 64, 48), AnalysisParams(every=1e-9),
                   [Moment(time=0.0, caption="a dog", novelty=None)])  # fmt: skip
    text = format_summary(one, {}, elapsed=0.4)
    assert "at 16.05 fps; 1 moment, every frame (--every 1e-09 s is shorter than a frame)" in text
    assert "real time" not in text  # 0.5 s of video: a speed figure would mean nothing
    assert "analysed in 0.4 s" in text
    assert ", --every)" in text and "in the CLI" not in text  # the terminal names its own flags


def test_a_window_wider_than_the_video_is_noted():
    from capsight._cli.video import format_summary

    moments = [
        Moment(time=float(t), caption="a dog", novelty=None if t == 0 else 0.1) for t in range(24)
    ]
    info = VideoInfo("clip.mp4", 24.0, 25.0, 64, 48)
    wide = format_summary(Analysis(info, AnalysisParams(window=100_000), moments), {})
    assert (
        "note: --window 100000 reaches past the first of the 24 moments: each moment is "
        "compared with the mean of all those before it"
    ) in wide
    within = format_summary(Analysis(info, AnalysisParams(window=20), moments), {})
    assert "note: --window" not in within
    assert within.splitlines()[1] == "settings: --window 20"  # the options away from the defaults
    # default
    assert "--window" not in format_summary(Analysis(info, AnalysisParams(), moments[:3]), {})
    dense = format_summary(Analysis(info, AnalysisParams(every=0.02), moments), {})  # 25 fps
    assert "note: the 5 moments before each span only 0.2 s of video" in dense
    assert "sample every 0.1 s or more sparsely (--every)" in dense and "(--window)" in dense
    alone = format_summary(Analysis(info, AnalysisParams(window=100), moments[:1]), {})
    assert "note: --window" not in alone and "nothing to compare" in alone  # not "the 1 moments"


def test_options_reach_the_library_unchanged(run_cli, fake_pipeline, tmp_path):
    run_cli(
        "video",
        "clip.mp4",
        "--out",
        tmp_path,
        "--every",
        "0.5",
        "--window",
        "3",
        "--metric",
        "euclidian",
        "--signal",
        "visual",
        "--sensitivity",
        "0.9",
        "--model",
        "named-model",
        "--text-embedder",
        "word-mean",
        "--greedy",
        "-q",
    )
    assert fake_pipeline == [
        {
            "path": "clip.mp4",
            "every": 0.5,
            "window": 3,
            "metric": "euclidian",
            "signal": "visual",
            "sensitivity": 0.9,
            "captioner": "named-model",
            "greedy": True,
            "text_embedder": "word-mean",
            "encoder": "efficientnet-lite0",
        }
    ]


def test_word_mean_alone_is_said_to_miss_most_changes(run_cli, fake_pipeline, tmp_path):
    _, _, err = run_cli(
        "video", "clip.mp4", "--out", tmp_path, "--signal", "text", "--text-embedder", "word-mean"
    )
    assert "note: word-mean alone misses most changes" in err
    # fused: fine
    _, _, err = run_cli("video", "clip.mp4", "--out", tmp_path, "--text-embedder", "word-mean")
    assert "word-mean" not in err


def test_json_prints_the_analysis_and_where_the_files_are(run_cli, fake_pipeline, tmp_path):
    status, out, _ = run_cli("video", "clip.mp4", "--out", tmp_path, "--json")
    assert status == 0
    data = json.loads(out)
    assert [m["time"] for m in data["novel_moments"]] == [3.0]
    assert data["moments"][0]["novelty"] is None
    assert data["outputs"]["analysis.json"] == str(tmp_path / "analysis.json")
    assert json.loads((tmp_path / "analysis.json").read_text())["video"] == data["video"]


def test_quiet_prints_nothing(run_cli, fake_pipeline, tmp_path):
    status, out, err = run_cli("video", "clip.mp4", "--out", tmp_path, "--quiet")
    assert (status, out, err) == (0, "", "")
    status, out, err = run_cli("video", "first-run.mp4", "--out", tmp_path, "--quiet")
    assert (status, out, err) == (0, "", "")


def test_the_first_runs_export_is_said_where_no_bar_shows_it(run_cli, fake_pipeline, tmp_path):
    """Logged to a file, the first run's extra seconds went unexplained."""
    status, _, err = run_cli("video", "first-run.mp4", "--out", tmp_path)
    assert status == 0
    assert err.count("capsight: note: exporting minilm for ONNX Runtime (once)") == 1


def test_default_out_dir_is_named_after_the_video(run_cli, fake_pipeline, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    status, out, _ = run_cli("video", "holiday.mp4")
    assert status == 0
    assert (tmp_path / "out" / "holiday" / "report.html").is_file()


def test_an_out_path_that_is_a_file_is_refused(run_cli, fake_pipeline, tmp_path, one_error_line):
    (tmp_path / "taken").write_text("x")
    status, _, err = run_cli("video", "clip.mp4", "--out", tmp_path / "taken")
    assert status == 2
    one_error_line(err, "not a folder")


@pytest.mark.parametrize("out", ["taken", "taken/report"])
def test_a_bad_out_is_refused_before_the_video_is_analysed(
    run_cli, fake_pipeline, tmp_path, one_error_line, out
):
    # minutes of analysis must not be lost to an --out that was never writable
    (tmp_path / "taken").write_text("x")
    status, _, err = run_cli("video", "clip.mp4", "--out", tmp_path / out)
    assert status == 2
    one_error_line(err, "choose another output folder")
    assert fake_pipeline == []


def test_an_empty_out_is_refused_not_taken_as_the_current_folder(
    run_cli, fake_pipeline, tmp_path, monkeypatch, one_error_line
):
    monkeypatch.chdir(tmp_path)
    status, _, err = run_cli("video", "clip.mp4", "--out", "")
    assert status == 2
    one_error_line(err, "--out needs a folder name")
    assert fake_pipeline == [] and list(tmp_path.iterdir()) == []
    status, _, err = run_cli("video", "clip.mp4", "--out", "-")  # had made a folder named "-"
    assert status == 2
    one_error_line(err, "--out -: the report is five files, so --out names a folder")
    # made a folder of that name
    status, _, err = run_cli("video", "clip.mp4", "--out", "report_out.html")
    assert status == 2
    one_error_line(
        err, "--out report_out.html: names a folder, not a file", "try --out report_out)"
    )
    assert fake_pipeline == [] and list(tmp_path.iterdir()) == []
    from capsight._cli.video import _folder

    assert _folder("report_out.html/") == Path("report_out.html")  # marked a folder: as asked
    assert _folder("runs/v1.0") == Path("runs/v1.0")


# ----------------------------------------------------------------------- the real pipeline

needs_pipeline = pytest.mark.skipif(
    __import__("importlib").util.find_spec("capsight.novelty.pipeline") is None,
    reason="capsight.novelty.pipeline not written yet",
)


@needs_pipeline
@pytest.mark.slow
def test_a_real_video_end_to_end(run_cli, tiny_video, tmp_path):
    status, out, err = run_cli(
        "video", tiny_video, "--out", tmp_path, "--json", "--model", "labels"
    )
    assert status == 0, err
    data = json.loads(out)
    assert data["video"]["width"] == 160 and data["video"]["height"] == 96
    assert [m["time"] for m in data["moments"]] == pytest.approx([0.0, 1.0, 2.0, 3.0], abs=0.11)
    assert all(m["caption"] for m in data["moments"])
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/jpeg;base64,") == len(data["novel_moments"])


@needs_pipeline
def test_an_mp4_cut_off_in_its_last_frames_is_analysed_with_a_note(run_cli, tmp_path):
    """Read up to the cut (as before), but the moments it lost were lost without a word."""
    from importlib import resources

    cut = tmp_path / "cut.mp4"
    cut.write_bytes(resources.files("capsight.data").joinpath("sample.mp4").read_bytes()[:-200])
    status, out, err = run_cli("video", cut, "--out", tmp_path / "out", "--every", "0.1",
                               "--model", "labels")  # fmt: skip
    assert status == 0, err
    assert ("note: the video's frames end before the 26.0 s its file declares (cut off?): "
            "2 moments after 25.7 s could not be sampled") in out  # fmt: skip
    assert "could not be sampled" in (tmp_path / "out" / "report.html").read_text()


@needs_pipeline
@pytest.mark.parametrize(
    "kind,fragment",
    [
        ("empty", "empty"),
        ("text", ""),
        ("random_bytes", ""),
        ("directory", "a folder with no videos in it"),
    ],
)
def test_bad_files_as_video(run_cli, bad_files, one_error_line, kind, fragment):
    status, out, err = run_cli("video", bad_files[kind], "--out", bad_files[kind].parent / "o")
    assert status == 2 and out == ""
    one_error_line(err, bad_files[kind].name, fragment)


@needs_pipeline
@pytest.mark.parametrize(
    "kind,fragment",
    [
        ("truncated", ""),
        ("corrupt", ""),
        ("audio_only", "no video stream"),
    ],
)
def test_broken_videos(run_cli, broken_videos, one_error_line, tmp_path, kind, fragment):
    status, out, err = run_cli("video", broken_videos[kind], "--out", tmp_path)
    assert status == 2 and out == ""
    one_error_line(err, broken_videos[kind].name, fragment)


@needs_pipeline
def test_missing_video(run_cli, tmp_path, one_error_line):
    status, _, err = run_cli("video", tmp_path / "gone.mp4", "--out", tmp_path)
    assert status == 2
    one_error_line(err, "gone.mp4", "no such file")


@needs_pipeline
def test_an_image_is_not_a_video(run_cli, photo_dir, tmp_path, one_error_line):
    status, _, err = run_cli("video", photo_dir / "cat.jpg", "--out", tmp_path)
    assert status == 2
    one_error_line(err, "cat.jpg")


@needs_pipeline
@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["--every", "0"], "every"),
        (["--every", "-1"], "every"),
        (["--window", "0"], "window"),
        (["--metric", "manhattan"], "metric"),
        (["--signal", "smell"], "signal"),
        (["--sensitivity", "2"], "sensitivity"),
    ],
)
def test_bad_parameters(run_cli, tiny_video, tmp_path, one_error_line, argv, fragment):
    status, out, err = run_cli("video", tiny_video, "--out", tmp_path, *argv)
    assert status == 2 and out == ""
    one_error_line(err, fragment)
    assert not (tmp_path / "report.html").exists()


@needs_pipeline
@pytest.mark.slow
def test_the_bundled_demo_video_shows_its_events_and_not_its_nuisances(run_cli, tmp_path):
    from importlib import resources

    sample = resources.files("capsight.data").joinpath("sample.mp4")
    assert sample.is_file() and sample.stat().st_size < 1_000_000
    status, out, err = run_cli("video", sample, "--out", tmp_path, "--json", "--model", "labels")
    assert status == 0, err
    data = json.loads(out)
    assert data["video"]["duration"] == pytest.approx(26.0, abs=0.1)
    found = [m["time"] for m in data["novel_moments"]]
    # scripts/make_sample_video.py: cuts at 5, 10 and 21 s, a dissolve from 14 to 17 s; flicker
    # at 7-8 s and shake at 18.5-19.5 s are nuisances.
    events = [(5.0, 5.0), (10.0, 10.0), (14.0, 17.0), (21.0, 21.0)]
    for start, end in events:
        assert any(start - 1.5 <= t <= end + 1.5 for t in found), (start, found)
    false_alarms = [t for t in found if not any(s - 1.5 <= t <= e + 1.5 for s, e in events)]
    assert len(false_alarms) <= 1, found


@needs_pipeline
@pytest.mark.slow
def test_samples_too_sparse_for_the_shots_are_named_as_the_reason_nothing_was_found(
    run_cli, tmp_path
):
    """The sample's shots last 4-5 s: one sample every 3 s sees a new shot at nearly every
    moment, so none stands out. The summary says so, and what to try, instead of suggesting the
    video is uneventful."""
    from importlib import resources

    sample = resources.files("capsight.data").joinpath("sample.mp4")
    status, out, err = run_cli(
        "video", sample, "--out", tmp_path, "--every", "3", "--model", "labels"
    )
    assert status == 0, err
    assert "no novel moments: every moment differs" in out and "sample more often, --every" in out


def test_a_video_named_twice_runs_once_and_no_folder_takes_the_summarys_name(
    run_cli, fake_pipeline, tmp_path
):
    (tmp_path / "in").mkdir()
    for name in ("summary.csv.mp4", "b.mp4"):
        (tmp_path / "in" / name).write_bytes(b"x")
    status, out, err = run_cli(
        "video",
        tmp_path / "in",
        tmp_path / "in" / "b.mp4",
        tmp_path / "gone.mp4",
        "--out",
        tmp_path / "o",
        "--quiet",
    )
    assert status == 2  # gone.mp4
    assert len(fake_pipeline) == 2  # b.mp4 once, although named twice
    assert (tmp_path / "o" / "summary.csv-2" / "report.html").is_file()
    import csv

    rows = list(csv.DictReader((tmp_path / "o" / "summary.csv").open()))
    assert [Path(r["video"]).name for r in rows] == ["gone.mp4", "b.mp4", "summary.csv.mp4"]
    assert rows[0]["error"].endswith("gone.mp4: no such file")


def test_a_batch_checks_its_root_for_the_summary_only(
    run_cli, fake_pipeline, tmp_path, one_error_line, monkeypatch
):
    """Several videos' reports go into folders of their own: a user's report.html beside them
    is no obstacle, a user's summary.csv is (it was replaced without a word)."""
    root = tmp_path / "o"
    root.mkdir()
    (root / "report.html").write_text("<p>my own page</p>")
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    status, _, _ = run_cli("video", "a.mp4", "b.mp4", "--out", root, "-q")
    assert status == 0 and (root / "a" / "report.html").is_file()
    assert (root / "report.html").read_text() == "<p>my own page</p>"
    # its own summary: a rerun
    status, _, _ = run_cli("video", "a.mp4", "b.mp4", "--out", root, "-q")
    assert status == 0
    (root / "summary.csv").write_text("name,score\n")
    status, _, err = run_cli("video", "a.mp4", "b.mp4", "--out", root, "-q")
    assert status == 2
    one_error_line(err, "summary.csv: not written by capsight, and the report would replace it")
    assert (root / "summary.csv").read_text() == "name,score\n"


def test_one_video_named_twice_is_one_report_in_out_itself(run_cli, fake_pipeline, tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"x")
    status, _, _ = run_cli(
        "video", tmp_path / "a.mp4", f"{tmp_path}/./a.mp4", "--out", tmp_path / "o", "-q"
    )
    assert status == 0 and len(fake_pipeline) == 1
    # no o/a/, no summary
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == sorted(OUTPUT_NAMES)


def test_greedy_with_the_labels_model_is_said_to_do_nothing(run_cli, fake_pipeline, tmp_path):
    _, _, err = run_cli("video", "clip.mp4", "--out", tmp_path, "--model", "labels", "--greedy")
    assert "note: the labels model ignores --greedy" in err
    _, _, err = run_cli("video", "clip.mp4", "--out", tmp_path, "--greedy")
    assert "ignores" not in err


def test_novel_times_keep_hundredths_however_long_the_video():
    from capsight._cli.video import _seconds

    assert [_seconds(t) for t in (3.0, 14.0112, 10000.25, 123456.78)] == [
        "3",
        "14.01",
        "10000.25",
        "123456.78",
    ]


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc")
def test_an_out_the_system_refuses_is_found_before_the_analysis(
    run_cli, fake_pipeline, one_error_line
):
    # /proc passes a permission look (even for root), and writing the report there fails only
    # after the analysis; the CLI tries a file there first.
    status, _, err = run_cli("video", "clip.mp4", "--out", "/proc/capsight-no-such/x")
    assert status == 2
    one_error_line(err, "/proc/capsight-no-such/x", "choose another output folder")
    assert fake_pipeline == []


def test_a_report_file_that_is_a_folder_is_found_before_the_analysis(
    run_cli, fake_pipeline, tmp_path, one_error_line
):
    (tmp_path / "o" / "report.html").mkdir(parents=True)
    status, _, err = run_cli("video", "clip.mp4", "--out", tmp_path / "o")
    assert status == 2
    one_error_line(err, "report.html: is a folder", "choose another output folder")
    assert fake_pipeline == []


def test_the_write_check_leaves_no_folders_behind_when_the_video_fails(
    run_cli, fake_pipeline, tmp_path, one_error_line
):
    status, _, err = run_cli("video", "broken.mp4", "--out", tmp_path / "new" / "deep")
    assert status == 2
    one_error_line(err, "broken.mp4")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option, message", [
    (("--every", "-1"), "--every must be a positive number of seconds"),
    (("--metric", "nope"), "unknown metric 'nope'"),
    (("--window", "0"), "--window must be an integer >= 1"),
    (("--sensitivity", "2"), "--sensitivity must be between 0 and 1"),
])  # fmt: skip
def test_a_bad_option_for_several_videos_is_one_line_before_any_video(
    run_cli, fake_pipeline, tmp_path, one_error_line, option, message
):
    for name in ("a.mp4", "b.mp4", "c.mp4"):
        (tmp_path / name).write_bytes(b"x")
    status, out, err = run_cli("video", *[tmp_path / n for n in ("a.mp4", "b.mp4", "c.mp4")], *option,
                               "--out", tmp_path / "o")  # fmt: skip
    assert status == 2 and out == ""
    one_error_line(err, message)
    assert fake_pipeline == [] and not (tmp_path / "o").exists()


def test_an_unknown_model_stops_a_batch_of_videos_with_one_line(
    run_cli, fake_pipeline, tmp_path, monkeypatch
):
    from capsight.errors import ModelNotFound

    def no_such_model(path, progress=None, **params):
        fake_pipeline.append(path)
        raise ModelNotFound("unknown captioner 'nosuch'")

    monkeypatch.setattr(sys.modules["capsight.novelty.pipeline"], "analyze_video", no_such_model)
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).write_bytes(b"x")
    status, _, err = run_cli("video", tmp_path / "a.mp4", tmp_path / "b.mp4", "--model", "nosuch",
                             "--out", tmp_path / "o")  # fmt: skip
    assert status == 2 and err.count("unknown captioner 'nosuch'") == 1
    assert len(fake_pipeline) == 1  # the second video was not tried


def test_a_summary_that_is_a_folder_is_refused_before_any_video(
    run_cli, fake_pipeline, tmp_path, one_error_line
):
    (tmp_path / "o" / "summary.csv").mkdir(parents=True)
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).write_bytes(b"x")
    status, _, err = run_cli(
        "video", tmp_path / "a.mp4", tmp_path / "b.mp4", "--out", tmp_path / "o"
    )
    assert status == 2
    one_error_line(err, "summary.csv: is a folder")
    assert fake_pipeline == []


def test_a_summary_that_cannot_be_written_is_one_line_not_a_traceback(
    run_cli, fake_pipeline, tmp_path, monkeypatch
):
    # The summary is written in a `finally`; it becoming unwritable during the run (here: a
    # folder in its place) gives an error line and status 2, the reports themselves are kept.
    import capsight.batch.local as runners

    real = runners.analyze_into

    def analyze_into(video, folder, options, progress=None):
        (tmp_path / "o" / "summary.csv").mkdir(parents=True, exist_ok=True)
        return real(video, folder, options, progress)

    monkeypatch.setattr(runners, "analyze_into", analyze_into)
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).write_bytes(b"x")
    status, out, err = run_cli(
        "video", tmp_path / "a.mp4", tmp_path / "b.mp4", "--out", tmp_path / "o"
    )
    assert status == 2
    assert "Traceback" not in err
    assert err.strip().splitlines() == [
        f"capsight: error: {tmp_path / 'o' / 'summary.csv'}: cannot write the summary (Is a directory)"
    ]
    assert out.splitlines()[-1] == "2 of 2 videos analysed; summary.csv not written"
    assert (tmp_path / "o" / "a" / "report.html").is_file()


def test_workers_are_checked_with_one_video_too(run_cli, fake_pipeline, tmp_path, one_error_line):
    status, _, err = run_cli("video", "clip.mp4", "--workers", "0", "--out", tmp_path / "o")
    assert status == 2 and not fake_pipeline
    one_error_line(err, "--workers must be a whole number from 1 to 256, got 0")
    status, _, err = run_cli("video", "clip.mp4", "--ray", " ", "--out", tmp_path / "o")
    assert status == 2 and not fake_pipeline  # had been ignored, exit 0
    one_error_line(err, "--ray needs a Ray address: auto, local or ray://HOST:PORT")
    status, _, err = run_cli("video", "clip.mp4", "--workers", "2", "--out", tmp_path / "o")
    assert status == 0 and "note: --workers and --ray share out several videos" in err


def test_ray_without_ray_installed_is_one_line(
    run_cli, fake_pipeline, tmp_path, one_error_line, monkeypatch
):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).write_bytes(b"x")
    status, _, err = run_cli("video", tmp_path / "a.mp4", tmp_path / "b.mp4", "--ray", "local",
                             "--out", tmp_path / "o")  # fmt: skip
    assert status == 2
    one_error_line(err, "--ray needs Ray and Ray Data: pip install 'capsight[ray]'")
    assert not (tmp_path / "o").exists()  # said before a summary.csv was written


@pytest.mark.slow
def test_several_videos_on_two_workers_each_get_a_folder_and_a_summary_row(
    run_cli, tiny_video, tmp_path, monkeypatch
):
    import csv
    import os
    import shutil

    for name in ("a.mp4", "b.mp4"):
        shutil.copy(tiny_video, tmp_path / name)
    (tmp_path / "c.mp4").write_text("not a video")
    monkeypatch.setattr(os, "cpu_count", lambda: 1)  # more workers than cores: said
    status, out, err = run_cli("video", tmp_path / "a.mp4", tmp_path / "b.mp4", tmp_path / "c.mp4",
                               "--workers", "2", "--out", tmp_path / "o")  # fmt: skip
    assert status == 2  # c.mp4 failed, the others went on
    assert "Traceback" not in err
    assert "note: --workers 2 is more than this machine's 1 cores" in err
    # "[k/3]": the k-th video to finish, on its summary or its error line (which had none)
    assert re.search(r"^capsight: error: \[[123]/3\] .*c\.mp4: not a video", err, re.M)
    assert out.count("report: ") == 2
    headed = re.findall(r"^\[[123]/3\] (.*)$", out, re.M)  # the path named (it had been the name)
    assert sorted(headed) == [str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4")]
    listed = list(csv.DictReader((tmp_path / "o" / "summary.csv").open()))
    assert [Path(r["video"]).name for r in listed] == ["a.mp4", "b.mp4", "c.mp4"]  # as named
    rows = {Path(r["video"]).name: r for r in listed}
    assert rows["a.mp4"]["novel_at_s"] == rows["b.mp4"]["novel_at_s"] and rows["a.mp4"]["report"]
    assert "not a video" in rows["c.mp4"]["error"]
    assert (tmp_path / "o" / "b" / "report.html").is_file()


def test_a_rerun_that_fails_keeps_the_earlier_reports_in_the_summary(
    run_cli, fake_pipeline, tmp_path, monkeypatch
):
    """A rerun into the same --out whose videos all failed had replaced summary.csv with its
    error rows: the earlier reports were still on disk, and nothing listed them."""
    import csv

    for name in ("a.mp4", "b.mp4", "c.mp4"):
        (tmp_path / name).write_bytes(b"x")
    a, b, c = (str(tmp_path / n) for n in ("a.mp4", "b.mp4", "c.mp4"))
    assert run_cli("video", a, b, "--out", tmp_path / "o")[0] == 0
    pipeline = sys.modules["capsight.novelty.pipeline"]
    works = pipeline.analyze_video

    def fails_on_a(path, progress=None, **params):
        if str(path) == a:
            from capsight.errors import VideoOpenError

            raise VideoOpenError(f"{path}: not a video FFmpeg can read")
        return works(path, progress, **params)

    monkeypatch.setattr(pipeline, "analyze_video", fails_on_a)
    status, out, err = run_cli("video", a, c, "--out", tmp_path / "o")
    assert status == 2 and out.splitlines()[-1].startswith("1 of 2 videos analysed")
    assert "summary.csv also keeps 2 rows of an earlier run whose reports are still there" in err
    rows = {r["video"]: r for r in csv.DictReader((tmp_path / "o" / "summary.csv").open())}
    assert list(rows) == [a, c, b]  # this run's, then the earlier run's
    assert (
        rows[a]["report"] == str(tmp_path / "o" / "a" / "report.html")
        and rows[a]["novel_at_s"] == "3"
    )
    assert (
        rows[a]["error"].startswith("this run: ")
        and "(the report is an earlier run's)" in rows[a]["error"]
    )
    assert rows[b]["error"] == "" and rows[c]["error"] == ""
    (tmp_path / "o" / "b" / "report.html").unlink()  # a report gone since: its row goes too
    run_cli("video", a, c, "--out", tmp_path / "o")
    assert b not in {r["video"] for r in csv.DictReader((tmp_path / "o" / "summary.csv").open())}


def test_a_rerun_puts_each_video_back_in_its_own_folder_and_keeps_the_others(
    run_cli, fake_pipeline, tmp_path
):
    """x/clip.mp4 and y/clip.mp4 went into o/clip and o/clip-2; a rerun of y/clip.mp4 and z.mp4
    wrote y's report into o/clip, and the summary had kept x's row pointing at it. Now y goes
    back into its own o/clip-2, and x's report and row stay."""
    import csv

    for name in ("x/clip.mp4", "y/clip.mp4", "z.mp4"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    x, y, z = (str(tmp_path / n) for n in ("x/clip.mp4", "y/clip.mp4", "z.mp4"))
    assert run_cli("video", x, y, "--out", tmp_path / "o")[0] == 0
    assert run_cli("video", f"{tmp_path}/y/../y/clip.mp4", z, "--out", tmp_path / "o")[0] == 0
    rows = [(r["video"], Path(r["report"]).parent.name)
            for r in csv.DictReader((tmp_path / "o" / "summary.csv").open())]  # fmt: skip
    # y once, as named
    assert sorted(rows) == sorted([(x, "clip"), (f"{tmp_path}/y/../y/clip.mp4", "clip-2"),
                                   (z, "z")])  # fmt: skip


def test_each_video_of_a_batch_run_here_gets_a_bar_that_moves(monkeypatch, capsys):
    """One bar had served every video: past the first, its count (already at the end) never
    rose again, and the bars of videos 2, 3, ... stood at 0%."""
    import argparse

    from capsight._cli.progress_bar import ProgressBar
    from capsight._cli.video import _VideoBars

    monkeypatch.setattr(ProgressBar, "wanted", staticmethod(lambda quiet, file=None: True))
    args = argparse.Namespace(quiet=False, json=False)
    bars = _VideoBars(args, ["a.mp4", "b.mp4"])
    for video in (0, 1):
        bars(video, 0.0, "opening the video")
        bars(video, 0.5, "captioning")
        assert bars.bar._bar.n == 500, video  # tqdm's count: half of the bar's 1000 steps
        bars(video, 1.0, "writing report")
    bars.close()
    assert "[1/2] a.mp4" in capsys.readouterr().out


def test_a_rerun_that_stops_at_once_or_runs_elsewhere_keeps_the_summary(
    run_cli, fake_pipeline, tmp_path, monkeypatch
):
    """A rerun with a mistyped --model (every video fails alike, so the batch stops) had left
    summary.csv with its header alone, and a rerun from another folder had dropped the rows of
    the first run, whose paths were relative to where it ran."""
    import csv

    (tmp_path / "src").mkdir()
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / "src" / name).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    assert run_cli("video", "src", "--out", "o")[0] == 0
    summary = tmp_path / "o" / "summary.csv"
    first = list(csv.DictReader(summary.open()))
    assert [r["video"] for r in first] == [str(tmp_path / "src" / n) for n in ("a.mp4", "b.mp4")]
    assert first[0]["report"] == str(tmp_path / "o" / "a" / "report.html")  # absolute paths
    pipeline = sys.modules["capsight.novelty.pipeline"]
    works = pipeline.analyze_video

    def unknown_model(path, progress=None, **params):
        if params.get("captioner") == "show-atend-tell":
            from capsight.errors import ModelNotFound

            raise ModelNotFound("unknown captioner 'show-atend-tell'")
        return works(path, progress, **params)

    monkeypatch.setattr(pipeline, "analyze_video", unknown_model)
    status, _, err = run_cli(
        "video", "src/b.mp4", "src/a.mp4", "--out", "o", "--model", "show-atend-tell"
    )
    assert status == 2 and "unknown captioner" in err
    assert list(csv.DictReader(summary.open())) == first
    monkeypatch.chdir(tmp_path / "src")  # elsewhere: its rows found all the same
    assert run_cli("video", "b.mp4", "a.mp4", "--out", tmp_path / "o")[0] == 0
    assert [r["video"] for r in csv.DictReader(summary.open())] == [
        r["video"] for r in reversed(first)
    ]


def test_a_folder_holds_the_videos_of_camcorders_and_older_phones(tmp_path):
    """.MTS, .m2ts and .3gp files in a folder were passed over without a word."""
    from capsight._cli.video import expand_video_args

    names = ["a.mp4", "GOPR0001.MP4", "00001.MTS", "00002.m2ts", "phone.3gp", "notes.txt"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    videos, problems = expand_video_args([str(tmp_path)])
    assert sorted(Path(v).name for v in videos) == sorted(names[:-1]) and problems == []


def test_a_name_not_in_utf8_is_written_escaped_not_a_traceback(
    fake_pipeline, tmp_path, capsysbinary
):
    """A name from an old Windows share, "b\\xe9d.mp4", reaches Python as a lone surrogate;
    writing the report and the summary raised UnicodeEncodeError after the whole analysis, and
    the batch stopped at its first video."""
    import os

    archive = tmp_path / "archive"
    archive.mkdir()
    for name in (b"b\xe9d.mp4", b"c.mp4"):
        (archive / os.fsdecode(name)).write_bytes(b"x")
    from capsight._cli.main import main

    status = main(["video", str(archive), "--out", str(tmp_path / "o")])
    out, err = capsysbinary.readouterr()
    assert status == 0, err
    assert b"[1/2] " + bytes(archive) + b"/b\xe9d.mp4\n" in out  # the name's own bytes
    assert "b\\udce9d.mp4" in (tmp_path / "o" / "summary.csv").read_text(encoding="utf-8")
    assert (tmp_path / "o" / "c" / "report.html").is_file()
    report = next((tmp_path / "o").glob("b*d/report.html")).read_text(encoding="utf-8")
    assert "b\\udce9d.mp4" in report
