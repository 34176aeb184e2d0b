"""Answer ``HEAD`` wherever ``GET`` is answered, with GET's status and headers and no body.

    >>> app.add_middleware(HeadAsGet)

FastAPI routes a ``HEAD`` only to routes that declare it, so link checkers and monitors that
ask ``HEAD /v1/models`` or ``HEAD /v1/jobs/{id}/report`` got ``405``. This ASGI middleware
runs such a request as a ``GET`` and sends no body. The request reads as disconnected once its
(empty) body has been read, so a stream (a job's events) ends at once instead of running on
unseen.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
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
