"""HEAD answered as GET without a body, over a real connection (uvicorn): the connection must
stay usable for the client's next request, whatever kind of response GET gives."""

from __future__ import annotations

import http.client
import socket
import threading
import time

import anyio
import pytest

uvicorn = pytest.importorskip("uvicorn")


@pytest.fixture
def served(tmp_path):
    from starlette.applications import Starlette
    from starlette.responses import FileResponse, JSONResponse, StreamingResponse
    from starlette.routing import Route

    from capsight.server.head_requests import HeadAsGet

    big = tmp_path / "big.csv"
    big.write_bytes(b"x" * 300_000)  # several of FileResponse's 64 KiB chunks
    streamed = []

    async def forever():
        while True:
            streamed.append(1)
            yield b"data: tick\n\n"
            await anyio.sleep(0.01)

    app = Starlette(routes=[
        Route("/file", lambda request: FileResponse(big)),
        Route("/json", lambda request: JSONResponse({"ok": True})),
        Route("/events", lambda request: StreamingResponse(forever(), media_type="text/event-stream")),
    ])  # fmt: skip
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(HeadAsGet(app), port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield port, streamed
    server.should_exit = True
    thread.join(timeout=10)


def test_head_leaves_the_connection_usable_for_the_next_request(served):
    port, streamed = served
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for path in ("/file", "/json", "/events", "/file"):
        connection.request("HEAD", path)
        head = connection.getresponse()
        assert head.status == 200 and head.read() == b"", path
        connection.request("GET", "/json")  # the same connection, reused as clients pool it
        got = connection.getresponse()
        assert got.status == 200 and got.read() == b'{"ok":true}', path
    assert head.getheader("content-length") == "300000"  # GET's headers, no body
    ticks = len(streamed)
    time.sleep(0.2)
    assert len(streamed) == ticks  # the stream behind the HEAD stopped, unseen
    connection.close()


def test_a_server_speaking_asgi_2_4_still_has_its_streams_stopped_behind_a_head():
    """From ASGI 2.4 on, Starlette stops a stream only when a send fails, and HEAD drops the
    sends: the app is told 2.3, under which it stops at the disconnect it reads."""
    from capsight.server.head_requests import HeadAsGet

    seen = {}

    async def app(scope, receive, send):
        seen["spec"] = scope["asgi"]["spec_version"]
        await receive()  # the (empty) request body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x", "more_body": True})
        seen["after"] = await receive()

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    sent = []

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "HEAD", "asgi": {"version": "3.0", "spec_version": "2.4"}}
    anyio.run(HeadAsGet(app), scope, receive, send)
    assert seen == {"spec": "2.3", "after": {"type": "http.disconnect"}}
    assert sent[-1] == {"type": "http.response.body", "body": b"", "more_body": False}
