"""capsight.batch: many videos, each into a folder of its own, in this process, on a pool of
processes, or on Ray; the same outcomes whichever runs them."""

from __future__ import annotations

import inspect
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from capsight.batch import _CHECKED_DEFAULTS, _OPTIONS, analyze_videos, output_folders
from capsight.errors import InvalidParameter, MissingDependency, ModelNotFound


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two 3 s clips with a cut (the cat, then the coffee cup; the other way round) and a text
    file named like a video."""
    from skimage import data

    from capsight.io.synthetic_video import write_video

    folder = tmp_path_factory.mktemp("clips")
    cat = np.asarray(Image.fromarray(data.chelsea()).resize((128, 96)))
    cup = np.asarray(Image.fromarray(data.coffee()).resize((128, 96)))
    write_video(folder / "cat-cup.mp4", [cat] * 15 + [cup] * 15, fps=10)
    write_video(folder / "cup-cat.mp4", [cup] * 15 + [cat] * 15, fps=10)
    (folder / "notes.mp4").write_text("not a video")
    return [folder / "cat-cup.mp4", folder / "notes.mp4", folder / "cup-cat.mp4"]


OPTIONS = {"every": 0.5, "window": 3, "thumbnail_size": 0}


def test_the_options_are_analyze_videos_and_checked_before_any_video(tmp_path):
    from capsight.novelty.pipeline import analyze_video

    params = inspect.signature(analyze_video).parameters
    assert _OPTIONS == set(params) - {"path", "progress", "partial"}  # (a batch keeps none)
    assert _CHECKED_DEFAULTS == {k: params[k].default for k in _CHECKED_DEFAULTS}
    out = tmp_path / "out"
    for kwargs, message in (
        ({"workers": 0}, "workers must be a whole number from 1 to 256, got 0"),
        ({"workers": 1.5}, "workers must be a whole number"),
        ({"workers": True}, "workers must be a whole number"),
        ({"ray": " "}, "ray must be a Ray address"),
        ({"evry": 1.0}, "analyze_videos has no option 'evry'"),
        ({"every": -1.0}, "every must be"),
        ({"metric": "manhattan"}, "metric"),
        ({"thumbnail_size": -3}, "thumbnail size must be at least 16 pixels"),
        # analyze_video's callback of two arguments had failed mid-run with a TypeError
        ({"progress": lambda fraction, message: None}, r"progress must be a function of \(i, "),
        ({"progress": 3}, "progress must be a function of"),
    ):
        with pytest.raises(InvalidParameter, match=message):
            analyze_videos(["nowhere.mp4"], out, **kwargs)  # raised at the call, not later
    for videos, where, message in ((None, out, "videos must be paths, got None"),
                                   ([None], out, "videos must be paths, got None"),
                                   (["a.mp4"], None, "out must be a folder path, got None")):  # fmt: skip
        with pytest.raises(InvalidParameter, match=message):  # (a TypeError, or a video "None")
            analyze_videos(videos, where)
    assert not out.exists()


def test_one_path_is_one_video_and_a_video_named_twice_runs_once(tmp_path, monkeypatch):
    """A str had been taken for its characters (57 "videos" for one path); a video named as a
    str and as a Path ran twice, into clip/ and clip-2/."""
    import capsight.batch.local as local
    from capsight.batch import VideoOutcome

    ran = []
    monkeypatch.setattr(
        local, "analyze_into", lambda v, f, o, p=None: ran.append(v) or VideoOutcome(v, str(f))
    )
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x")
    assert [o.video for o in analyze_videos(str(clip), tmp_path / "o")] == [str(clip)]
    ran.clear()
    list(analyze_videos([str(clip), clip, f"{tmp_path}/./clip.mp4"], tmp_path / "o"))
    assert ran == [str(clip)]


def test_folders_are_named_after_the_videos_unique_and_never_the_summarys():
    videos = ["a/clip.mp4", "b/clip.mp4", "summary.csv.mp4", "c/clip.mov"]
    names = [f.name for f in output_folders(videos, "root")]
    assert names == ["clip", "clip-2", "summary.csv-2", "clip-3"]
    # "...mp4" and "..mp4" have the stems ".." and ".": their reports went above --out, and
    # into it; names differing in case are one folder on macOS and Windows
    names = [f.name for f in output_folders(["...mp4", "..mp4", "A/Clip.mp4", "b/clip.mp4"], "r")]
    assert names == ["video", "video-2", "Clip", "clip-2"]


def test_a_video_keeps_its_folder_from_run_to_run_and_never_takes_anothers(tmp_path):
    """Numbered in the order named, a rerun with fewer videos had written b/clip.mp4's report
    over a/clip.mp4's, in the folder a/clip.mp4's had been given."""
    from capsight.batch.outcome import SOURCE_KEY

    root = tmp_path / "out"
    a, b, c, d = (str(tmp_path / d / "clip.mp4") for d in "abcd")

    def report(name: str, extra: dict) -> None:
        (root / name).mkdir(parents=True)
        saved = {"video": {"path": "clip.mp4"}, "extra": extra}  # the path as typed
        (root / name / "analysis.json").write_text(json.dumps(saved))

    report("clip", {SOURCE_KEY: a})
    report("clip-2", {SOURCE_KEY: b})
    names = [f.name for f in output_folders([b, c], root)]
    assert names == ["clip-2", "clip-3"]  # b's own; c takes neither a's nor b's
    assert [f.name for f in output_folders([c, b, a], root)] == ["clip-3", "clip-2", "clip"]
    (root / "clip-3").mkdir()  # a folder with no report (a run cut short): free to use
    assert [f.name for f in output_folders([c], root)] == ["clip-3"]
    # A report that does not say whose it is (before 2026-12-07: "clip.mp4" as typed, a file
    # of wherever that run started) is never taken; one found past a gap in the numbers is.
    report("clip-4", {})
    report("clip-6", {SOURCE_KEY: d})
    assert [f.name for f in output_folders([d, c], root)] == ["clip-6", "clip-3"]
    (root / "clip-3").rmdir()
    assert [f.name for f in output_folders(["e/clip.mp4", "f/clip.mp4"], root)] == [
        "clip-3",
        "clip-5",
    ]


def test_a_batch_records_whose_folder_it_is(tmp_path, monkeypatch):
    """The analysis a batch writes says the video's real path, which output_folders reads."""
    import capsight.novelty.pipeline as pipeline
    from capsight.batch.outcome import SOURCE_KEY, analyze_into
    from capsight.novelty.analysis import Analysis, AnalysisParams, VideoInfo

    monkeypatch.setattr(pipeline, "analyze_video", lambda path, **_: Analysis(
        VideoInfo(str(path), 1.0, 25.0, 64, 48), AnalysisParams(), [], {}))  # fmt: skip
    monkeypatch.chdir(tmp_path)
    (tmp_path / "clip.mp4").write_bytes(b"x")
    outcome = analyze_into("clip.mp4", tmp_path / "out" / "clip", {})
    assert outcome.ok and outcome.analysis["extra"][SOURCE_KEY] == str(tmp_path / "clip.mp4")
    assert output_folders([str(tmp_path / "clip.mp4")], tmp_path / "out")[0].name == "clip"


@pytest.mark.slow
def test_in_process_and_on_a_pool_the_outcomes_are_the_same(clips, tmp_path):
    heard = []
    here = list(
        analyze_videos(clips, tmp_path / "here", progress=lambda *a: heard.append(a), **OPTIONS)
    )
    assert [o.ok for o in here] == [True, False, True]
    assert "notes.mp4: not a video" in str(here[1].error)
    assert {i for i, _, _ in heard} >= {0, 2} and heard[-1][1:] == (1.0, "writing report")
    for outcome in (here[0], here[2]):
        assert outcome.novel_at_s == (1.5,)  # the cut
        saved = json.loads(
            (tmp_path / "here" / outcome.folder.rsplit("/", 1)[-1] / "analysis.json").read_text()
        )
        assert saved["moments"] == outcome.analysis["moments"]
        assert outcome.report.endswith("report.html")
    pooled = sorted(
        analyze_videos(clips, tmp_path / "pool", workers=2, **OPTIONS), key=lambda o: o.video
    )
    assert [o.video for o in pooled] == sorted(o.video for o in here)
    by_video = {o.video: o for o in here}
    for outcome in pooled:
        twin = by_video[outcome.video]
        assert outcome.ok == twin.ok and outcome.novel_at_s == twin.novel_at_s
        assert (outcome.analysis or {}).get("moments") == (twin.analysis or {}).get("moments")
        assert str(outcome.error) == str(twin.error)
    assert sorted(p.name for p in (tmp_path / "pool").iterdir()) == ["cat-cup", "cup-cat"]


@pytest.mark.slow
def test_an_unknown_model_stops_the_batch_at_its_first_video(clips, tmp_path):
    outcomes = analyze_videos(clips, tmp_path / "o", captioner="no-such-captioner", **OPTIONS)
    with pytest.raises(ModelNotFound, match="no-such-captioner"):
        next(outcomes)
    assert not (tmp_path / "o").exists()  # the folder the batch made for it (a typo had left it)
    (tmp_path / "mine").mkdir()  # one the caller had made stays
    with pytest.raises(ModelNotFound):
        next(analyze_videos(clips, tmp_path / "mine", captioner="no-such-captioner", **OPTIONS))
    assert (tmp_path / "mine").is_dir()


def test_ray_that_is_not_installed_is_named(monkeypatch, tmp_path, clips):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    with pytest.raises(MissingDependency, match=r"pip install 'capsight\[ray\]'"):
        next(analyze_videos(clips, tmp_path / "o", ray="local", **OPTIONS))


@pytest.mark.slow
def test_on_ray_the_outcomes_are_those_of_a_run_here(clips, tmp_path):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        outcomes = {
            o.video: o
            for o in analyze_videos(clips, tmp_path / "ray", workers=2, ray="local", **OPTIONS)
        }
    finally:
        ray.shutdown()
    assert len(outcomes) == 3
    assert outcomes[str(clips[0])].novel_at_s == (1.5,) and outcomes[str(clips[2])].novel_at_s == (
        1.5,
    )
    assert "notes.mp4: not a video" in str(outcomes[str(clips[1])].error)
    assert (tmp_path / "ray" / "cup-cat" / "report.html").is_file()


@pytest.mark.slow
def test_a_worker_that_dies_sends_its_videos_to_a_fresh_pool(clips, tmp_path):
    """multiprocessing.Pool had waited for a killed worker's video for ever; then one dead
    worker failed every video not yet done, the other worker's included."""
    import multiprocessing
    import os
    import signal
    import threading

    def kill_the_first_worker() -> None:
        while not (children := multiprocessing.active_children()):
            threading.Event().wait(0.05)
        os.kill(children[0].pid, signal.SIGKILL)  # while it imports torch or analyses

    killer = threading.Thread(target=kill_the_first_worker, daemon=True)
    killer.start()
    outcomes = list(analyze_videos([clips[0], clips[2]], tmp_path / "o", workers=2, **OPTIONS))
    killer.join(timeout=60)
    assert [o.ok for o in outcomes] == [True, True] and all(
        o.novel_at_s == (1.5,) for o in outcomes
    )


@pytest.mark.slow
def test_a_video_whose_worker_dies_every_time_fails_with_a_line(clips, tmp_path):
    import multiprocessing
    import os
    import signal
    import threading

    done = threading.Event()

    def kill_every_worker() -> None:  # each as it starts: no video can finish
        while not done.wait(0.02):
            for child in multiprocessing.active_children():
                os.kill(child.pid, signal.SIGKILL)

    killer = threading.Thread(target=kill_every_worker, daemon=True)
    killer.start()
    try:
        outcomes = list(analyze_videos([clips[0], clips[2]], tmp_path / "o", workers=2, **OPTIONS))
    finally:
        done.set()
        killer.join(timeout=60)
    assert [o.ok for o in outcomes] == [False, False]
    # (two broken pools, then a pool each: only a video whose own worker dies fails)
    assert all(
        "not analysed: the worker process analysing it alone died" in str(o.error) for o in outcomes
    )
    assert "if __name__ == '__main__':" in str(outcomes[0].error)


@pytest.mark.slow
@pytest.mark.skipif(
    not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists(),
    reason="needs Linux's /proc with its children lists",
)
def test_only_the_video_that_kills_its_worker_every_time_fails(clips, tmp_path):
    """Among good videos, one whose worker dies whenever it opens it (here: killed by this
    test as soon as the worker, or its frame reader, holds the file open): two broken pools,
    then a pool each, and the good ones are analysed."""
    import multiprocessing
    import signal
    import threading

    from capsight.io.synthetic_video import write_video

    crasher = tmp_path / "crasher.mp4"  # long enough to be seen open
    write_video(crasher, [np.full((96, 128, 3), (200, 30, 30), np.uint8)] * 600, fps=10)
    done, kills = threading.Event(), []

    def opens_crasher(pid: int) -> bool:  # it, or the frame reader it starts (a child of its)
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(crasher)
                   for fd in os.listdir(f"/proc/{pid}/fd")):  # fmt: skip
                return True
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:  # (a process that ended meanwhile)
            return False
        return any(opens_crasher(int(child)) for child in children)

    def kill_whoever_opens_it() -> None:
        while not done.wait(0.005):
            for worker in multiprocessing.active_children():
                if opens_crasher(worker.pid):
                    os.kill(worker.pid, signal.SIGKILL)
                    kills.append(worker.pid)

    killer = threading.Thread(target=kill_whoever_opens_it, daemon=True)
    killer.start()
    videos = [clips[0], crasher, clips[2]]
    try:
        outcomes = {Path(o.video).name: o for o in
                    analyze_videos(videos, tmp_path / "o", workers=2, **OPTIONS)}  # fmt: skip
    finally:
        done.set()
        killer.join(timeout=60)
    assert len(kills) >= 3  # in each of the two shared pools, then in its own
    assert outcomes["cat-cup.mp4"].novel_at_s == outcomes["cup-cat.mp4"].novel_at_s == (1.5,)
    assert "crasher.mp4: not analysed: the worker process analysing it alone died" in str(
        outcomes["crasher.mp4"].error
    )


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_a_ray_address_where_nothing_listens_fails_at_once(clips, tmp_path, scheme, monkeypatch):
    """Ray itself had retried a refused host:port for minutes."""
    pytest.importorskip("ray.data")
    import socket

    monkeypatch.delenv("RAY_grpc_enable_http_proxy", raising=False)

    from capsight.errors import CapsightError

    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"{scheme}127.0.0.1:{port}"
    with pytest.raises(CapsightError, match=rf"^--ray {address}: cannot reach a Ray cluster "
                       rf"\(nothing listens at 127.0.0.1:{port}: connection refused\)"):  # fmt: skip
        next(analyze_videos(clips, tmp_path / "o", ray=address, **OPTIONS))
    assert not (tmp_path / "o").exists()


def test_only_a_host_and_port_is_tried_before_ray_is(monkeypatch):
    import socket

    from capsight.batch.ray_runner import _no_answer

    def no_network(*args, **kwargs):
        raise AssertionError("no connection is tried for these")

    monkeypatch.setattr(socket, "create_connection", no_network)
    assert _no_answer("auto") is None and _no_answer("local") is None
    assert _no_answer("ray://head") is None  # (Ray's own error names what is missing)
    assert _no_answer("head:70000") == "70000 is no port number: they go from 0 to 65535"
    assert _no_answer("head:²") is None  # left to Ray, not a ValueError from int()


PROXY_VARIABLES = ("grpc_proxy", "https_proxy", "http_proxy", "no_grpc_proxy", "no_proxy")


def test_an_address_behind_a_proxy_is_left_to_ray(monkeypatch):
    """Where Ray lets gRPC use a proxy, it reaches the cluster through it: a direct connection
    failing says nothing. Ray turns gRPC's proxies off unless RAY_grpc_enable_http_proxy is set,
    so a proxy variable alone (common on company networks) still gets the quick check."""
    import socket

    from capsight.batch.ray_runner import _no_answer

    def no_network(*args, **kwargs):
        raise ConnectionRefusedError

    monkeypatch.setattr(socket, "create_connection", no_network)
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("RAY_grpc_enable_http_proxy", raising=False)
    assert "connection refused" in _no_answer("ray://head:10001")
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    assert "connection refused" in _no_answer("ray://head:10001")  # Ray ignores it
    monkeypatch.setenv("RAY_grpc_enable_http_proxy", "1")
    assert _no_answer("ray://head:10001") is None
    monkeypatch.setenv("no_proxy", "localhost,.internal")
    assert _no_answer("ray://head:10001") is None
    assert "connection refused" in _no_answer("ray://head.internal:10001")  # not proxied
    monkeypatch.setenv("no_grpc_proxy", "head")  # gRPC's own list comes first
    assert "connection refused" in _no_answer("ray://head:10001")


@pytest.mark.slow
def test_ray_with_no_cluster_to_join_is_one_line(clips, tmp_path, monkeypatch):
    pytest.importorskip("ray.data")
    from capsight.errors import CapsightError

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(
        CapsightError, match=r"^--ray auto: cannot reach a Ray cluster \(.*\); start one"
    ):
        next(analyze_videos(clips, tmp_path / "o", ray="auto", **OPTIONS))


def test_an_outcome_reads_short_and_turns_into_json():
    """Its repr printed the whole analysis (thousands of characters), and it had no to_dict."""
    from capsight.batch import VideoOutcome
    from capsight.errors import VideoOpenError

    done = VideoOutcome("a.mp4", "out/a", {"moments": [{"time": 1.0}] * 500},
                        {"report.html": "out/a/report.html"})  # fmt: skip
    assert len(repr(done)) < 200 and "a.mp4" in repr(done)
    assert json.loads(json.dumps(done.to_dict()))["outputs"] == {"report.html": "out/a/report.html"}
    failed = VideoOutcome("b.mp4", "out/b", error=VideoOpenError("b.mp4: not a video"))
    assert failed.to_dict() == {"video": "b.mp4", "folder": "out/b", "error": "b.mp4: not a video"}
