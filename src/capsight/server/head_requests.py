"""Answer ``HEAD`` wherever ``GET`` is answered, with GET's status and headers and no body.

    >>> app.add_middleware(HeadAsGet)

FastAPI routes a ``HEAD`` only to routes that declare it, so link checkers and monitors that
ask ``HEAD /v1/models`` or ``HEAD /v1/jobs/{id}/report`` got ``405``. This ASGI middleware
runs such a request as a ``GET`` and sends no body: GET's first body message is answered with
the end of the (empty) body, and the rest is dropped. From then on the request reads as
disconnected, so a stream (a job's events) ends at once instead of running on unseen. (Read as
disconnected any earlier, a file response gave up halfway and left the connection broken for
the client's next request.) A ``405``'s ``Allow`` header names HEAD wherever it names GET.
"""

from __future__ import annotations

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class HeadAsGet:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] != "HEAD":
            await self.app(scope, receive, _allowing_head(send, scope))
            return
        read, answered = False, anyio.Event()

        async def request_then_gone() -> Message:
            nonlocal read
            if not read:
                read = True
                return await receive()
            await answered.wait()  # the response is whole: nobody is listening now
            return {"type": "http.disconnect"}

        async def without_body(message: Message) -> None:
            # (pathsend: a file response where the server offers to send the file itself)
            if message["type"] not in ("http.response.body", "http.response.pathsend"):
                await send(message)
            elif not answered.is_set():
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                answered.set()

        # ASGI 2.3 for the app, whatever the server speaks: from 2.4 on, Starlette's streams stop
        # only when a send fails, and these sends are dropped, so they would run on unseen;
        # under 2.3 they stop at the disconnect that request_then_gone reads out.
        asgi = {**scope.get("asgi", {}), "spec_version": "2.3"}
        await self.app({**scope, "method": "GET", "asgi": asgi}, request_then_gone, without_body)


METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowing_head(send: Send, scope: Scope) -> Send:
    """``send`` with a 405's ``Allow`` header naming every method some route of the path takes
    (Starlette names the first matching route's: ``/v1/jobs/{id}`` said GET, HEAD, and its
    DELETE is a route of its own), and HEAD where GET is (this middleware answers it)."""

    async def patched(message: Message) -> None:
        if message["type"] == "http.response.start" and message.get("status") == 405:
            headers = []
            for name, value in message.get("headers", []):
                methods = {m.strip() for m in value.decode("latin-1").split(",")} | _path_methods(
                    scope
                )
                if name.lower() == b"allow":
                    methods |= {"HEAD"} if "GET" in methods else set()
                    ordered = sorted(methods, key=lambda m: (METHOD_ORDER + (m,)).index(m))
                    value = ", ".join(ordered).encode("latin-1")
                headers.append((name, value))
            message = {**message, "headers": headers}
        await send(message)

    return patched


def _path_methods(scope: Scope) -> set[str]:
    """The methods some route of the app takes at the request's path (each method asked of
    every route: FastAPI wraps included routers in routes that list no methods of their own).
    Mounted apps (the page under /ui) take any method as far as matching goes: left out."""
    from starlette.routing import Match, Mount

    routes = [route for route in getattr(getattr(scope.get("app"), "router", None), "routes", ())
              if not isinstance(route, Mount)]  # fmt: skip
    return {method for method in METHOD_ORDER if method != "HEAD"
            and any(route.matches({**scope, "method": method})[0] == Match.FULL for route in routes)}  # fmt: skip
