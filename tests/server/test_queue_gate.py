"""QueueGate: a full video queue answers 503 before a byte of the upload is read."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

from capsight.server.jobs import QueueFull
from capsight.server.queue_gate import QueueGate


class _Jobs:
    def __init__(self, full: bool) -> None:
        self.full = full

    def reserve(self) -> None:
        if self.full:
            raise QueueFull(42)


def _call(path: str, full: bool, api_key: str | None = None, headers=()) -> tuple[list, list, list]:
    reached, read, sent = [], [], []

    async def inner(scope, receive, send):
        reached.append(scope["path"])

    async def receive():
        read.append(1)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    app = SimpleNamespace(state=SimpleNamespace(jobs=_Jobs(full), settings=SimpleNamespace(api_key=api_key)))
    scope = {"type": "http", "method": "POST", "path": path, "app": app, "headers": list(headers)}
    asyncio.run(QueueGate(inner)(scope, receive, send))
    return reached, read, sent


def test_a_full_queue_answers_503_without_reading_the_upload():
    reached, read, sent = _call("/v1/videos", full=True)
    assert reached == [] and read == []  # neither the route nor the body
    start = sent[0]
    assert start["status"] == 503 and (b"retry-after", b"42") in start["headers"]
    assert b"queue is full" in sent[1]["body"]


def test_room_in_the_queue_other_paths_and_unauthorised_requests_go_on_to_the_app():
    assert _call("/v1/videos", full=False)[0] == ["/v1/videos"]
    assert _call("/v1/captions", full=True)[0] == ["/v1/captions"]
    # Without the server's key the route answers 401; the queue's state is not told.
    assert _call("/get_video_captions", full=True, api_key="k")[0] == ["/get_video_captions"]
    reached, _, sent = _call("/get_video_captions", full=True, api_key="k", headers=[(b"x-api-key", b"k")])
    assert reached == [] and sent[0]["status"] == 503
