"""Uploads: a request-size limit, file types told by content, and names that never become paths.

    >>> app.add_middleware(BodySizeLimit, max_bytes=200 * 2**20)   # 413 past 200 MB
    >>> app.add_middleware(StalledUploads)                          # 408 after 60 s of silence
    >>> upload_refusal("notes.jpg", b"plain words", "image")
    'notes.jpg: not an image (it looks like text); send JPEG, PNG, WebP, GIF, BMP or TIFF'

The client's file name is only ever *displayed* (``display_name``); files are stored under
server-chosen names (``input.<detected extension>``) inside a job's own folder.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import unicodedata

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from capsight.io.sniff import describe_content, sniff_image, sniff_video

log = logging.getLogger("capsight.server")


class UploadTooLarge(Exception):
    """Raised from ``receive`` when the body passes the limit; the middleware answers 413."""


def too_large_message(max_bytes: int) -> str:
    return (
        f"upload is larger than this server's {max_bytes / 2**20:.3g} MiB limit; "
        "send a smaller file (or start the server with a larger --max-upload-mb, "
        "CAPSIGHT_MAX_UPLOAD_MB)"
    )


class BodySizeLimit:
    """ASGI middleware: answer 413 (JSON, or the upload form's page to a browser that posted
    it) for request bodies over ``max_bytes``.

    A declared Content-Length over the limit is refused before a byte is read; a chunked body is
    counted as it streams and cut off the moment it passes the limit, so memory and disk stay
    bounded whatever the client claims.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, message: str | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = message or too_large_message(max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _send_refusal(send, 413, self.message, scope)
            return

        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise UploadTooLarge
            return message

        if await _cut_off(self.app, scope, limited_receive, send, UploadTooLarge):
            await _send_refusal(send, 413, self.message, scope)


async def _cut_off(
    app: ASGIApp, scope: Scope, receive: Receive, send: Send, cut: type | tuple[type, ...]
) -> bool:
    """Run ``app`` on a ``receive`` that raises ``cut`` to stop reading the body: True when it
    did so before a response started, for the caller to answer instead. Whatever the app makes
    of the cut-off body (FastAPI's 400, "There was an error parsing the body") is dropped; an
    exception the cut did not cause (a bug met while the body was being read) is logged, as the
    client's answer is still the caller's."""
    was_cut = False
    started = False

    async def watched_receive() -> Message:
        nonlocal was_cut
        try:
            return await receive()
        except cut:
            was_cut = True
            raise

    async def tracked_send(message: Message) -> None:
        nonlocal started
        if was_cut:
            return
        if message["type"] == "http.response.start":
            started = True
        await send(message)

    try:
        await app(scope, watched_receive, tracked_send)
    except Exception as exc:
        if not was_cut:
            raise
        if not _comes_from(exc, cut):
            log.error("%s %s: an error after the body was cut off", scope.get("method"),
                      scope.get("path"), exc_info=exc)  # fmt: skip
    return was_cut and not started


def _comes_from(exc: BaseException, cut: type | tuple[type, ...]) -> bool:
    """Whether ``exc`` is ``cut``, raised from it (``raise ... from``), or a group of such. Not
    an error met while handling it (its ``__context__`` only): that is a bug to be seen."""
    if isinstance(exc, cut):
        return True
    if exc.__cause__ is not None and _comes_from(exc.__cause__, cut):
        return True
    inner = getattr(exc, "exceptions", None)  # an ExceptionGroup (anyio's task groups)
    return bool(inner) and all(_comes_from(e, cut) for e in inner)


STALL_S = 60.0  # a body that sends no byte for this long is dropped


class UploadStalled(Exception):
    """Raised from ``receive`` when a body stops arriving; the middleware answers 408."""


class UploadStopped(Exception):
    """Raised from ``receive`` when the server stops while a body is still arriving: 503."""


STOP_POLL_S = 0.25  # how often a body being waited for looks at the server's stopping event


class StalledUploads:
    """ASGI middleware: answer 408 and close the connection when a request body sends nothing
    for ``stall_s`` seconds, and 503 (Retry-After) when the server stops (``stopping`` set)
    while a body is still arriving.

    uvicorn waits for a body as long as the client keeps the connection open, and the
    ``--request-timeout`` clock starts only once the body is read, so a client that declared a
    large upload and then stopped would hold its connection, and its form parser, forever. Only
    the body is timed: once it is complete, waiting for the client to hang up (a live event
    stream) is left alone. An upload still arriving on SIGTERM had held the shutdown for
    uvicorn's ~10 s of grace and then got a plain-text 500 (an audit, 2026-12-08).
    """

    def __init__(
        self, app: ASGIApp, stall_s: float = STALL_S, stopping: threading.Event | None = None
    ) -> None:
        self.app = app
        self.stall_s = stall_s
        self.stopping = stopping

    async def _next(self, receive: Receive, uploading: bool) -> Message:
        """The next message within ``stall_s``, looking at ``stopping`` as it waits for the
        body of an upload (``uploading``: a request that declared one)."""
        if self.stopping is None or not uploading:
            try:
                return await asyncio.wait_for(receive(), self.stall_s)
            except TimeoutError:
                raise UploadStalled from None
        waiting = asyncio.ensure_future(receive())
        deadline = asyncio.get_running_loop().time() + self.stall_s
        try:
            while True:
                if self.stopping.is_set():
                    raise UploadStopped
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise UploadStalled
                done, _ = await asyncio.wait({waiting}, timeout=min(STOP_POLL_S, left))
                if done:
                    return waiting.result()
        finally:
            if not waiting.done():
                waiting.cancel()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        body_done = False
        why: type | None = None
        # (a GET, an event stream: no body to cut, and its last event is still to be sent)
        uploading = bool(_content_length(scope)) or _chunked(scope)

        async def timed_receive() -> Message:
            nonlocal body_done, why
            if body_done:
                return await receive()
            try:
                message = await self._next(receive, uploading)
                if (uploading and message.get("more_body") and self.stopping is not None
                        and self.stopping.is_set()):  # fmt: skip
                    raise UploadStopped  # (a body that keeps coming, a chunk at a time)
            except (UploadStalled, UploadStopped) as exc:
                why = type(exc)
                raise
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        if await _cut_off(self.app, scope, timed_receive, send, (UploadStalled, UploadStopped)):
            if why is UploadStopped:
                from capsight.server.deps import RESTART_RETRY_S, STOPPING

                await _send_refusal(send, 503, STOPPING, scope,
                                    [(b"retry-after", str(RESTART_RETRY_S).encode())])  # fmt: skip
                return
            message = (
                f"the upload stalled: no data for {self.stall_s:g} s; "
                "check the connection and send it again"
            )
            await _send_refusal(send, 408, message, scope)


def _chunked(scope: Scope) -> bool:
    """Whether the request's body comes in chunks (no Content-Length)."""
    return any(key == b"transfer-encoding" and b"chunked" in value.lower()
               for key, value in scope.get("headers", []))  # fmt: skip


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_refusal(
    send: Send, status: int, message: str, scope: Scope, headers: list | None = None
) -> None:
    """A middleware's refusal (413, 408) that closes the connection, as JSON; or as the upload
    form's page with the message above it, to a browser that posted that form (as every other
    error of the form's is)."""
    from starlette.requests import Request

    from capsight.server.upload_form import form_page, from_the_form

    if from_the_form(Request(scope)):
        body, kind = form_page(message, scope).encode(), b"text/html; charset=utf-8"
    else:
        body, kind = json.dumps({"error": message}).encode(), b"application/json"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", kind),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


_WANTED_FORMATS = {
    "image": "JPEG, PNG, WebP, GIF, BMP or TIFF",
    "video": "MP4, MOV, MKV, WebM, AVI or another container FFmpeg reads",
}


def upload_refusal(name: str, head: bytes, wanted: str) -> str | None:
    """Why an upload starting with ``head`` is not a ``wanted`` ("image"/"video"), in one line.

    None when it looks like one. An empty file and a file of another kind (a PDF, text, an
    image sent as a video...) are told apart, in the words the API's 400 and 415 answers use.
    """
    if not head:
        return f"{name}: file is empty"
    sniff = sniff_image if wanted == "image" else sniff_video
    if sniff(head) is not None:
        return None
    article = "an" if wanted[0] in "aeiou" else "a"
    return (
        f"{name}: not {article} {wanted} (it looks like {describe_content(head)}); "
        f"send {_WANTED_FORMATS[wanted]}"
    )


_UNSAFE = re.compile(r"[^\w.\- ()\[\]+,]")


def example_name(filename: str | None, fallback: str = "upload") -> str:
    """``display_name`` of an example photo with its class folder kept ("cat/1.jpg"): the
    photo alone ("1.jpg") does not say which of the classes' photos was refused."""
    parts = (filename or "").replace("\\", "/").rstrip("/").split("/")
    if len(parts) < 2:
        return display_name(filename, fallback)
    return f"{display_name(parts[-2], '')}/{display_name(parts[-1], fallback)}".lstrip("/")


# How a browser or curl writes '"', CR and LF in a multipart file name (the WHATWG HTML rule),
# which the form parser leaves as they came: 'my "best".mp4' had been shown "my _22best_22.mp4".
_FORM_ESCAPES = {"%22": '"', "%0D": "\r", "%0A": "\n"}


def display_name(filename: str | None, fallback: str = "upload") -> str:
    """A client's file name made safe to show (never used as a path): base name, 120 chars."""
    if not filename:
        return fallback
    for escape, character in _FORM_ESCAPES.items():  # browsers' and curl's, undone
        filename = filename.replace(escape, character)
    name = unicodedata.normalize("NFC", filename).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    return name[:120] or fallback
