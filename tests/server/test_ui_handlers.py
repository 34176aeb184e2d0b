"""The web page's handlers, called as Gradio calls them: raw uploads in, one-line errors out.

Bad photos and videos are refused in the API's words and name the user's file; a finished job
renders links that work behind the page's login, the captioner that really ran, and why no
moment is novel when none is.
"""

from __future__ import annotations

import re

import pytest
from PIL import Image

gr = pytest.importorskip("gradio")

from capsight.server.classify_tab import classify_photo  # noqa: E402
from capsight.server.ui import CapsightUI, quiet_reason  # noqa: E402
from capsight.server.ui_inputs import photo_from_upload  # noqa: E402


@pytest.fixture(autouse=True)
def uploads_in_tmp(tmp_path, monkeypatch):
    """This test's folder stands for Gradio's upload folder: its files count as uploads."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path))


def upload(path, name):
    return {"path": str(path), "orig_name": name, "meta": {"_type": "gradio.FileData"}}


def test_a_payload_naming_a_file_that_was_not_uploaded_is_refused_unread(tmp_path, monkeypatch):
    secret = tmp_path / "secret.jpg"
    secret.write_text("not for clients")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    for path in (secret, "/etc/hostname", tmp_path / "uploads" / ".." / "secret.jpg"):
        message = error_text(
            lambda p=path: photo_from_upload({"path": str(p), "orig_name": "x.jpg"})
        )
        assert message == "x.jpg: not an upload from this page; upload the file again"


def error_text(call) -> str:
    with pytest.raises(gr.Error) as caught:
        call()
    assert caught.value.print_exception is False  # a user's mistake: no traceback in the log
    return str(caught.value.message)


def test_photo_uploads_that_are_not_photos_get_one_line_naming_the_users_file(tmp_path, cat_jpeg):
    text = tmp_path / "tmpx1.jpg"
    text.write_text("just some notes\n")
    empty = tmp_path / "tmpx2.jpg"
    empty.write_bytes(b"")
    message = error_text(lambda: photo_from_upload(upload(text, "notes.jpg")))
    assert message.startswith("notes.jpg: not an image (it looks like text)")
    assert str(tmp_path) not in message and "\n" not in message
    assert (
        error_text(lambda: photo_from_upload(upload(empty, "empty.jpg")))
        == "empty.jpg: file is empty"
    )
    assert error_text(lambda: photo_from_upload(None)) == "Upload or paste a photo first."
    truncated = tmp_path / "tmpx3.jpg"
    truncated.write_bytes(cat_jpeg[: len(cat_jpeg) // 3])
    assert error_text(lambda: photo_from_upload(upload(truncated, "cut.jpg"))).startswith(
        "cut.jpg: "
    )
    photo = tmp_path / "tmpx4.jpg"
    photo.write_bytes(cat_jpeg)
    assert photo_from_upload(upload(photo, "cat.jpg")).mode == "RGB"
    assert photo_from_upload(str(photo)).size == photo_from_upload(upload(photo, "cat.jpg")).size


def test_classify_tab_turns_the_apis_class_limit_into_a_message(tmp_path, cat_jpeg):
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(cat_jpeg)
    many = ", ".join(f"class {i}" for i in range(5001))
    message = error_text(
        lambda: classify_photo(upload(photo, "cat.jpg"), "type your own", many, "")
    )
    assert "at most 5000 classes" in message
    text = tmp_path / "t.jpg"
    text.write_text("hello")
    message = error_text(lambda: classify_photo(upload(text, "a.jpg"), "type your own", "cat", ""))
    assert message.startswith("a.jpg: not an image")
    # a blank photo's scores are said to mean nothing, as the API says (an audit, 2026-12-08)
    from PIL import Image

    Image.new("RGB", (300, 200), "white").save(tmp_path / "white.png")
    _, notes = classify_photo(
        upload(tmp_path / "white.png", "w.png"), "type your own", "cat, dog", ""
    )
    assert notes[0].startswith("a blank image (one flat colour)")


def test_video_page_refuses_non_videos_and_renders_a_finished_job(
    make_app, started, tiny_video, tmp_path
):
    app = make_app()
    fake = tmp_path / "tmpvid.mp4"
    fake.write_text("not a video at all")
    for _ in started(app):
        ui = CapsightUI(app)
        quiet = lambda *a, **k: None  # noqa: E731 (stands in for gr.Progress)
        args = (1.0, 3, "cosine", "fused", 0.5, "default")
        with pytest.raises(gr.Error) as caught:
            ui.analyze({"video": upload(fake, "holiday.mp4")}, *args, quiet)
        assert caught.value.message.startswith("holiday.mp4: not a video (it looks like text)")
        with pytest.raises(gr.Error, match="Upload a video first."):
            ui.analyze(None, *args, quiet)
        clip = tmp_path / "upload.mp4"
        clip.write_bytes(tiny_video.read_bytes())
        for typed, message in (((0.1, 3), "Sample every (s) must be between 0.25 and 10, got 0.1"),
                               ((1.0, 2.5), "Window must be a whole number between 1 and 30, got 2.5"),
                               ((1.0, None), "Window must be a whole number between 1 and 30; type")):  # fmt: skip
            with pytest.raises(gr.Error) as caught:
                ui.analyze({"video": upload(clip, "my clip.mp4")}, *typed, *args[2:], quiet)
            assert caught.value.message.startswith(message)

        summary, plot, gallery, table, downloads, times, player = ui.analyze(
            {"video": upload(clip, "my clip.mp4"), "subtitles": None}, *args, quiet
        )
        rows = table.value["data"]
        # the fused signal's unit
        assert table.value["headers"][2] == "novelty (x a typical moment)"
        assert "novel moments" in summary and "<code>scripted</code>" in summary
        assert "/v1/jobs/" not in summary  # a header-key route: it 401s behind the page login
        assert 'href="/ui/gradio_api/file=' in summary and "report.html" in summary
        assert (
            "(kept 72 h after the run: bookmark it to come back after leaving this page)" in summary
        )
        for name in ("report.html", "novelty.png", "moments.csv", "captions.vtt", "analysis.json"):
            assert f'download="my_clip-{name}"' in downloads  # saved under the video's name
        assert plot and gallery.value and gallery.visible and times and len(rows) >= 3
        # the CLI's and the report's clock
        assert [row[0] for row in rows[:2]] == ["00:00", "00:01"]
        shown = [row[2] for row in table.value["metadata"]["display_value"]]
        assert shown[0] == "" and all(re.fullmatch(r"\d+\.\d{3}", v) for v in shown[1:]), shown
        assert all(isinstance(row[2], float) for row in rows[1:])  # sorted as numbers, not text
        assert player.subtitles is not None  # the captions play along as the video's subtitles
        # No novel moment (one sample): no empty gallery under "choose one to play from there"
        summary, _, gallery, *_ = ui.analyze(
            {"video": upload(clip, "my clip.mp4"), "subtitles": None}, 10.0, *args[1:], quiet
        )
        assert "No novel moment:" in summary and gallery.value == [] and not gallery.visible


def test_a_job_without_novel_moments_says_why():
    from capsight.novelty.analysis import Analysis, AnalysisParams, Moment, VideoInfo

    info = VideoInfo(path="v.mp4", duration=3.0, fps=10.0, width=64, height=48)
    moments = [Moment(time=float(t), caption="a dog", novelty=None if t == 0 else 0.1)
               for t in range(3)]  # fmt: skip
    reason = quiet_reason(Analysis(info, AnalysisParams(sensitivity=0.3), moments).to_dict())
    assert "sensitivity 0.3" in reason
    assert "the Sensitivity slider" in reason and "CLI" not in reason  # the page's own words
    assert quiet_reason({"moments": "garbled"}) == "no moment stood out from the ones before it"
    from capsight.server.ui import analysis_notes

    assert analysis_notes({"moments": "garbled"}) == []
    short = Analysis(info, AnalysisParams(every=0.5), moments[:2]).to_dict()  # 3 s: 0 .. 2.5 s due
    (note,) = analysis_notes(short)
    assert "3 moments after 1.0 s could not be sampled" in note
    quick = [Moment(t / 4, "a dog", 0.1) for t in range(12)]  # 3 s, every 0.25 s at 10 fps
    narrow = Analysis(info, AnalysisParams(every=0.25, window=1), quick)  # the sliders' least
    (note,) = analysis_notes(narrow.to_dict())
    assert "the moment before each spans only 0.25 s" in note and "the Window slider" in note


def test_the_page_never_reads_a_server_file_a_client_names(
    make_app, started, cat_jpeg, tmp_path, monkeypatch
):
    """Through Gradio's own route, as a client would try it: a file payload or a bare path."""
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "uploads"))
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(cat_jpeg)  # a readable photo that nobody uploaded
    app = make_app(ui=True)
    for client in started(app):
        for payload in (
            {"path": str(secret), "meta": {"_type": "gradio.FileData"}},
            {"path": str(secret), "orig_name": "x.jpg"},
        ):
            r = client.post(
                "/ui/gradio_api/call/describe",
                json={"data": [payload, "labels", "labels", "beam", 0]},
            )
            assert r.status_code == 200, r.text
            event = r.json()["event_id"]
            with client.stream("GET", f"/ui/gradio_api/call/describe/{event}") as s:
                body = "".join(s.iter_text())
            assert "Egyptian cat" not in body  # refused, in card A (no traceback, no photo read)
            assert "event: error" in body or "not an upload from this page" in body
        blocked = client.get(f"/ui/gradio_api/file={tmp_path / 'jobs' / 'jobs.sqlite3'}")
        assert blocked.status_code == 404  # the job table is in the job folder the page serves


def test_the_gates_read_the_path_the_routes_see_behind_a_proxys_prefix():
    """uvicorn --root-path puts the prefix in scope["path"]: the gates matched nothing."""
    from capsight.server.deps import route_path

    assert (
        route_path({"path": "/app/ui/gradio_api/file=/x", "root_path": "/app"})
        == "/ui/gradio_api/file=/x"
    )
    assert route_path({"path": "/v1/videos", "root_path": ""}) == "/v1/videos"
    assert route_path({"path": "/v1/videos"}) == "/v1/videos"


def test_the_page_serves_a_jobs_outputs_only_and_takes_small_bodies(make_app, started, tmp_path):
    """Gradio's file route served every file of the job folder (a job's uploaded video too),
    and its JSON routes parsed bodies up to --max-upload-mb before any login check."""
    job = tmp_path / "jobs" / ("a" * 32)
    for name in ("input.mp4", "out/report.html", "thumbs/0.jpg", "notes.txt"):
        (job / name).parent.mkdir(parents=True, exist_ok=True)
        (job / name).write_bytes(b"x")
    for client in started(make_app(ui=True)):

        def status(path, client=client):
            return client.get(f"/ui/gradio_api/file={path}").status_code

        assert status(job / "out" / "report.html") == status(job / "thumbs" / "0.jpg") == 200
        for path in (job / "input.mp4", job / "notes.txt", job, f"{job}/out/%2e%2e/input.mp4"):
            assert status(path) == 404, path
        # Gradio's older route
        assert client.get(f"/ui/gradio_api/file/{job}/input.mp4").status_code == 404
        assert client.get(f"/ui/gradio_api/file/{job}/out/report.html").status_code == 200
        assert status("/tmp/a%00b") == 404  # realpath refuses a NUL: not a 500
        (job / "out" / "link.mp4").symlink_to(job / "input.mp4")  # a link judged by its target
        assert status(job / "out" / "link.mp4") == 404
        big = b'{"data": [' + b"[]," * 1_000_000 + b'[]], "fn_index": 0, "session_hash": "x"}'
        for route in ("/ui/gradio_api/queue/join", "/ui/gradio_api/cancel"):
            r = client.post(route, content=big, headers={"content-type": "application/json"})
            assert r.status_code == 413 and "2 MB" in r.json()["error"], route


def test_the_page_cleans_its_file_copies_and_shows_no_internal_errors(make_app):
    app = make_app(ui=True, job_ttl_hours=2)
    (page,) = [route.app for route in app.routes if getattr(route, "path", "") == "/ui"]
    blocks = page.get_blocks()
    assert blocks.delete_cache == (3600, 7200)  # Gradio's copies go as the jobs do
    assert blocks.show_error is False  # only user_error()'s one-liners reach the browser


def test_a_truncated_video_on_the_page_gets_the_apis_one_line(
    make_app, started, truncated_video, tmp_path
):
    app = make_app()
    cut = tmp_path / "tmpcut.mp4"
    cut.write_bytes(truncated_video[:2000])  # the header alone: FFmpeg cannot open it
    args = (1.0, 3, "cosine", "fused", 0.5, "default")
    for _ in started(app):
        message = error_text(
            lambda: CapsightUI(app).analyze(upload(cut, "cut.mp4"), *args, lambda *a, **k: None)
        )
        assert message.startswith("cut.mp4: not a readable video"), message
        assert str(tmp_path) not in message and "\n" not in message


def test_a_job_that_fails_after_it_started_keeps_its_message_on_the_page(
    make_app, started, truncated_video, tmp_path
):
    """A failure the user may not be watching for stays until closed, not 10 s."""
    app = make_app()
    cut = tmp_path / "tmphalf.mp4"
    cut.write_bytes(truncated_video)  # probes as a video; decoding fails part-way, in the job
    for _ in started(app):
        args = (1.0, 3, "cosine", "fused", 0.5, "default")
        with pytest.raises(gr.Error) as caught:
            CapsightUI(app).analyze(upload(cut, "half.mp4"), *args, lambda *a, **k: None)
        assert caught.value.message.startswith("half.mp4: truncated video")
        assert caught.value.duration is None and caught.value.print_exception is False


def test_a_new_video_run_first_clears_the_last_runs_results(make_app):
    """Otherwise a new clip's error toast sits next to the previous clip's plot and summary;
    the summary says a run is under way, and after a failure what went wrong."""
    from capsight.server.ui import RUNNING_VIDEO, cleared_video_results

    app = make_app(ui=True)
    (page,) = [route.app for route in app.routes if getattr(route, "path", "") == "/ui"]
    fns = page.get_blocks().fns  # {id: BlockFunction}
    (clear_id,) = [i for i, f in fns.items() if f.fn is cleared_video_results]
    (analyze_id,) = [i for i, f in fns.items() if f.name == "analyze"]
    (failed,) = [f for f in fns.values() if f.name == "failed_video"]
    (closed,) = [f for f in fns.values() if f.name == "page_closed"]  # the tab closed: runs stop
    assert [event for _, event in closed.targets] == ["unload"]
    again = [f for f in fns.values() if f.name == "find_button"]  # on again after the run,
    assert {f.trigger_after for f in again} == {analyze_id}  # and after a failed one, which
    assert sorted(f.trigger_only_on_failure for f in again) == [False, True]  # .then skips
    clear, analyze = fns[clear_id], fns[analyze_id]
    assert analyze.trigger_after == clear_id
    assert {o._id for o in clear.outputs} <= {o._id for o in analyze.outputs}
    assert cleared_video_results()[0] == RUNNING_VIDEO
    assert failed.trigger_after == analyze_id and failed.trigger_only_on_failure
    # A new clip, and clearing the clip, take the last run's results along.
    uploaded = [f for f in fns.values() if f.name == "video_uploaded"]
    assert len(uploaded) == 2 and all(
        {o._id for o in clear.outputs} < {o._id for o in f.outputs} for f in uploaded
    )
    # ... and the run itself (stopped by the clip count too: test_a_new_clip_stops_the_run...).
    # (the box's id, event): a new clip's check runs after a step that turns Find off at once
    started_by = [fns[f.trigger_after] if f.trigger_after is not None else f for f in uploaded]
    video_events = {target for f in started_by for target in f.targets}
    cancelling = {target for f in fns.values() if analyze_id in f.cancels for target in f.targets}
    assert (
        sorted(event for _, event in video_events) == ["clear", "upload"]
        and video_events <= cancelling
    )


def test_a_failed_video_run_leaves_its_message_in_the_summary(make_app, tmp_path):
    app = make_app()
    ui = CapsightUI(app)
    fake = tmp_path / "tmpvid.mp4"
    fake.write_text("not a video at all")
    args = (1.0, 3, "cosine", "fused", 0.5, "default", lambda *a, **k: None)
    alice, bob = (type("Request", (), {"session_hash": h})() for h in ("alice", "bob"))
    with pytest.raises(gr.Error):
        ui.analyze({"video": upload(fake, "holiday.mp4")}, *args, request=alice)
    with pytest.raises(gr.Error):
        ui.analyze(None, *args, request=bob)
    card = ui.failed_video(alice)
    assert "The analysis did not finish." in card and "holiday.mp4: not a video" in card
    assert "Upload a video first." in ui.failed_video(bob)  # each session its own message
    # Shown once, then forgotten; a run stopped by clearing its clip stored nothing, so the
    # summary keeps what the cleared clip left there (no "did not finish" card).
    assert ui.failed_video(alice) == gr.update()


def test_an_unexpected_error_still_says_the_run_did_not_finish(make_app, monkeypatch):
    ui = CapsightUI(make_app())

    def broken(*a, **k):
        raise RuntimeError("internal detail")

    monkeypatch.setattr(ui, "_analyze", broken)
    alice = type("Request", (), {"session_hash": "alice"})()
    with pytest.raises(RuntimeError):
        ui.analyze(None, 1.0, 3, "cosine", "fused", 0.5, "default", None, request=alice)
    card = ui.failed_video(alice)
    assert "The analysis did not finish." in card and "an error on the server" in card
    assert "internal detail" not in card


def test_an_upload_cut_inside_its_index_is_left_to_the_analysis_to_explain(tmp_path):
    """A stream that names no codec was an AttributeError, and a 500, before the analysis ran."""
    import av
    import numpy as np

    from capsight.io.synthetic_video import write_video
    from capsight.server.ui import unplayable_codec

    whole = tmp_path / "whole.mp4"
    write_video(whole, [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(5)], fps=5)
    data, cut = whole.read_bytes(), tmp_path / "cut.mp4"
    for end in range(len(data) - 1, len(data) - 4000, -7):
        cut.write_bytes(data[:end])
        try:
            with av.open(str(cut)) as container:
                if container.streams.video and container.streams.video[0].codec_context is None:
                    break
        except av.FFmpegError:
            pass
    else:
        pytest.skip("no cut of this FFmpeg's MP4 index leaves a video stream without its codec")
    assert unplayable_codec(str(cut)) is None


def test_an_upload_browsers_cannot_play_is_named_before_the_run(make_app, started, tmp_path):
    """MPEG-4 Part 2 (old cameras, pyscenedetect's samples): the player fails, the analysis not."""
    import numpy as np

    from capsight.io.synthetic_video import write_video
    from capsight.server.ui import EMPTY_VIDEO, unplayable_codec

    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(5)]
    old, new = tmp_path / "tmpold.mp4", tmp_path / "tmpnew.mp4"
    write_video(old, frames, fps=5, codec="mpeg4")
    write_video(new, frames, fps=5)
    assert unplayable_codec(str(old)) == "MPEG-4 part 2 video in an MP4 file"  # not "QuickTime"
    assert unplayable_codec(str(new)) is None and unplayable_codec(str(tmp_path / "gone")) is None
    ui = CapsightUI(make_app())
    summary, plot, gallery, rows, downloads, times, find, box = ui.video_uploaded(
        {"video": upload(old, "camera.mp4"), "subtitles": None}
    )
    assert box == {"__type__": "update"}  # a clip that will run stays in its box
    assert "camera.mp4: browsers cannot play MPEG-4 part 2" in summary and find["interactive"]
    assert "Find novel moments" in summary and (plot, rows, downloads, times) == (None, [], "", [])
    assert gallery.value == [] and gallery.visible  # shown again after a run that hid it
    assert ui.video_uploaded({"video": upload(new, "phone.mp4")})[0] == EMPTY_VIDEO
    text = tmp_path / "tmpnotes.mp4"
    text.write_text("hello")
    # a toast: on a phone the card is
    with pytest.warns(UserWarning, match="notes.mp4: not a video"):
        refused, *_, find, box = ui.video_uploaded(
            upload(text, "notes.mp4")
        )  # a screen further down
    assert "cap-failed" in refused and "notes.mp4: not a video" in refused
    assert "<b>This file cannot be analysed.</b>" in refused  # headed, as the other tabs' cards
    assert find["interactive"] is False  # a run would only refuse it again
    assert box is None  # taken out of the box (it had stayed as a dead player, "NaN:NaN")
    # a video: the button is back
    assert ui.video_uploaded(upload(new, "phone.mp4"))[-2]["interactive"]
    # ... and after the run, whose summary had replaced the note: the player is still empty
    app = make_app()
    for _ in started(app):
        quiet = lambda *a, **k: None  # noqa: E731 (stands in for gr.Progress)
        ran = CapsightUI(app).analyze
        summary = ran({"video": upload(old, "camera.mp4")}, 0.5, 3, "cosine", "fused", 0.5,
                      "default", quiet)[0]  # fmt: skip
        assert "The player stays empty: browsers cannot play MPEG-4 part 2" in summary
        summary = ran({"video": upload(new, "phone.mp4")}, 0.5, 3, "cosine", "fused", 0.5,
                      "default", quiet)[0]  # fmt: skip
        assert "stays empty" not in summary
    assert ui.video_uploaded(None)[-2]["interactive"] is False  # no clip: nothing to find
    # After a run the button comes back on the same terms (it is off while one goes on).
    assert ui.find_button({"video": upload(new, "phone.mp4")})["interactive"] is True
    assert ui.find_button(upload(text, "notes.mp4"))["interactive"] is False
    assert ui.find_button(None)["interactive"] is False
    cut = tmp_path / "tmpcut.mp4"  # its index (at the end) cut off: named now, by its own name
    cut.write_bytes(new.read_bytes()[: new.stat().st_size // 2])
    with pytest.warns(UserWarning, match="holiday.mp4: "):
        refused = ui.video_uploaded(upload(cut, "holiday.mp4"))[0]
    assert "cap-failed" in refused and "holiday.mp4: " in refused and str(tmp_path) not in refused
    app = make_app()
    for _ in started(app):  # the run works; the player is left alone, not reloaded to fail again
        *_, player = CapsightUI(app).analyze(upload(old, "camera.mp4"), 1.0, 3, "cosine", "fused",
                                             0.5, "default", lambda *a, **k: None)  # fmt: skip
        assert player == gr.update()


def test_the_image_tab_shows_a_mistake_in_place_of_the_last_photos_results(
    make_app, started, cat_jpeg, tmp_path
):
    """A failed Describe or Sample, or a new upload, leaves no results of the last photo on
    the page, and the message stays after the toast would have gone."""
    from capsight.captioning.base import default_captioner_name
    from capsight.server.ui import EMPTY_CARD

    app = make_app()
    photo, text = tmp_path / "tmpcat.jpg", tmp_path / "tmpnotes.jpg"
    photo.write_bytes(cat_jpeg)
    text.write_text("a shopping list\n")
    for _ in started(app):
        ui = CapsightUI(app)
        card_a, card_b, labels, looked_a, looked_b, samples = ui.describe(
            upload(photo, "cat.jpg"), "labels", "labels", "beam", 0)  # fmt: skip
        assert "cap-text" in card_a and "cap-text" in card_b and samples == ""
        assert "beam" not in card_a  # labels: no decoding to name
        pair = default_captioner_name()  # "default" on this page is the app's: labels
        assert "beam 4" in ui.describe(upload(photo, "cat.jpg"), pair, "labels", "beam", 0)[0]
        assert labels and all(p >= 0.005 for p in labels.values())  # no "0%" rows
        assert looked_a.label.startswith("Model A: ") and looked_b.label.startswith("Model B: ")
        dark = photo.with_name("dark.png")
        Image.new("RGB", (64, 48), (4, 4, 4)).save(dark)
        card, _, labels, looked, _, _ = ui.describe(
            upload(dark, "dark.png"), "labels", "labels", "beam", 0
        )
        assert "a blank image" in card.lower() and labels == {}  # no 2% "matchstick" for black
        assert looked.label == "Model A: a blank image, nothing to look at"

        failed = ui.describe(upload(text, "notes.jpg"), "labels", "labels", "beam", 0)
        assert "Nothing was described." in failed[0] and "notes.jpg: not an image" in failed[0]
        assert failed[1:3] == (EMPTY_CARD, None) and failed[5] == ""
        assert [(i.value, i.label) for i in failed[3:5]] == [(None, "Where model A looked"),
                                                           (None, "Where model B looked")]  # fmt: skip
        with pytest.warns(UserWarning, match="notes.jpg: not an image"):  # gr.Warning's toast
            on_upload = ui.photo_uploaded(upload(text, "notes.jpg"))
        assert (
            "This file cannot be described." in on_upload[0]
            and "notes.jpg: not an image" in on_upload[0]
        )
        assert on_upload[-1] is None  # out of the photo box, which would show a broken image
        shown = ui.photo_uploaded(upload(photo, "cat.jpg"))
        assert shown[0] == EMPTY_CARD and shown[-1] == gr.update()  # a JPEG is shown as it is
        assert "notes.jpg: not an image" in ui.sample(upload(text, "notes.jpg"), "labels", 1.0, 3)

        # Fewer distinct samples than asked: the reason fits the model.
        one = ui.sample(upload(photo, "cat.jpg"), "labels", 1.0, 3)
        assert "gave 1 distinct caption(s) of 3" in one and "no language model" in one
        assert "<li>A photo of" in one  # capitalised, as the caption cards are
        assert '<p class="cap-note">labels:</p>' in one  # which model (labels samples nothing)

        # A slider's number box takes any typed number; the handlers refuse it in one line.
        hot = ui.sample(upload(photo, "cat.jpg"), "labels", 5, 3)
        assert "Temperature must be between 0.2 and 2, got 5" in hot and "cap-list" not in hot
        assert "Captions must be a whole number between 1 and 8, got 50" in ui.sample(
            upload(photo, "cat.jpg"), "labels", 1.0, 50)  # fmt: skip
        wide = ui.describe(upload(photo, "cat.jpg"), "labels", "labels", "beam", 12)
        assert "Beam width must be a whole number between 0 and 8, got 12" in wide[0]


def test_the_sampling_note_names_the_real_reason():
    from types import SimpleNamespace

    from capsight.server.ui import sampling_note

    def described(score, blank=False):
        return SimpleNamespace(model="show-attend-tell-pair", caption=SimpleNamespace(score=score),
                               blank=blank)  # fmt: skip

    assert sampling_note(described(-0.4), 5, 5, 0.2) == ""
    low = sampling_note(described(-0.4), 3, 5, 0.2)
    assert (
        "at temperature 0.2" in low and "higher temperature" in low and "language model" not in low
    )
    assert "no language model" in sampling_note(described(None), 1, 5, 1.0)
    flat = sampling_note(described(None, blank=True), 1, 5, 1.0)
    assert "one flat colour" in flat and "language model" not in flat


def test_the_classify_tab_shows_a_mistake_or_the_engines_limits_under_the_bars(tmp_path, cat_jpeg):
    from capsight.server.classify_tab import shown_classes

    text = tmp_path / "t.jpg"
    text.write_text("hello")
    bars, note = shown_classes(upload(text, "a.jpg"), "type your own", "cat, dog", "")
    assert (
        bars["value"] is None
        and "Nothing was classified:" in note
        and "a.jpg: not an image" in note
    )
    assert bars["label"] == "Top 5 classes"  # not the last run's "All 2 classes"
    photo = tmp_path / "cat.jpg"
    photo.write_bytes(cat_jpeg)
    bars, note = shown_classes(upload(photo, "cat.jpg"), "professions", "", "")
    assert (
        len(bars["value"]) == 5
        and "Offline engine" in note
        and "read its top class as a guess" in note
    )
    bars, note = shown_classes(upload(photo, "cat.jpg"), "type your own", "cat, dog", "")
    assert max(bars["value"], key=bars["value"].get) == "cat" and "read its top class" not in note
    assert "No class stands out" not in note
    assert bars["label"] == "All 2 classes"  # not "Top 5 classes" over two
    five = "cat, dog, car, tree, house"
    bars, _ = shown_classes(upload(photo, "cat.jpg"), "type your own", five, "")
    assert bars["label"] == "All 5 classes" and len(bars["value"]) == 5  # "Top 5" read as more
    assert shown_classes(upload(photo, "cat.jpg"), "professions", "", "")[0]["label"] == (
        "Top 5 classes"
    )


def test_the_classify_tab_says_when_no_class_stands_out(monkeypatch):
    """Scores are shares of the classes asked about: a photo of none of them still gets a
    "winner", so a top share close to the next is said to be no clear winner."""
    import capsight.server.classify_tab as tab

    monkeypatch.setattr(
        tab, "classify_photo", lambda *a: ({"car": 0.33, "person": 0.22, "cat": 0.2}, [])
    )
    bars, note = tab.shown_classes(None, tab.TYPED, "car, person, cat", "")
    assert bars["value"]["car"] == 0.33 and "No class stands out" in note
    assert "the best takes 33%, the next 22%" in note
    assert bars["show_heading"] is False  # no "car" in large type over the bars: it is no answer
    monkeypatch.setattr(tab, "classify_photo", lambda *a: ({"cat": 0.9, "dog": 0.1}, []))
    bars, note = tab.shown_classes(None, tab.TYPED, "cat, dog", "")
    assert "No class stands out" not in note and bars["show_heading"] is True
    # Two classes: the top always takes half, which says nothing; a thousand: 49% is a lot.
    monkeypatch.setattr(tab, "classify_photo", lambda *a: ({"cat": 0.52, "dog": 0.48}, []))
    bars, note = tab.shown_classes(None, tab.TYPED, "cat, dog", "")
    assert "No class stands out" in note and bars["show_heading"] is False
    monkeypatch.setattr(tab, "classify_photo", lambda *a: ({"cat": 0.6, "dog": 0.4}, []))
    bars, note = tab.shown_classes(None, tab.TYPED, "cat, dog", "")
    assert bars["show_heading"] is True  # 20 points ahead, whatever the float arithmetic says
    monkeypatch.setattr(tab, "classify_photo", lambda *a: ({"accordion": 0.49, "harp": 0.02}, []))
    bars, note = tab.shown_classes(None, "imagenet", "", "")
    assert "No class stands out" not in note and bars["show_heading"] is True
    # Among many classes a 20-point lead is rare: three times the next's share stands out too.
    monkeypatch.setattr(tab, "classify_photo", lambda *a: ({"plate": 0.21, "tray": 0.04}, []))
    bars, note = tab.shown_classes(None, "imagenet", "", "")
    assert "No class stands out" not in note and bars["show_heading"] is True
    monkeypatch.setattr(tab, "classify_photo", lambda *a: ({"plate": 0.06, "tray": 0.01}, []))
    # 6% is no answer
    assert "No class stands out" in tab.shown_classes(None, "imagenet", "", "")[1]
    # a note on the photo comes first, in bold: it had ended the engine's grey paragraph
    blank = "a blank image (one flat colour): its scores say nothing about it"
    monkeypatch.setattr(tab, "classify_photo", lambda *a: ({"cat": 0.35, "dog": 0.31}, [blank]))
    note = tab.shown_classes(None, tab.TYPED, "cat, dog", "")[1]
    assert note.startswith('<p class="cap-note"><strong>Note: A blank image (one flat colour)')
    tied = "the classes '猫', '狗' look the same to the engine"
    monkeypatch.setattr(tab, "classify_photo", lambda *a: ({"猫": 0.5, "狗": 0.5}, [tied]))
    assert (
        "Note: The classes &#x27;猫&#x27;, &#x27;狗&#x27; look the same"
        in tab.shown_classes(None, tab.TYPED, "猫, 狗", "")[1]
    )


def test_a_card_names_the_temperature_a_caption_was_sampled_at():
    from capsight.captioning.options import DecodingOptions
    from capsight.server.ui import decoding_name

    assert (
        decoding_name(DecodingOptions(method="sample", temperature=0.7))
        == "sampled at temperature 0.7"
    )
    assert decoding_name(DecodingOptions(method="beam", beam_width=4)) == "beam 4"
    assert decoding_name(DecodingOptions(method="greedy")) == "greedy"


def test_slider_values_outside_the_sliders_range_are_refused_in_one_line():
    from capsight.server.ui_inputs import slider_value

    assert slider_value(0.5, (0, 1), "Sensitivity") == 0.5
    assert slider_value(3.0, (1, 8), "Captions", whole=True) == 3
    for value in (-0.1, 1.5, float("nan"), float("inf")):
        with pytest.raises(gr.Error) as caught:
            slider_value(value, (0, 1), "Sensitivity")
        assert caught.value.message.startswith("Sensitivity must be between 0 and 1, got")
    with pytest.raises(gr.Error) as caught:
        slider_value("", (0, 1), "Sensitivity")
    assert caught.value.message == "Sensitivity must be between 0 and 1; type one or use the slider"


def test_a_photo_the_browser_cannot_show_is_shown_from_a_png_copy(tmp_path, cat_jpeg):
    """A TIFF upload would show as a broken image: the box gets a PNG of the same pixels."""
    import io

    from PIL import Image

    from capsight.server.classify_tab import shown_photo
    from capsight.server.ui_inputs import browser_copy

    jpeg = tmp_path / "cat.jpg"
    jpeg.write_bytes(cat_jpeg)
    tiff = tmp_path / "scan.tiff"
    Image.open(io.BytesIO(cat_jpeg)).save(tiff)
    assert browser_copy(upload(jpeg, "cat.jpg")) is None
    copy = browser_copy(upload(tiff, "scan.tiff"))
    assert copy == str(tmp_path / "scan.png")
    assert Image.open(copy).format == "PNG"
    same = photo_from_upload(upload(copy, "scan.png")).tobytes()
    assert same == photo_from_upload(upload(tiff, "scan.tiff")).tobytes()
    text = tmp_path / "notes.tiff"
    text.write_text("a shopping list\n")
    assert browser_copy(upload(text, "notes.tiff")) is None  # left to the checks that name it
    assert shown_photo(upload(tiff, "scan.tiff")) == copy
    with pytest.warns(UserWarning, match="notes.tiff: not an image"):  # named at once, as a toast,
        # and out of the box (no broken icon)
        assert shown_photo(upload(text, "notes.tiff")) is None


def test_choosing_a_moment_seeks_inside_its_subtitle():
    """A moment at 1.000999 s has its subtitle cue from 1.001 s (whole milliseconds)."""
    evt = type("Select", (), {"index": 0})()
    player = CapsightUI.seek([1.000999, 6.0], evt)
    assert 1.001 <= player.playback_position < 1.05
    assert CapsightUI.seek([], evt) == gr.update()


def test_a_reply_for_an_earlier_photo_changes_nothing(make_app, monkeypatch):
    """Gradio's cancel can miss a run that is finishing: the photo count drops its reply."""
    ui = CapsightUI(make_app())
    alice, bob = (type("Request", (), {"session_hash": h})() for h in ("alice", "bob"))
    cards = ("<p>a caption</p>",) * 6

    def describe_then_a_new_photo(*args):
        ui.photo_uploaded(None, alice)  # alice changes her photo while it runs
        return cards

    monkeypatch.setattr(ui, "_describe", describe_then_a_new_photo)
    assert ui.describe(None, "a", "b", "beam", 0, 0.7, alice) == (gr.update(),) * 6
    monkeypatch.setattr(ui, "_describe", lambda *args: cards)
    assert (
        ui.describe(None, "a", "b", "beam", 0, 0.7, alice) == cards
    )  # her new photo's reply lands
    monkeypatch.setattr(ui, "_sample", lambda *args: (ui.photo_cleared(bob), "<p>samples</p>")[1])
    assert ui.sample(None, "a", 1.0, 3, bob) == gr.update()  # bob cleared his photo meanwhile
    monkeypatch.setattr(ui, "_sample", lambda *args: "<p>samples</p>")
    assert ui.sample(None, "a", 1.0, 3, alice) == "<p>samples</p>"  # the other session is apart


def test_a_new_clip_stops_the_run_for_the_last_one_and_drops_its_results(
    make_app, started, tmp_path
):
    """Replacing or clearing the clip mid-run: the job is deleted, and nothing of it lands
    beside the new clip (its summary, gallery, or its captions as the new clip's subtitles)."""
    import numpy as np

    from capsight.io.synthetic_video import write_video

    clip = tmp_path / "tmpclip.mp4"
    write_video(clip, [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(5)], fps=5)
    app = make_app()
    alice = type("Request", (), {"session_hash": "alice"})()
    for _ in started(app):
        ui = CapsightUI(app)
        ui.video_uploaded(upload(clip, "first.mp4"), alice)
        cleared_meanwhile = []

        def progress(fraction, desc="", ui=ui, cleared_meanwhile=cleared_meanwhile):
            if not cleared_meanwhile:  # the user clears the clip while the job is queued
                cleared_meanwhile.append(ui.video_uploaded(None, alice))

        outputs = ui.analyze(upload(clip, "first.mp4"), 1.0, 3, "cosine", "fused", 0.5, "default",
                             progress, request=alice)  # fmt: skip
        assert cleared_meanwhile and outputs == (gr.update(),) * 7
        assert app.state.jobs.list() == []  # the job went with its clip
        # Closing or reloading the tab mid-run stops it the same way.
        closed_meanwhile = []

        def closing(fraction, desc="", ui=ui, closed_meanwhile=closed_meanwhile):
            if not closed_meanwhile:
                closed_meanwhile.append(ui.page_closed(alice))

        outputs = ui.analyze(upload(clip, "first.mp4"), 1.0, 3, "cosine", "fused", 0.5, "default",
                             closing, request=alice)  # fmt: skip
        assert closed_meanwhile and outputs == (gr.update(),) * 7
        assert app.state.jobs.list() == []
        # An undisturbed run renders as usual.
        summary, *_ = ui.analyze(upload(clip, "first.mp4"), 1.0, 3, "cosine", "fused", 0.5, "default",
                                 lambda *a, **k: None, request=alice)  # fmt: skip
        assert "moments sampled" in summary and "sensitivity 0.5" in summary
        # Its job records the captioner that ran: the app's default, not the menu's "default".
        assert [job.params["model"] for job in app.state.jobs.list()] == ["labels"]


def test_picking_another_model_clears_that_sides_results():
    """Its card and map would otherwise read as the new model's until Describe runs again."""
    from capsight.server.ui import EMPTY_CARD, LOOKED_LABELS, model_changed

    card, looked, samples, last = model_changed("A")("show-and-tell", "default")
    assert card == EMPTY_CARD and samples == "" and looked.label == LOOKED_LABELS[0]
    assert last == "show-and-tell"  # kept, to tell the next choice from no choice
    card, looked, last = model_changed("B")("labels", "show-and-tell")
    assert card == EMPTY_CARD and looked.label == LOOKED_LABELS[1] and looked.value is None
    # The menu opened and left without a choice (Gradio fires `input` on that too): the
    # results stay (A's caption, map and samples had been wiped).
    import gradio as gr

    unchanged = model_changed("A")("default", "default")
    assert [type(u) for u in unchanged[:3]] == [type(gr.skip())] * 3 and unchanged[3] == "default"
    assert all(type(u) is type(gr.skip()) for u in model_changed("B")("labels", "labels")[:2])


def test_the_video_tab_says_when_its_settings_are_no_longer_those_of_the_results():
    from capsight.novelty.analysis import Analysis, AnalysisParams, Moment, VideoInfo
    from capsight.server.ui import STALE_VIDEO, stale_note, table_headers

    ran = [1.0, 5, "cosine", "fused", 0.5, "default"]
    assert stale_note(None, *ran) == ""  # no results on show
    assert stale_note(ran, *ran) == ""
    assert stale_note(ran, 1.0, 5, "cosine", "fused", 0.7, "default") == STALE_VIDEO
    assert stale_note(ran, 1, 5, "cosine", "fused", 0.5, "default") == ""  # 1 is the slider's 1.0

    info = VideoInfo(path="v.mp4", duration=3.0, fps=10.0, width=64, height=48)
    moments = [Moment(time=float(t), caption="a dog", novelty=None if t == 0 else 0.1)
               for t in range(3)]  # fmt: skip
    params = AnalysisParams(signal="visual", metric="euclidean")
    headers = table_headers(Analysis(info, params, moments).to_dict())
    assert headers[2] == "novelty (euclidean distance)"
    assert table_headers({"moments": "garbled"})[2] == "novelty"


def test_a_built_in_set_chosen_on_the_classify_tab_shows_its_classes():
    """Choosing a set hid the class box and showed nothing of what the set holds."""
    from capsight.server.classify_tab import TYPED, set_classes

    assert set_classes("cat-breeds").startswith(
        "23 classes: Abyssinian cat, American Shorthair cat, "
    )
    assert set_classes(TYPED) == ""


def test_model_b_starts_on_another_captioner_not_on_labels():
    """B on labels only repeated the class bars below the cards: no second sentence."""
    from capsight.server.ui import second_model

    names = ["labels", "prefix-gpt2", "show-and-tell", "show-attend-tell", "show-attend-tell-pair"]
    assert second_model(names, "show-attend-tell-pair") == "show-attend-tell"
    assert second_model(names, "show-attend-tell") == "prefix-gpt2"
    assert second_model(["default", "labels", "mine"], "default") == "labels"  # the only other
    assert second_model(["labels"], "labels") == "labels"


def test_the_page_logs_in_with_the_key_alone(make_app, started):
    """A key typed with no user name got a bare 422 from Gradio's login form, which the page
    did not show; a wrong key is still refused, and a user name still works."""
    for client in started(make_app(ui=True, api_key="correct-horse")):
        for fields in ({"username": "", "password": "correct-horse"},
                       {"username": "me", "password": "correct-horse"}):  # fmt: skip
            as_the_page = {name: (None, value) for name, value in fields.items()}  # multipart
            r = client.post("/ui/login", files=as_the_page, follow_redirects=False)
            assert r.status_code == 200 and r.cookies, r.text
        r = client.post("/ui/login", data={"password": "correct-horse"}, follow_redirects=False)
        assert r.status_code == 200 and r.cookies, r.text  # (urlencoded, no user name at all)
        r = client.post("/ui/login", files={"username": (None, ""), "password": (None, "wrong")})
        assert r.status_code == 400


def test_a_caption_dropped_as_the_server_stops_is_a_message_on_the_page(
    make_app, started, cat_jpeg, tmp_path, monkeypatch
):
    """BatcherStopping is no CapsightError: at SIGTERM the page had an unhandled error."""
    from capsight.server.batching import BatcherStopping

    app = make_app()
    photo = tmp_path / "tmpcat.jpg"
    photo.write_bytes(cat_jpeg)

    def dropped(*args, **kwargs):
        raise BatcherStopping("the server is stopping")

    for _ in started(app):
        ui = CapsightUI(app)
        monkeypatch.setattr(app.state.engine, "describe", dropped)
        card = ui.describe(upload(photo, "cat.jpg"), "labels", "labels", "beam", 0)[0]
        assert "The server is stopping; try again once it is back." in card
        assert "The server is stopping" in ui.sample(upload(photo, "cat.jpg"), "labels", 1.0, 3)


def test_the_page_has_exactly_its_three_tabs(make_app):
    """A gr.State made in gr.Tabs outside any gr.Tab is a tab to Gradio: a second "Video" tab
    button had appeared when the tabs' builders wired their events there."""
    from capsight.server.ui import build_ui

    blocks = build_ui(make_app())
    (tabs,) = [b for b in blocks.blocks.values() if isinstance(b, gr.Tabs)]
    assert [(type(c).__name__, c.label) for c in tabs.children] == [
        ("Tab", "Image"),
        ("Tab", "Video"),
        ("Tab", "Classify"),
    ]


def test_behind_a_key_only_a_logged_in_pages_closing_stops_its_runs(make_app):
    """Gradio's heartbeat route takes no login: dropping one for a session id read in the access
    log ran the unload handler, which deleted that logged-in user's running video job."""
    ui = CapsightUI(make_app(api_key="k" * 16))
    user = type("Request", (), {"session_hash": "alice", "username": "capsight"})()
    stranger = type("Request", (), {"session_hash": "alice", "username": None})()
    before = ui._clip_number(user)
    ui.page_closed(stranger)
    assert ui._clip_number(user) == before  # the run goes on
    ui.page_closed(user)
    assert ui._clip_number(user) != before  # the user's own closing still stops it


def test_behind_a_key_gradios_cancel_route_needs_the_pages_login(make_app, started):
    """Gradio's cancel route takes no login: a session id read in the access log was enough to
    cancel that user's runs."""
    body = {"session_hash": "alice", "fn_index": 0, "event_id": "e"}
    app = make_app(ui=True, api_key="correct-horse")
    for client in started(app):
        r = client.post("/ui/gradio_api/cancel", json=body)
        assert r.status_code == 401 and "log in" in r.json()["error"], r.text
        page = app.state.ui_app  # a cookie of the right name, with a token never issued
        client.cookies.set(f"access-token-unsecure-{page.cookie_id}", "forged")
        assert client.post("/ui/gradio_api/cancel", json=body).status_code == 401
        r = client.post("/ui/login", data={"password": "correct-horse"}, follow_redirects=False)
        assert r.status_code == 200 and r.cookies, r.text
        r = client.post("/ui/gradio_api/cancel", json=body)
        assert r.status_code == 200, r.text  # logged in: Gradio's own route answers
    for client in started(make_app(ui=True)):  # no key: the page has no login to ask for
        assert client.post("/ui/gradio_api/cancel", json=body).status_code == 200


def test_a_job_file_keeps_the_pages_download_name_and_asks_for_login_behind_a_key(
    make_app, started, tmp_path
):
    """Gradio named every file (`filename="report.html"`), which the browser put before the
    page's download name: each run was saved as report.html. Behind a key, a bookmarked report
    opened before logging in was Gradio's JSON 401."""
    report = tmp_path / "jobs" / ("a" * 32) / "out" / "report.html"
    report.parent.mkdir(parents=True)
    report.write_text("<p>the report</p>")
    url = f"/ui/gradio_api/file={report}"
    for client in started(make_app(ui=True)):
        r = client.get(url)
        assert r.status_code == 200 and "the report" in r.text
        assert r.headers["content-disposition"] == "inline"
    for client in started(make_app(ui=True, api_key="correct-horse")):
        r = client.get(url)
        assert r.status_code == 401 and r.headers["content-type"].startswith("text/html")
        assert 'href="/ui/"' in r.text and "Log in" in r.text and "the report" not in r.text
        client.post("/ui/login", data={"password": "correct-horse"}, follow_redirects=False)
        r = client.get(url)
        assert r.status_code == 200 and "the report" in r.text
        # Gradio copies a Range request's headers into its answer: the login cookie went back
        r = client.get(url, headers={"range": "bytes=0-5"})
        assert r.status_code == 206 and "cookie" not in r.headers
