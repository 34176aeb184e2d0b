"""A job's files, answering a browser's revalidation with ``304`` and a bad ``Range`` in JSON.

    return JobFileResponse(path, media_type="image/png")

Starlette's ``FileResponse`` sends an ``ETag`` and a ``Last-Modified`` but sends the whole
file again when a client asks ``If-None-Match`` or ``If-Modified-Since`` with them; and it
answers a ``Range`` it cannot serve with a plain-text ``400`` or an empty ``416``, where every
other error of the API is JSON ``{"error": ...}``. A job's outputs never change once written,
so a revalidation that matches gets ``304 Not Modified`` with no body; a Range past the end is
a JSON ``416``, and one that does not parse (another unit than bytes) is ignored, as RFC 9110
says: the whole file.
"""

from __future__ import annotations

import os
import re
from datetime import UTC
from email.utils import parsedate_to_datetime

import anyio
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.datastructures import Headers
from starlette.responses import MalformedRangeHeader, RangeNotSatisfiable
from starlette.types import Receive, Scope, Send

# The OpenAPI entry of the routes that answer with this response.
NOT_MODIFIED = {
    304: {
        "description": "Not Modified: the ETag sent in If-None-Match (or the date in "
        "If-Modified-Since) is still the file's"
    }
}

# The headers a 304 repeats from the 200 it stands for (RFC 9110, 15.4.5).
KEPT_ON_304 = ("etag", "last-modified", "cache-control", "content-location", "vary")


def saved_name(video: str, file: str) -> str:
    """The name a job's output is saved under: the video's stem before it ("holiday-report.html"),
    so two videos' reports do not collide in a downloads folder. The stem keeps letters (any
    script: Starlette sends those as ``filename*``), digits, ".", "-" and "_", at most 60."""
    stem = os.path.splitext(os.path.basename(video.replace("\\", "/")))[0]
    stem = re.sub(r"[^\w.-]+", "_", stem).strip("._")[:60]
    return f"{stem}-{file}" if stem else file


class JobFileResponse(FileResponse):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        disposition = self.headers.get("content-disposition", "")
        if "filename*=" in disposition and "filename=" not in disposition.replace("filename*=", ""):
            # Starlette sends a non-ASCII name as filename* alone; RFC 6266 (4.3) asks for a
            # plain filename= first, for clients that read no filename*.
            plain = re.sub(r"[^A-Za-z0-9._-]", "_", self.filename or "download")
            kind, _, encoded = disposition.partition("; ")
            self.headers["content-disposition"] = f'{kind}; filename="{plain}"; {encoded}'

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or self.status_code != 200
        ):
            await super().__call__(scope, receive, send)
            return
        if self.stat_result is None:  # FileResponse's own check for a missing file then runs
            try:
                self.stat_result = await anyio.to_thread.run_sync(os.stat, self.path)
            except OSError:
                await super().__call__(scope, receive, send)
                return
            self.set_stat_headers(self.stat_result)
        request = Headers(scope=scope)
        if self._not_modified(request):
            kept = {k: v for k, v in self.headers.items() if k in KEPT_ON_304}
            await Response(status_code=304, headers=kept)(scope, receive, send)
            return
        ignore, answer = self._judge_range(request)
        if ignore:  # RFC 9110, 14.2: a Range it cannot read is ignored, the whole file sent
            scope = {**scope, "headers": [(k, v) for k, v in scope["headers"] if k != b"range"]}
        await (answer or super().__call__)(scope, receive, send)

    def _judge_range(self, request: Headers) -> tuple[bool, Response | None]:
        """(whether to drop the Range, which Starlette would answer with a plain-text 400: a
        unit other than bytes, or one that does not parse; a JSON 416 for one past the end)."""
        http_range = request.get("range")
        if http_range is None:
            return False, None
        size = self.stat_result.st_size
        try:
            self._parse_range_header(http_range, size)
        except MalformedRangeHeader:
            return True, None
        except RangeNotSatisfiable:
            if_range = request.get("if-range")
            if if_range is not None and not self._should_use_range(if_range):
                return False, None  # a changed file: Starlette sends it whole
            return False, JSONResponse(
                {"error": f"the Range asked for lies past the end of the file ({size} bytes)"},
                status_code=416,
                headers={"Content-Range": f"bytes */{size}"},
            )
        return False, None

    def _not_modified(self, request: Headers) -> bool:
        if_none_match = request.get("if-none-match")
        if if_none_match is not None:  # it takes precedence over If-Modified-Since
            ours = _opaque(self.headers["etag"])
            tags = [t.strip() for t in if_none_match.split(",")]
            return "*" in tags or any(_opaque(t) == ours for t in tags)
        since = request.get("if-modified-since")
        if since is None:
            return False
        try:
            asked = parsedate_to_datetime(since)
            modified = parsedate_to_datetime(self.headers["last-modified"])
        except (TypeError, ValueError):
            return False  # an unreadable date is ignored, as RFC 9110 says
        if asked.tzinfo is None:  # asctime's form has no zone: it is GMT (RFC 9110, 5.6.7)
            asked = asked.replace(tzinfo=UTC)
        return modified <= asked


def _opaque(tag: str) -> str:
    """An entity tag without its weak marker: If-None-Match compares tags weakly."""
    return tag.removeprefix("W/")
