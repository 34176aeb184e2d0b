"""Guard the web page's own routes: small bodies, and only a job's outputs from its file route.

    >>> app.add_middleware(UiGate, job_dir=settings.job_dir, keyed=bool(settings.api_key))

Gradio's JSON routes under ``/ui/gradio_api/`` (``queue/join``, ``run/...``, ``cancel``, ...)
read and parse a whole body before their login check, and some have none: a caller without the
key could make the server parse ``--max-upload-mb`` of JSON (several GB of memory at 200 MB).
The page sends files through ``/ui/gradio_api/upload`` and only small JSON elsewhere, so a body
over ``UI_BODY_MAX`` is a ``413`` there, refused before it is read when its length is declared.

Gradio's login form (with an API key set) needs a user name, and answered a key sent without
one with a bare ``422`` the page did not show: only the key is asked for here, so an empty
user name is filled in (``LOGIN_USER``) before Gradio reads the form.

The page links to job files through Gradio's file route, which serves everything under the
folders it is allowed (the job folder): a job's upload (``<id>/input.mp4``), which the API
never hands back, would be served as well. Here only ``<id>/out/`` and ``<id>/thumbs/`` of the
job folder are; anything else in it is a ``404``.

A job file is served without the name Gradio gives it (``Content-Disposition: inline;
filename="report.html"``), which a browser prefers to the page's ``download`` name
("holiday-report.html"): every run had been saved as report.html. Behind an API key, a job file
asked for without the page's login (a bookmarked report) is a short HTML page that says to log
in, not Gradio's JSON ``401``.

Gradio's ``cancel`` route takes no login: behind an API key, anyone who read a session id (the
access log shows them) could have cancelled that user's runs. Here it answers ``401`` unless
the request carries the page's login cookie.
"""

from __future__ import annotations

import html
import json
import os
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from capsight.server.deps import route_path
from capsight.server.uploads import BodySizeLimit

UI = "/ui/"
UPLOAD_ROUTE = "/ui/gradio_api/upload"  # the page's files: the server's own upload limit
FILE_ROUTES = ("/ui/gradio_api/file=", "/ui/gradio_api/file/")  # (the second: Gradio's older form)
LOGIN_ROUTE = "/ui/login"
CANCEL_ROUTE = "/ui/gradio_api/cancel"  # Gradio checks no login there
LOGIN_USER = b"capsight"  # the user name a login with the key alone is given
UI_BODY_MAX = 2 * 2**20  # bytes: a class list of 5,000 names is ~100 KB of JSON
SERVED = frozenset({"out", "thumbs"})  # the job sub-folders the page links to


class UiGate:
    def __init__(self, app: ASGIApp, job_dir: str | os.PathLike, keyed: bool = False) -> None:
        self.app = app
        self.keyed = keyed  # an API key is set: the page's routes need its login
        self.small_bodies = BodySizeLimit(app, UI_BODY_MAX, f"this request is over "
                                          f"{UI_BODY_MAX // 2**20} MB, more than the page sends: a "
                                          "class list has at most 5,000 names")  # fmt: skip
        self.job_dir = os.path.realpath(job_dir)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = route_path(scope) if scope["type"] == "http" else ""
        asked = next((path[len(r) :] for r in FILE_ROUTES if path.startswith(r)), None)
        if not path.startswith(UI):
            await self.app(scope, receive, send)
        elif asked is not None and not self._served(asked):
            await _answer(send, 404, "not a file the page serves")
        elif asked is not None and self._in_jobs(asked):
            if self.keyed and not _logged_in(scope):
                await _log_in_first(scope, send)
            else:
                await self.app(scope, receive, _unnamed(send))
        elif path == UPLOAD_ROUTE:
            await self.app(scope, receive, send)
        elif self.keyed and path.rstrip("/") == CANCEL_ROUTE and not _logged_in(scope):
            await _answer(send, 401, "log in to the page first")
        elif path.rstrip("/") == LOGIN_ROUTE and scope["method"] == "POST":
            await self.small_bodies(*await _with_user_name(scope, receive), send)
        else:
            await self.small_bodies(scope, receive, send)

    def _in_jobs(self, asked: str) -> bool:
        """Whether a file ``_served`` lets through is a job's (inside the job folder)."""
        try:
            inside = os.path.relpath(os.path.realpath(asked), self.job_dir)
        except (OSError, ValueError):
            return False
        return not (inside == os.pardir or inside.startswith(os.pardir + os.sep))

    def _served(self, asked: str) -> bool:
        """Anything outside the job folder is Gradio's to judge (its upload cache); inside it,
        only a job's outputs and thumbnails. (A relative path is taken from the server's
        working folder, as Gradio takes it.)"""
        try:
            real = os.path.realpath(asked)
        except (OSError, ValueError):  # a NUL in it: nothing to serve
            return False
        try:
            inside = os.path.relpath(real, self.job_dir)
        except ValueError:  # on another drive (Windows): outside the job folder
            return True
        if inside == os.pardir or inside.startswith(os.pardir + os.sep):
            return True
        parts = Path(inside).parts  # (the job folder itself: none)
        return len(parts) >= 3 and parts[1] in SERVED


async def _with_user_name(scope: Scope, receive: Receive) -> tuple[Scope, Receive]:
    """(scope, receive) for a login form whose user name, when empty or missing, is
    ``LOGIN_USER``: the page's form (multipart, as Gradio's page sends it) or a urlencoded one.
    The form is a few hundred bytes, read whole here; a longer one passes as it came."""
    body, more, messages = b"", True, []
    while more and len(body) <= 64 * 2**10:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        more = message.get("more_body", False)
    kind = dict(scope.get("headers") or []).get(b"content-type", b"").split(b";")[0].strip()
    filled = None
    if not more and all(m["type"] == "http.request" for m in messages):
        if kind == b"multipart/form-data":  # an empty field: its header, a blank line, nothing
            empty = b'name="username"\r\n\r\n\r\n'
            if empty in body:
                filled = body.replace(empty, b'name="username"\r\n\r\n' + LOGIN_USER + b"\r\n")
        elif kind == b"application/x-www-form-urlencoded":
            fields = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
            if not any(name == "username" and value for name, value in fields):
                fields = [(n, v) for n, v in fields if n != "username"]
                filled = urlencode([*fields, ("username", LOGIN_USER.decode())]).encode()
    if filled is not None:
        messages = [{"type": "http.request", "body": filled, "more_body": False}]
        headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
        scope = {**scope, "headers": [*headers, (b"content-length", str(len(filled)).encode())]}

    async def replayed() -> Message:
        return messages.pop(0) if messages else await receive()

    return scope, replayed


def _logged_in(scope: Scope) -> bool:
    """Whether the request carries a login cookie of the page: one of the two Gradio sets, holding
    a token of the app it mounted (``app.state.ui_app``), as its other routes check."""
    page = getattr(getattr(scope.get("app"), "state", None), "ui_app", None)
    if page is None:
        return False
    cookies = Request(scope).cookies  # (Starlette's lenient parser, as Gradio reads them)
    names = (f"access-token-{page.cookie_id}", f"access-token-unsecure-{page.cookie_id}")
    return any(cookies.get(name) in page.tokens for name in names)


def _unnamed(send: Send) -> Send:
    """``send`` with the file's name taken out of its ``Content-Disposition`` (its type kept:
    inline or attachment). And without the request's ``Cookie`` (the login token): Gradio's
    answer to a ``Range`` request copies the request's headers into the response's."""

    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v.split(b";")[0].strip() if k.lower() == b"content-disposition" else v)
                       for k, v in message.get("headers", [])
                       if k.lower() not in (b"cookie", b"authorization")]  # fmt: skip
            message = {**message, "headers": headers}
        await send(message)

    return sending


async def _log_in_first(scope: Scope, send: Send) -> None:
    page = html.escape(f"{scope.get('root_path', '')}{UI}", quote=True)  # (behind a proxy's prefix)
    body = ("<!doctype html><meta charset=utf-8><title>capsight: log in first</title><p>This "
            f'server takes an API key. <a href="{page}">Log in on its page</a> with the key, '
            "then open this link again.</p>").encode()  # fmt: skip
    await send({
        "type": "http.response.start",
        "status": 401,
        "headers": [(b"content-type", b"text/html; charset=utf-8"),
                    (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


async def _answer(send: Send, status: int, error: str) -> None:
    body = json.dumps({"error": error}).encode()
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})
