"""Upload limits (413), content sniffing, and client file names that never become paths."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from capsight.io.sniff import describe_content, sniff_image, sniff_video
from capsight.server.uploads import display_name


def test_declared_oversize_is_refused_before_reading(make_app, cat_jpeg):
    with TestClient(make_app(max_upload_mb=0.01)) as c:  # 10 KB
        big = cat_jpeg * 2
        for path, field in [("/v1/captions", "images"), ("/get_captions", "image"),
                            ("/v1/videos", "video")]:  # fmt: skip
            r = c.post(path, files=[(field, ("a.jpg", big, "image/jpeg"))])
            assert r.status_code == 413, path
            assert "0.01 MiB limit" in r.json()["error"]
        # the upload form's own page, to a browser that posted it (not raw JSON)
        browser = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
        r = c.post(
            "/get_captions", files=[("image", ("a.jpg", big, "image/jpeg"))], headers=browser
        )
        assert r.status_code == 413 and r.headers["content-type"].startswith("text/html")
        assert "role=alert" in r.text and "0.01 MiB limit" in r.text and "name=image" in r.text


def test_streamed_oversize_is_cut_off(make_app):
    sent = []

    def chunks():
        for _ in range(64):
            sent.append(1)
            yield b"x" * 1024

    with TestClient(make_app(max_upload_mb=0.01)) as c:
        r = c.post("/v1/captions", content=chunks(),
                   headers={"content-type": "multipart/form-data; boundary=zz"})  # fmt: skip
    assert r.status_code == 413
    assert r.json()["error"].startswith("upload is larger")


def test_small_upload_passes_the_limit(make_app, cat_jpeg):
    with TestClient(make_app(max_upload_mb=1)) as c:
        r = c.post("/get_captions", files=[("image", ("a.jpg", cat_jpeg, "image/jpeg"))])
    assert r.status_code == 200 and "cat" in r.text


@pytest.mark.parametrize(
    "head, kind",
    [
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "jpeg"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "png"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"GIF89a\x01\x00", "gif"),
        (b"II*\x00\x08\x00", "tiff"),
        (b"qoif\x00\x00\x00\x28", "qoi"),  # the CLI reads it; the server had refused it
        (b"hello", None),
        (b"", None),
    ],
)
def test_sniff_image(head, kind):
    assert sniff_image(head) == kind


@pytest.mark.parametrize(
    "head, kind",
    [
        (b"\x00\x00\x00\x20ftypisom\x00\x00", "mp4"),
        (b"\x00\x00\x00\x14ftypqt  ", "mov"),
        (b"\x1a\x45\xdf\xa3\x01\x00", "mkv"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "avi"),
        (b"G" + b"\x00" * 187 + b"G" + b"\x00" * 187 + b"G" + b"\x00" * 10, "mpeg-ts"),
        (b"Good morning, this is text" * 20, None),
        (b"\xff\xd8\xff\xe0", None),
    ],
)
def test_sniff_video(head, kind):
    assert sniff_video(head) == kind


def test_describe_content_names_common_mistakes():
    assert describe_content(b"%PDF-1.4") == "a PDF"
    assert describe_content(b"PK\x03\x04") == "a ZIP archive"
    assert describe_content(b"plain words") == "text"
    assert describe_content(b"") == "an empty file"


@pytest.mark.parametrize(
    "given, shown",
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\clip.mp4", "clip.mp4"),
        ("a<script>.jpg", "a_script_.jpg"),
        ("..", "upload"),
        (None, "upload"),
        ("x" * 300 + ".jpg", "x" * 120),
        ("my %22best%22 clip.mp4", "my _best_ clip.mp4"),  # curl's and browsers' '"' (was _22)
    ],
)
def test_display_name_is_a_harmless_base_name(given, shown):
    name = display_name(given)
    assert name == shown
    assert "/" not in name and "\\" not in name and not name.startswith(".")


def test_a_jobs_files_are_saved_under_the_videos_name():
    from capsight.server.file_responses import saved_name

    assert saved_name("holiday.mp4", "report.html") == "holiday-report.html"
    # a header's quotes
    assert saved_name('C:\\clips\\a b"c.mov', "moments.csv") == "a_b_c-moments.csv"
    assert saved_name("../../x.mp4", "plot.png") == "x-plot.png"
    assert saved_name("日本.mp4", "novelty.png") == "日本-novelty.png"
    # nothing left of it: the file's own
    assert saved_name('"".mp4', "novelty.png") == "novelty.png"
    assert saved_name("v" * 300 + ".mp4", "a.vtt") == "v" * 60 + "-a.vtt"


def test_a_stalled_upload_gets_408_and_the_body_is_not_timed_after_it_ends():
    """A client that declared a body and stopped sending had held its connection forever (the
    request timeout starts only once the body is read)."""
    import asyncio

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from capsight.server.uploads import StalledUploads

    async def form(request: Request):
        await request.body()
        if request.query_params.get("wait"):  # a handler that waits for the client to hang up
            assert (await request.receive())["type"] == "http.disconnect"
        return JSONResponse({"ok": True})

    app = StalledUploads(Starlette(routes=[Route("/", form, methods=["POST"])]), stall_s=0.2)

    async def call(messages, query=b""):
        queue = list(messages)
        sent = []

        async def receive():
            if queue:
                message = queue.pop(0)
                if message is None:  # the client goes quiet for longer than the limit
                    await asyncio.sleep(0.5)
                    return {"type": "http.disconnect"}
                return message
            await asyncio.sleep(0.5)  # then hangs up
            return {"type": "http.disconnect"}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/", "query_string": query,
                 "headers": [(b"content-length", b"500000")]}  # fmt: skip
        await app(scope, receive, send)
        return sent

    part = {"type": "http.request", "body": b"--B\r\n", "more_body": True}
    sent = asyncio.run(call([part, None]))
    assert sent[0]["status"] == 408 and (b"connection", b"close") in sent[0]["headers"]
    assert b"the upload stalled: no data for 0.2 s" in sent[1]["body"]

    # a whole body, then a handler that waits longer than the limit for the client to leave
    whole = {"type": "http.request", "body": b"x", "more_body": False}
    sent = asyncio.run(call([whole], query=b"wait=1"))
    assert sent[0]["status"] == 200


def test_an_upload_still_arriving_when_the_server_stops_gets_503_at_once():
    """On SIGTERM an upload in flight had held the shutdown for uvicorn's ~10 s of grace, then
    got a plain-text 500 (an audit, 2026-12-08): now the 503 every other waiting client gets."""
    import asyncio
    import json
    import threading

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from capsight.server.deps import STOPPING
    from capsight.server.uploads import StalledUploads

    async def form(request: Request):
        await request.body()
        return JSONResponse({"ok": True})

    for steady in (False, True):  # the client goes quiet, or keeps sending a chunk at a time
        stopping = threading.Event()
        app = StalledUploads(Starlette(routes=[Route("/", form, methods=["POST"])]), stall_s=5,
                             stopping=stopping)  # fmt: skip
        sent = []
        calls = []

        async def receive(steady=steady, stopping=stopping, calls=calls):
            calls.append(1)
            if len(calls) > 1 and not steady:
                # quiet after a first chunk; SIGTERM comes while the middleware waits for more
                asyncio.get_running_loop().call_later(0.1, stopping.set)
                await asyncio.sleep(60)
            if steady:
                stopping.set()  # SIGTERM, between two chunks
            await asyncio.sleep(0.01)
            return {"type": "http.request", "body": b"--B\r\n", "more_body": True}

        async def send(message, sent=sent):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"",
                 "headers": [(b"content-length", b"500000")]}  # fmt: skip
        asyncio.run(asyncio.wait_for(app(scope, receive, send), 4))
        assert sent[0]["status"] == 503 and (b"retry-after", b"30") in sent[0]["headers"]
        assert json.loads(sent[1]["body"]) == {"error": STOPPING}


def test_a_bug_met_after_an_upload_is_cut_off_is_logged_and_the_client_still_gets_413(caplog):
    """The middleware drops what the app makes of a cut-off body; an error the cut did not
    cause (here a handler's cleanup that fails) had been swallowed without a trace."""
    import asyncio
    import logging

    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    from capsight.server.uploads import BodySizeLimit

    async def cleanup_fails(request: Request):
        try:
            await request.body()
        finally:
            {}["missing"]  # a bug in the handler's cleanup, raised while the cut propagates

    async def parser_refuses(request: Request):
        try:
            await request.body()
        except Exception as exc:
            raise ValueError("could not parse the body") from exc  # what the cut caused
        return JSONResponse({})

    def call(handler):
        app = BodySizeLimit(Starlette(routes=[Route("/", handler, methods=["POST"])]), 10)
        sent = []
        messages = [{"type": "http.request", "body": b"x" * 8, "more_body": True}] * 3

        async def receive():
            return messages.pop(0)

        async def send(message, sent=sent):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/", "query_string": b"",
                 "headers": []}  # fmt: skip
        asyncio.run(app(scope, receive, send))
        return sent

    with caplog.at_level(logging.ERROR, logger="capsight.server"):
        sent = call(cleanup_fails)
    assert sent[0]["status"] == 413
    assert "an error after the body was cut off" in caplog.text and "KeyError" in caplog.text

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="capsight.server"):
        sent = call(parser_refuses)
    assert sent[0]["status"] == 413 and caplog.text == ""
