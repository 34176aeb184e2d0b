"""POST /v1/videos and /v1/jobs: status, progress events, downloads, delete, errors, a full queue."""

from __future__ import annotations

import json
import time


def _submit(client, video_path, **form):
    with open(video_path, "rb") as f:
        return client.post("/v1/videos", data={k: str(v) for k, v in form.items()},
                           files={"video": ("my clip.mp4", f, "video/mp4")})  # fmt: skip


def test_video_job_runs_to_done_with_analysis_and_files(client, tiny_video, wait_for_job):
    r = _submit(client, tiny_video, every=0.5, window=3, metric="euclidian", signal="visual")
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] in ("queued", "running") and r.headers["location"] == job["links"]["self"]
    assert job["links"]["report"] == job["links"]["self"] + "/report"  # where it will be once done
    assert job["filename"] == "my clip.mp4"
    assert job["params"] == {"every": 0.5, "window": 3, "metric": "euclidean", "signal": "visual",
                             "sensitivity": 0.5, "model": "labels"}  # fmt: skip

    done = wait_for_job(client, job["id"])
    assert done["status"] == "done" and done["progress"] == 1.0
    analysis = done["analysis"]
    assert set(analysis) >= {"video", "params", "moments", "novel_moments"}
    assert analysis["video"]["duration"] > 3.0
    assert analysis["video"]["path"] == "my clip.mp4"  # the client's name, not the server's path
    assert [m["time"] for m in analysis["novel_moments"]] == [2.0]  # first sample past 1.6 s
    assert done["summary"]["novel_moments"] == 1 and done["expires_at"] is not None
    assert done["summary"]["note"] is None

    expected = {"report": "text/html", "plot": "image/png", "csv": "text/csv",
                "vtt": "text/vtt", "json": "application/json"}  # fmt: skip
    for name, media in expected.items():
        r = client.get(f"/v1/jobs/{job['id']}/{name}")
        assert r.status_code == 200, name
        assert r.headers["content-type"].startswith(media), name
    assert client.get(f"/v1/jobs/{job['id']}/plot").content.startswith(b"\x89PNG")
    assert client.get(f"/v1/jobs/{job['id']}/vtt").text.startswith("WEBVTT")
    assert json.loads(client.get(f"/v1/jobs/{job['id']}/json").text)["moments"]
    r = client.get(f"/v1/jobs/{job['id']}/csv", params={"download": "true"})
    # saved under the video's name: every job's "moments.csv" had collided in a downloads folder
    assert r.headers["content-disposition"] == 'attachment; filename="my_clip-moments.csv"'

    novel_index = next(i for i, m in enumerate(analysis["moments"]) if m["is_novel"])
    assert analysis["novel_moments"][0]["index"] == novel_index  # (it had to be found by time)
    r = client.get(f"/v1/jobs/{job['id']}/thumbnails/{novel_index}")
    assert r.status_code == 200 and r.content.startswith(b"\xff\xd8"), r.text
    assert client.get(f"/v1/jobs/{job['id']}/thumbnails/0").status_code == 404
    r = client.get(f"/v1/jobs/{job['id']}/pdf")
    assert r.status_code == 404 and "report, plot, csv, vtt, json" in r.json()["error"], r.text

    listed = client.get("/v1/jobs").json()
    assert job["id"] in [j["id"] for j in listed["jobs"]]
    # a total to page by (the list had said nothing of the jobs past its limit)
    assert listed["total"] == len(listed["jobs"]) >= 1
    one = client.get("/v1/jobs", params={"limit": 1, "status": "done"}).json()
    assert len(one["jobs"]) == 1 and one["total"] == sum(
        j["status"] == "done" for j in listed["jobs"]
    )
    folder = client.app.state.settings.job_dir / job["id"]
    assert (folder / "out").is_dir() and not list(folder.glob("input.*"))  # the upload is gone


def test_a_job_that_finds_nothing_says_why_in_its_summary(client, tiny_video, wait_for_job):
    """As /get_video_captions, the report and the page do; a /v1 job had said only 0."""
    r = _submit(client, tiny_video, every=60)
    assert r.status_code == 202, r.text
    done = wait_for_job(client, r.json()["id"])
    assert done["summary"]["novel_moments"] == 0
    assert done["summary"]["note"].startswith("only one moment was sampled")
    dense = wait_for_job(client, _submit(client, tiny_video, every=0.1, window=2).json()["id"])
    assert "the 2 moments before each span only 0.2 s of video" in dense["summary"]["note"]
    assert "(window)" in dense["summary"]["note"]


def test_events_stream_progress_then_done(client, tiny_video):
    job_id = _submit(client, tiny_video, every=0.5).json()["id"]
    events = []
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    assert events[-1][0] == "done" and events[-1][1]["progress"] == 1.0
    assert all(name == "progress" for name, _ in events[:-1])
    progress = [data["progress"] for _, data in events]
    assert progress == sorted(progress)


def test_delete_job_removes_it_and_its_files(client, tiny_video, wait_for_job):
    job_id = _submit(client, tiny_video).json()["id"]
    wait_for_job(client, job_id)
    folder = client.app.state.jobs.store.job_path(job_id)
    assert folder.is_dir()
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 204
    assert not folder.exists()
    for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/report", f"/v1/jobs/{job_id}/events"):
        r = client.get(path)
        assert r.status_code == 404 and job_id in r.json()["error"]
        assert "deleted, or finished and expired" in r.json()["error"]  # had said "expire" only
    assert client.delete(f"/v1/jobs/{job_id}").status_code == 404


def test_a_job_id_in_upper_case_finds_its_job(client, tiny_video, wait_for_job):
    """An id upper-cased on its way (a log, a ticket) was told it was not 32 hex characters."""
    job_id = _submit(client, tiny_video).json()["id"]
    wait_for_job(client, job_id)
    shouted = job_id.upper()
    r = client.get(f"/v1/jobs/{shouted}")
    assert r.status_code == 200 and r.json()["id"] == job_id
    assert client.get(f"/v1/jobs/{shouted}/report").status_code == 200
    assert client.delete(f"/v1/jobs/{shouted}").status_code == 204


def test_unknown_and_malformed_job_ids_are_404(client):
    for job_id in ("0" * 32, "nope", "..%2F..%2Fetc"):
        r = client.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 404
        assert "error" in r.json()
    assert client.get("/v1/jobs/" + "0" * 32 + "/secrets").status_code == 404
    for job_id in ("nope", "a" * 10_000):  # one answer whatever the length (a long one was 422)
        r = client.get(f"/v1/jobs/{job_id}")
        assert r.status_code == 404 and "a job's id is the 32 hex characters" in r.json()["error"]
        assert len(r.json()["error"]) < 200


def test_bad_videos_are_refused_before_queueing(client, tiny_video, cat_jpeg):
    r = client.post("/v1/videos", files={"video": ("clip.mp4", b"not a video at all", "video/mp4")})
    assert r.status_code == 415 and "not a video" in r.json()["error"]
    r = client.post("/v1/videos", files={"video": ("clip.mp4", cat_jpeg, "video/mp4")})
    assert r.status_code == 415 and "JPEG image" in r.json()["error"]
    corrupt = tiny_video.read_bytes()[:48] + b"\x00" * 2000  # MP4 signature, nothing playable
    r = client.post("/v1/videos", files={"video": ("broken.mp4", corrupt, "video/mp4")})
    assert r.status_code == 400 and r.json()["error"].startswith("broken.mp4: ")
    assert "input.mp4" not in r.json()["error"]  # the client's name, not the server's path
    r = client.post("/v1/videos", data={"every": "0"},
                    files={"video": ("clip.mp4", tiny_video.read_bytes(), "video/mp4")})  # fmt: skip
    assert r.status_code == 422 and "every" in r.json()["error"]
    r = client.post("/v1/videos", data={"metric": "manhattan"},
                    files={"video": ("clip.mp4", tiny_video.read_bytes(), "video/mp4")})  # fmt: skip
    assert r.status_code == 422 and "metric" in r.json()["error"]
    r = client.post("/v1/videos")
    assert r.status_code == 422 and "video" in r.json()["error"]
    before = client.app.state.jobs.store.list(limit=200)
    assert all(j.filename != "broken.mp4" for j in before)


def test_a_failed_job_names_the_clients_file_not_the_servers_path(
    client, truncated_video, wait_for_job
):
    r = client.post("/v1/videos", files={"video": ("trunc.mp4", truncated_video, "video/mp4")})
    assert r.status_code == 202, r.text  # it probes as a video; decoding fails part-way
    failed = wait_for_job(client, r.json()["id"])
    assert failed["status"] == "failed"
    assert failed["error"].startswith("trunc.mp4: truncated video"), failed["error"]
    assert "input.mp4" not in failed["error"]
    assert str(client.app.state.settings.job_dir) not in failed["error"]
    assert not list((client.app.state.settings.job_dir / failed["id"]).glob("input.*"))
    for output in ("report", "thumbnails/0"):  # not "once done": it never will be
        r = client.get(f"/v1/jobs/{failed['id']}/{output}")
        assert r.status_code == 409, r.text
        assert r.json()["error"].startswith(f"job {failed['id']} failed: trunc.mp4: truncated")
        assert r.json()["error"].endswith("and never will")
    assert set(failed["links"]) == {"self", "events"}  # no links to outputs it will never have


def test_full_queue_answers_503_with_retry_after(
    make_app, scripted_engine, tiny_video, started, wait_for, wait_for_job
):
    scripted_engine.gate.clear()  # the first job holds the only worker
    for c in started(make_app(workers=1, queue_size=1)):
        first = _submit(c, tiny_video)
        assert first.status_code == 202
        wait_for(scripted_engine.started.is_set, what="the first job to start")
        second = _submit(c, tiny_video)
        assert second.status_code == 202  # waits in the queue
        third = _submit(c, tiny_video)
        assert third.status_code == 503
        assert int(third.headers["retry-after"]) >= 1
        assert "queue is full" in third.json()["error"]
        r = c.get(f"/v1/jobs/{first.json()['id']}/report")
        assert r.status_code == 409 and "running" in r.json()["error"]
        scripted_engine.gate.set()
        assert wait_for_job(c, second.json()["id"])["status"] == "done"


def test_a_queued_job_says_how_many_jobs_are_ahead_of_it(
    make_app, scripted_engine, tiny_video, started, wait_for, wait_for_job
):
    """Every queued job had said "waiting for a worker", first or eighth (an audit,
    2026-12-08)."""
    scripted_engine.gate.clear()  # the first job holds the only worker
    for c in started(make_app(workers=1, queue_size=4)):
        first = _submit(c, tiny_video).json()["id"]
        wait_for(scripted_engine.started.is_set, what="the first job to start")
        queued = [_submit(c, tiny_video).json()["id"] for _ in range(3)]
        said = [c.get(f"/v1/jobs/{job}").json()["message"] for job in queued]
        assert said == ["waiting for a worker: next", "waiting for a worker: 1 job ahead of it",
                        "waiting for a worker: 2 jobs ahead of it"]  # fmt: skip
        listed = {j["id"]: j["message"] for j in c.get("/v1/jobs").json()["jobs"]}
        assert listed[queued[2]] == said[2]
        assert c.delete(f"/v1/jobs/{queued[0]}").status_code == 204
        assert c.get(f"/v1/jobs/{queued[2]}").json()["message"] == said[1]
        scripted_engine.gate.set()
        assert wait_for_job(c, first)["status"] == "done"
        for job in queued[1:]:
            assert wait_for_job(c, job)["status"] == "done"


def test_an_upload_the_disk_has_no_room_for_is_a_503_not_a_500(client, tiny_video, monkeypatch):
    """Copying the upload into a full job folder answered 500 "internal error (OSError)"."""
    import errno
    import shutil

    from capsight.server import jobs

    def disk_full(source, target, length=0):
        raise OSError(errno.ENOSPC, "No space left on device")

    root = client.app.state.jobs.store.root
    before = set(root.iterdir())
    monkeypatch.setattr(jobs.shutil, "copyfileobj", disk_full)
    r = _submit(client, tiny_video)
    assert r.status_code == 503 and r.headers["retry-after"] == "60"
    assert r.json()["error"].startswith("the server has no room to save this video")
    with open(tiny_video, "rb") as f:  # the original endpoint too
        r = client.post("/get_video_captions", files={"video": ("c.mp4", f, "video/mp4")})
    assert r.status_code == 503 and "no room" in r.json()["error"]
    monkeypatch.setattr(jobs.shutil, "copyfileobj", shutil.copyfileobj)
    assert set(root.iterdir()) == before  # nothing left behind


def test_a_job_whose_outputs_cannot_be_saved_fails_without_server_paths(
    client, tiny_video, wait_for_job, monkeypatch
):
    def disk_full(analysis, out_dir):
        raise OSError(28, "No space left on device", str(out_dir))

    monkeypatch.setattr(client.app.state.engine, "write_outputs", disk_full)
    failed = wait_for_job(client, _submit(client, tiny_video).json()["id"])
    assert failed["status"] == "failed"
    assert failed["error"].startswith("the server could not save this job's outputs")
    assert str(client.app.state.settings.job_dir) not in failed["error"]


def test_a_job_deleted_while_its_outputs_are_written_leaves_no_files(
    client, tiny_video, monkeypatch, caplog, wait_for
):
    """The writer re-made the folder the delete had just removed (204, yet 756 kB stayed), or
    failed in it and was logged as a full disk."""
    engine = client.app.state.engine
    write = engine.write_outputs
    for fails in (False, True):
        called = []

        def deleted_meanwhile(analysis, out_dir, fails=fails, called=called):
            called.append(out_dir)
            assert client.delete(f"/v1/jobs/{out_dir.parent.name}").status_code == 204
            if fails:  # the folder gone from under the writer
                raise OSError(2, "No such file or directory", str(out_dir))
            write(analysis, out_dir)  # makes the folder again

        monkeypatch.setattr(engine, "write_outputs", deleted_meanwhile)
        job_id = _submit(client, tiny_video).json()["id"]
        folder = client.app.state.settings.job_dir / job_id
        wait_for(lambda called=called, job_id=job_id: called and job_id not in client.app.state.jobs._running,
                 timeout=60, what="the worker to write and let the job go")  # fmt: skip
        assert client.get(f"/v1/jobs/{job_id}").status_code == 404
        assert not folder.exists(), fails
    assert "cannot save its outputs" not in caplog.text


def test_a_thumbnail_past_the_last_moment_says_how_many_there_are(client, tiny_video, wait_for_job):
    done = wait_for_job(client, _submit(client, tiny_video, every=1).json()["id"])
    count = len(done["analysis"]["moments"])
    r = client.get(f"/v1/jobs/{done['id']}/thumbnails/{count + 50}")
    assert r.status_code == 404
    assert r.json()["error"].endswith(f"has {count} moments; index goes from 0 to {count - 1}")
    quiet = next(i for i, m in enumerate(done["analysis"]["moments"]) if not m["is_novel"])
    r = client.get(f"/v1/jobs/{done['id']}/thumbnails/{quiet}")
    assert r.status_code == 404 and "only novel ones do" in r.json()["error"]


def test_every_get_answers_head_with_its_headers_and_no_body(client, tiny_video, wait_for_job):
    """Link checkers and monitors ask HEAD; FastAPI routed it only where a route declared it."""
    done = wait_for_job(client, _submit(client, tiny_video, every=0.5).json()["id"])
    for path in ("/", "/healthz", "/v1/models", "/v1/jobs", f"/v1/jobs/{done['id']}",
                 f"/v1/jobs/{done['id']}/report", f"/v1/jobs/{done['id']}/csv?download=true"):  # fmt: skip
        got, head = client.get(path), client.head(path)
        assert head.status_code == got.status_code == 200, path
        assert (
            head.content == b"" and head.headers["content-type"] == got.headers["content-type"]
        ), path
    assert client.head("/v1/jobs/nosuchjob").status_code == 404
    assert client.head(f"/v1/jobs/{done['id']}/events").status_code == 200  # a stream too
    # one operation each
    assert "head" not in client.get("/openapi.json").json()["paths"]["/healthz"]


def test_a_downloaded_output_revalidates_with_304_and_refuses_a_bad_range_in_json(
    client, tiny_video, wait_for_job
):
    done = wait_for_job(client, _submit(client, tiny_video, every=1).json()["id"])
    path = f"/v1/jobs/{done['id']}/csv"
    first = client.get(path)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    for ask in ({"If-None-Match": etag}, {"If-None-Match": f'"other", W/{etag}'},
                {"If-None-Match": "*"}, {"If-Modified-Since": modified}):  # fmt: skip
        again = client.get(path, headers=ask)
        assert again.status_code == 304 and again.content == b"", ask
        assert again.headers["etag"] == etag
    assert client.get(path, headers={"If-None-Match": '"other"'}).content == first.content
    # If-None-Match decides alone where both are sent
    assert client.get(path, headers={"If-None-Match": '"other"', "If-Modified-Since": modified}
                      ).status_code == 200  # fmt: skip
    assert client.get(path, headers={"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"}
                      ).status_code == 200  # fmt: skip
    assert client.get(path, headers={"If-Modified-Since": "yesterday"}).status_code == 200
    assert client.get(path, headers={"Range": "bytes=0-9"}).content == first.content[:10]
    size = len(first.content)
    past = client.get(path, headers={"Range": f"bytes={size + 10}-"})
    assert past.status_code == 416 and past.headers["content-range"] == f"bytes */{size}"
    assert past.json()["error"].endswith(f"past the end of the file ({size} bytes)")
    # a unit it does not know is ignored (RFC 9110, 14.2): the whole file, not Starlette's 400
    assert client.get(path, headers={"Range": "lines=1-2"}).content == first.content
    asctime = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(time.time() + 60))  # GMT, no zone
    assert client.get(path, headers={"If-Modified-Since": asctime}).status_code == 304
    # a Range whose If-Range no longer matches is ignored, as before: the whole file
    assert (
        client.get(path, headers={"Range": "bytes=0-9", "If-Range": '"old"'}).content
        == first.content
    )
    novel = next(i for i, m in enumerate(done["analysis"]["moments"]) if m["is_novel"])
    thumb = f"/v1/jobs/{done['id']}/thumbnails/{novel}"
    etag = client.get(thumb).headers["etag"]
    assert client.get(thumb, headers={"If-None-Match": etag}).status_code == 304


def test_a_job_records_the_captioner_default_stands_for(
    make_app, scripted_engine, tiny_video, started, wait_for_job, monkeypatch
):
    from capsight.novelty.pipeline import video_captioner_name

    monkeypatch.setattr(scripted_engine, "default_model", "default")  # `capsight serve` as shipped
    for c in started(make_app(model="default")):
        for form in ({}, {"model": "default"}):
            job = _submit(c, tiny_video, **form).json()
            assert job["params"]["model"] == video_captioner_name("default") != "default"
            assert wait_for_job(c, job["id"])["params"]["model"] == job["params"]["model"]


def test_a_failed_job_keeps_the_progress_it_reached(make_app, scripted_engine, tiny_video, started,
                                                     wait_for_job, monkeypatch):  # fmt: skip
    """The store saves progress at most once a second: a failed job's went back from its last
    event's 0.124 to the saved 0.0615."""
    from capsight.errors import CapsightError

    def analyze(path, params, progress):
        for fraction in (0.1, 0.2, 0.3):  # within one second: only the first is saved on the way
            progress(fraction, "captioning")
        raise CapsightError("corrupt video data near 3.3 s")

    monkeypatch.setattr(scripted_engine, "analyze", analyze)
    for c in started(make_app()):
        failed = wait_for_job(c, _submit(c, tiny_video).json()["id"])
        assert failed["status"] == "failed" and failed["progress"] == 0.3


def _events(client, job_id) -> list[tuple[str, dict]]:
    events, name = [], None
    with client.stream("GET", f"/v1/jobs/{job_id}/events") as r:
        for line in r.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: "):
                events.append((name, json.loads(line[6:])))
    return events


def test_event_streams_end_with_a_last_event_when_the_server_stops(
    make_app, scripted_engine, tiny_video, started, wait_for
):
    """A stream ran until its job ended: a stopping server waited its 10 s grace for it, then
    cut it off mid-transfer without the final event the docs promise."""
    scripted_engine.gate.clear()  # the first job runs, held; the second waits behind it
    for c in started(make_app(workers=1)):
        running = _submit(c, tiny_video).json()["id"]
        wait_for(scripted_engine.started.is_set, what="the first job to start")
        queued = _submit(c, tiny_video).json()["id"]
        c.app.state.stopping.set()  # as `capsight serve` does on SIGTERM
        name, last = _events(c, running)[-1]
        assert name == "interrupted" and last["status"] == "interrupted"
        assert last["error"].startswith("the server stopped while this job was running")
        name, last = _events(c, queued)[-1]
        assert name == "stopping" and last["status"] == "queued"
        assert "stays queued and runs when it starts again" in last["message"]
        scripted_engine.gate.set()


def test_retry_after_follows_the_running_jobs_progress_not_only_recent_ones(monkeypatch):
    from capsight.server import jobs

    manager = jobs.JobManager(store=None, engine=None, workers=1, queue_size=1)
    manager._durations = [5.0] * 5  # the recent videos were short
    manager._running, manager._started = {"long"}, {"long": 1000.0}
    manager._live = {"long": (0.1, "captioning")}
    monkeypatch.setattr(jobs.time, "time", lambda: 1060.0)  # a tenth done in a minute
    assert manager.retry_after_s() == 540  # had been 5: the median of the short ones
    manager._live = {"long": (0.0, "starting")}  # too early to tell: the typical job's time
    monkeypatch.setattr(jobs.time, "time", lambda: 1001.0)
    assert manager.retry_after_s() == 4
    # a first 3.4%, in 1.9 s: half the foretold 54 s
    manager._live = {"long": (0.034, "captioning")}
    monkeypatch.setattr(jobs.time, "time", lambda: 1001.9)
    assert manager.retry_after_s() == 27  # had been 4, the short jobs' median
    manager._live = {"long": (0.0, "starting")}
    monkeypatch.setattr(jobs.time, "time", lambda: 1030.0)  # no progress, past the typical
    assert manager.retry_after_s() == 30
    manager._running.add("other")
    manager._started["other"], manager._live["other"] = 1020.0, (0.5, "captioning")
    assert manager.retry_after_s() == 10  # the first worker free takes the next job
    manager._running, manager.job_timeout_s = {"long"}, 100.0  # 30 s in: stopped in 70 s at most
    manager._live = {"long": (0.1, "captioning")}
    assert manager.retry_after_s() == 70


def test_a_download_named_in_another_script_has_a_plain_name_too():
    """Starlette sent such a name as filename* alone; RFC 6266 asks for filename= as well."""
    from capsight.server.file_responses import JobFileResponse, saved_name

    name = saved_name("клип 猫.mp4", "report.html")
    disposition = JobFileResponse(__file__, filename=name).headers["content-disposition"]
    assert disposition.startswith('attachment; filename="') and "filename*=utf-8''" in disposition
    plain = disposition.split('"')[1]
    assert plain.endswith("-report.html") and plain.isascii()
