"""Refuse an upload before its body is read: ``401`` without the server's API key, ``503`` for
a video when the job queue is full.

    >>> app.add_middleware(QueueGate)

FastAPI reads a multipart body before the route runs, so the route's own checks (the key's
dependency, ``JobManager.reserve``) come only after the whole upload has arrived: anyone
without the key could make the server receive and spool up to --max-upload-mb a request. This
ASGI middleware answers as the request starts, and the client need not send the rest. The
queue's state is told only to requests that carry the key.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from capsight.server.deps import api_key_matches, missing_key_message, route_path
from capsight.server.jobs import QueueFull

GATED = frozenset({"/v1/videos", "/get_video_captions"})  # the POSTs that queue a video job
UPLOADS = GATED | {
    "/v1/captions",
    "/v1/classify",
    "/v1/classifiers",
    "/get_captions",
    "/get_image_caption",
}


class QueueGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and route_path(scope) in UPLOADS:
            state = scope["app"].state
            jobs, settings = getattr(state, "jobs", None), getattr(state, "settings", None)
            if settings is not None and not _authorised(scope, settings.api_key):
                await _send_refusal(send, 401, missing_key_message(Headers(scope=scope)),
                                    [(b"www-authenticate", b"ApiKey")], scope)  # fmt: skip
                return
            if jobs is not None and route_path(scope) in GATED:
                try:
                    jobs.reserve()
                except QueueFull as full:
                    await _send_refusal(
                        send,
                        503,
                        str(full),
                        [(b"retry-after", str(full.retry_after_s).encode())],
                        scope,
                    )
                    return
        await self.app(scope, receive, send)


def _authorised(scope: Scope, expected: str | None) -> bool:
    return expected is None or api_key_matches(Headers(scope=scope), expected)


async def _send_refusal(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]], scope: Scope
) -> None:
    """``{"error": message}``; or the upload form's page with the message above it, to a
    browser that posted that form (it had read a JSON 401)."""
    from starlette.requests import Request

    from capsight.server.upload_form import form_page, from_the_form

    if from_the_form(Request(scope)):
        body, kind = form_page(message, scope).encode(), b"text/html; charset=utf-8"
    else:
        body, kind = json.dumps({"error": message}).encode(), b"application/json"
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [
            (b"content-type", kind),
            (b"content-length", str(len(body)).encode()),
            *headers,
            (b"connection", b"close"),  # the body the client may still be sending is not read
        ],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
