"""Answer ``HEAD`` wherever ``GET`` is answered, with GET's status and headers and no body.

    >>> app.add_middleware(HeadAsGet)

FastAPI routes a ``HEAD`` only to routes that declare it, so link checkers and monitors that
ask ``HEAD /v1/models`` or ``HEAD /v1/jobs/{id}/report`` got ``405``. This ASGI middleware
runs such a request as a ``GET`` and sends no body. The request reads as disconnected once its
(empty) body has been read, so a stream (a job's events) ends at once instead of running on
unseen. A ``405``'s ``Allow`` header names HEAD wherever it names GET.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "HEAD":
            await self.app(scope, receive, _allowing_head(send))
            return
        read = False

        async def request_then_gone() -> Message:
            nonlocal read
            if read:
                return {"type": "http.disconnect"}
            read = True
            return await receive()

        async def without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        await self.app({**scope, "method": "GET"}, request_then_gone, without_body)


def _allowing_head(send: Send) -> Send:
    """``send`` with a 405's ``Allow`` header naming HEAD too where it names GET (this
    middleware answers it there)."""

    async def patched(message: Message) -> None:
        if message["type"] == "http.response.start" and message.get("status") == 405:
            headers = []
            for name, value in message.get("headers", []):
                methods = [m.strip() for m in value.decode("latin-1").split(",")]
                if name.lower() == b"allow" and "GET" in methods and "HEAD" not in methods:
                    value = ", ".join([*methods, "HEAD"]).encode("latin-1")
                headers.append((name, value))
            message = {**message, "headers": headers}
        await send(message)

    return patched
