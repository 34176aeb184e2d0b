"""Refuse a video upload with ``503`` before its body is read when the job queue is full.

    >>> app.add_middleware(QueueGate)

FastAPI reads a multipart body before the route runs, so the route's own check
(``JobManager.reserve``) comes only after the whole video has arrived. This ASGI middleware
looks at the queue as the request starts: a full queue answers at once, with ``Retry-After``,
and the client need not send the rest. Requests that would be refused anyway for a missing or
wrong API key go on to the route, which answers ``401`` (the queue's state is not told to
them).
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from capsight.server.deps import api_key_matches
from capsight.server.jobs import QueueFull

GATED = frozenset({"/v1/videos", "/get_video_captions"})  # the POSTs that queue a video job


class QueueGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] in GATED:
            state = scope["app"].state
            jobs, settings = getattr(state, "jobs", None), getattr(state, "settings", None)
            if jobs is not None and settings is not None and _authorised(scope, settings.api_key):
                try:
                    jobs.reserve()
                except QueueFull as full:
                    await _send_503(send, str(full), full.retry_after_s)
                    return
        await self.app(scope, receive, send)


def _authorised(scope: Scope, expected: str | None) -> bool:
    return expected is None or api_key_matches(Headers(scope=scope), expected)


async def _send_503(send: Send, message: str, retry_after_s: int) -> None:
    body = json.dumps({"error": message}).encode()
    await send({
        "type": "http.response.start",
        "status": 503,
        "headers": [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(retry_after_s).encode()),
            (b"connection", b"close"),  # the body the client may still be sending is not read
        ],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
