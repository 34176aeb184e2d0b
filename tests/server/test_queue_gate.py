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

    app = SimpleNamespace(
        state=SimpleNamespace(jobs=_Jobs(full), settings=SimpleNamespace(api_key=api_key))
    )
    scope = {"type": "http", "method": "POST", "path": path, "app": app, "headers": list(headers)}
    asyncio.run(QueueGate(inner)(scope, receive, send))
    return reached, read, sent


def test_a_full_queue_answers_503_without_reading_the_upload():
    reached, read, sent = _call("/v1/videos", full=True)
    assert reached == [] and read == []  # neither the route nor the body
    start = sent[0]
    assert start["status"] == 503 and (b"retry-after", b"42") in start["headers"]
    assert b"queue is full" in sent[1]["body"]


def test_room_in_the_queue_and_other_paths_go_on_to_the_app():
    assert _call("/v1/videos", full=False)[0] == ["/v1/videos"]
    assert _call("/v1/captions", full=True)[0] == ["/v1/captions"]
    reached, _, sent = _call(
        "/get_video_captions", full=True, api_key="k", headers=[(b"x-api-key", b"k")]
    )
    assert reached == [] and sent[0]["status"] == 503


def test_an_upload_without_the_key_answers_401_without_reading_it():
    """The key was a route dependency, checked once the whole upload had been read: anyone
    without it could make the server take in --max-upload-mb a request."""
    for path in ("/get_video_captions", "/v1/captions", "/v1/classify", "/get_image_caption"):
        # the queue's state untold
        reached, read, sent = _call(path, full=True, api_key="a-long-key")
        assert reached == [] and read == [] and sent[0]["status"] == 401
        assert (b"www-authenticate", b"ApiKey") in sent[0]["headers"]
        assert b"this server needs an API key: send it in the X-API-Key header" in sent[1]["body"]
    _, _, sent = _call(
        "/v1/captions", full=False, api_key="a-long-key", headers=[(b"x-api-key", b"other")]
    )
    assert b"is not this server's" in sent[1]["body"]
    assert _call("/v1/captions", full=False, api_key="a-long-key",
                 headers=[(b"authorization", b"Bearer a-long-key")])[0] == ["/v1/captions"]  # fmt: skip
    assert _call("/v1/captions", full=False, api_key=None)[0] == ["/v1/captions"]  # no key set
