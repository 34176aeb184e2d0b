"""Jobs survive a restart: finished ones keep their files, running ones say they were interrupted."""

from __future__ import annotations

import time

import pytest

from capsight.server.engine import VideoParams
from capsight.server.jobs import JobManager, JobStore


def _submit(client, video_path):
    with open(video_path, "rb") as f:
        r = client.post("/v1/videos", data={"every": "0.5"},
                        files={"video": ("clip.mp4", f, "video/mp4")})  # fmt: skip
    assert r.status_code == 202, r.text
    return r.json()["id"]


def test_restart_keeps_finished_jobs_and_the_stopped_one_says_so(
    make_app, scripted_engine, tiny_video, started, wait_for, wait_for_job
):
    for c in started(make_app()):
        finished = _submit(c, tiny_video)
        assert wait_for_job(c, finished)["status"] == "done"
        report = c.get(f"/v1/jobs/{finished}/report").text
        scripted_engine.gate.clear()
        scripted_engine.started.clear()
        running = _submit(c, tiny_video)
        wait_for(scripted_engine.started.is_set, what="the second job to start")
    # Leaving the block shuts the server down while the second job runs.
    scripted_engine.gate.set()

    for c in started(make_app()):  # a new app on the same job folder
        done = c.get(f"/v1/jobs/{finished}").json()
        assert done["status"] == "done" and done["analysis"]["moments"]
        assert c.get(f"/v1/jobs/{finished}/report").text == report
        assert c.get(f"/v1/jobs/{finished}/plot").status_code == 200
        interrupted = c.get(f"/v1/jobs/{running}").json()
        assert interrupted["status"] == "interrupted"
        assert "server stopped" in interrupted["error"]
        assert c.get(f"/v1/jobs/{running}/report").status_code == 409
        statuses = {j["id"]: j["status"] for j in c.get("/v1/jobs").json()["jobs"]}
        assert statuses == {finished: "done", running: "interrupted"}


def test_crash_marks_running_and_requeues_queued(tmp_path, scripted_engine, tiny_video, wait_for):
    store = JobStore(tmp_path)
    params = VideoParams(every=1.0)
    scripted_engine.gate.clear()
    first = JobManager(store, scripted_engine, workers=1, queue_size=4)
    first.start()
    with open(tiny_video, "rb") as f:
        running = first.submit(f, "a.mp4", ".mp4", params).id
    wait_for(scripted_engine.started.is_set, what="first job to start")
    with open(tiny_video, "rb") as f:
        waiting = first.submit(f, "b.mp4", ".mp4", params).id
    # The "crash": the old manager's threads are abandoned, its rows stay as they were.
    first._stop.set()
    assert store.get(running).status == "running" and store.get(waiting).status == "queued"

    scripted_engine.gate.set()
    second = JobManager(store, scripted_engine, workers=1, queue_size=4)
    second.start()
    try:
        assert store.get(running).status == "interrupted"
        wait_for(lambda: store.get(waiting).status == "done", what="requeued job")
        assert (tmp_path / running / "a.mp4").exists() is False  # stored under a server name
        assert not (tmp_path / running / "input.mp4").exists()  # deleted: the job has ended
    finally:
        second.stop()


def test_expiry_deletes_old_finished_jobs_only(tmp_path, scripted_engine, tiny_video, wait_for):
    store = JobStore(tmp_path)
    manager = JobManager(store, scripted_engine, workers=1, queue_size=4, ttl_hours=1)
    manager.start()
    try:
        with open(tiny_video, "rb") as f:
            job_id = manager.submit(f, "a.mp4", ".mp4", VideoParams(every=1.0)).id
        wait_for(lambda: store.get(job_id).status == "done", what="job")
        assert manager.expire(now=time.time() + 1800) == []  # half an hour later: kept
        assert manager.expire(now=time.time() + 7200) == [job_id]  # two hours later: gone
        assert store.get(job_id) is None and not (tmp_path / job_id).exists()
    finally:
        manager.stop()


def test_a_job_database_the_server_may_only_read_is_refused_at_start_up(tmp_path, monkeypatch):
    """Another user's jobs.sqlite3 (a restored backup, a volume after a uid change) passed the
    folder's check, then made every video job a 500 with a traceback. (Opened read-only here:
    the tests run as root, whom file modes do not stop.)"""
    import sqlite3

    from capsight.errors import InvalidParameter

    JobStore(tmp_path).close()  # the database exists, in WAL mode
    connect = sqlite3.connect

    def read_only(path, **options):
        return connect(f"file:{path}?mode=ro", uri=True, **options)

    monkeypatch.setattr(sqlite3, "connect", read_only)
    with pytest.raises(InvalidParameter, match=r"^cannot write the job database .*jobs\.sqlite3 \(attempt to write "
                                               r"a readonly database\); give --job-dir"):  # fmt: skip
        JobStore(tmp_path)


def test_the_job_database_follows_the_umask_so_the_group_can_write_it(tmp_path):
    """The image serves under umask 0002 so that another uid of group 0 (OpenShift's next
    start) can write its job store; SQLite had made jobs.sqlite3 and its -wal 0644 anyway."""
    import os
    import stat

    old = os.umask(0o002)
    try:
        store = JobStore(tmp_path)
        store.close()
    finally:
        os.umask(old)
    for name in ("jobs.sqlite3", "jobs.sqlite3-wal"):
        if (tmp_path / name).exists():  # (-wal is gone after a clean close on some versions)
            assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o664, name
    assert stat.S_IMODE((tmp_path / "jobs.sqlite3").stat().st_mode) == 0o664


@pytest.mark.parametrize("damage", ["not sqlite", "pages overwritten"])
def test_a_job_database_that_is_no_database_is_said_to_be_one(tmp_path, damage):
    """A damaged file had been "cannot write the job database ... (file is not a database)", or
    "(database disk image is malformed)"."""
    from capsight.errors import InvalidParameter

    database = tmp_path / "jobs.sqlite3"
    if damage == "not sqlite":
        database.write_bytes(b"garbage")
    else:
        JobStore(tmp_path).close()
        data = database.read_bytes()
        database.write_bytes(data[:100] + b"\xee" * (len(data) - 100))  # the header kept
    with pytest.raises(InvalidParameter, match=r"jobs\.sqlite3: not a job database \(damaged, or "
                                               r"another program's file\); move it away"):  # fmt: skip
        JobStore(tmp_path)
