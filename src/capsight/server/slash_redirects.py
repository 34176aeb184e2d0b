"""Say where a trailing-slash redirect goes, in the API's JSON form.

    >>> app.add_middleware(SaidRedirects)

Starlette answers a path with a slash too many or too few (``POST /v1/captions/``) with a
``307`` to the path that exists, and no body: ``curl`` without ``-L`` printed nothing and
exited 0, as if the request had worked. The redirect stays (clients that follow it get their
answer); its body now says where it points: ``{"error": "no such endpoint: POST
/v1/captions/; the endpoint is /v1/captions (this answer redirects there)"}``.
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class SaidRedirects:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body: bytes | None = None  # the body to send instead of the redirect's empty one

        async def saying_where(message: Message) -> None:
            nonlocal body
            if message["type"] == "http.response.start" and message["status"] in (307, 308):
                headers = dict(message.get("headers") or [])
                target = urlsplit(headers.get(b"location", b"").decode("latin-1")).path
                if headers.get(b"content-length") == b"0" and target:
                    error = (f"no such endpoint: {scope['method']} {scope['path']}; the endpoint "
                             f"is {target} (this answer redirects there)")  # fmt: skip
                    body = json.dumps({"error": error}).encode()
                    kept = [(k, v) for k, v in message["headers"]
                            if k not in (b"content-length", b"content-type")]  # fmt: skip
                    message = {**message, "headers": [*kept, (b"content-type", b"application/json"),
                                                      (b"content-length", str(len(body)).encode())]}  # fmt: skip
            elif message["type"] == "http.response.body" and body is not None:
                message, body = {"type": "http.response.body", "body": body}, None
            await send(message)

        await self.app(scope, receive, saying_where)
