"""Every error the API answers is JSON ``{"error": "<one line saying what to do>"}``.

    >>> install_error_handlers(app)
    >>> client.post("/v1/captions").json()
    {'error': 'images: field required'}

``CapsightError`` (bad input the library caught) becomes 400, or 422 for an option out of range
or an unknown model; request validation 422 (a body that is not a form is refused with 415 by
``deps.form_body`` first; a multipart body with no complete part, cut off, is 400); unknown
routes 404; bugs 500 without a traceback. A browser that posted the original's upload form
(``GET /get_captions``) gets that page back with the error above the form, not JSON.
"""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware

from capsight.errors import CapsightError, InvalidParameter, ModelNotFound
from capsight.server.upload_form import form_page, from_the_form

log = logging.getLogger("capsight.server")


ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string", "description": "What went wrong and what to do"}},
    "required": ["error"],
}


def error_responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI ``responses=`` entries documenting the JSON error body for ``codes``."""
    text = {
        400: "Unreadable input (corrupt image or video)",
        401: "Missing or wrong API key",
        404: "No such job or resource",
        410: "The job was deleted (DELETE /v1/jobs/{id}) while the request waited for it",
        413: "Upload larger than the server's limit",
        415: "File content is not an accepted type",
        416: "The Range asked for lies past the end of the file",
        422: "A missing field or an option out of range",
        503: "Busy (queue full, or models still loading); see Retry-After",
        504: "The request took longer than the server's time limit",
    }
    # An explicit JSON content entry, so routes whose success is text or a file still document
    # their errors as JSON.
    content = {"application/json": {"schema": ERROR_SCHEMA}}
    return {c: {"description": text.get(c, "Error"), "content": content} for c in codes}


# The OpenAPI header of a response that points at a video job (a 202, a 504).
JOB_LOCATION = {
    "Location": {"description": "The job to poll: /v1/jobs/{id}", "schema": {"type": "string"}}
}


class ApiError(StarletteHTTPException):
    """An HTTP error with a user-facing message and optional headers (e.g. Retry-After)."""

    def __init__(self, status_code: int, message: str, headers: dict | None = None) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)


def status_for(exc: CapsightError) -> int:
    return 422 if isinstance(exc, (InvalidParameter, ModelNotFound)) else 400


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def validation_message(
    exc: RequestValidationError, sent_empty: frozenset[str] = frozenset()
) -> str:
    """One line for all of a request's invalid fields; ``sent_empty`` names form fields that
    came with no text (FastAPI reads ``-F classes=`` as a field not sent at all)."""
    parts = []
    for err in exc.errors():
        loc = [str(x) for x in err.get("loc", ()) if x not in ("body", "query", "path", "form")]
        where = ".".join(loc) or "request"
        msg = err.get("msg", "invalid")
        if err.get("type") == "missing":
            msg = (
                "sent empty; give it a value"
                if loc[:1] and loc[0] in sent_empty
                else "field required"
            )
        elif _not_finite(err.get("input")):
            msg = "Input should be a finite number"  # not "less than or equal to 5" for nan
        elif str(err.get("ctx", {}).get("error", "")).startswith("Expected UploadFile"):
            msg = "expected a file upload"  # a plain form field where a file belongs
        elif isinstance(err.get("input"), StarletteUploadFile):  # curl -F classes=@mine.txt
            field = loc[0] if loc else where  # (a list's item: template.0, sent as -F template=)
            msg = (
                f"sent as a file, where text belongs; curl -F '{field}=<FILE' sends a file's "
                "text as the field"
            )
        elif err.get("type") in _RANGES and isinstance(err.get("input"), str | int | float):
            # the value sent, as the CLI and the Python API say it ("--beam must be between 1
            # and 20, got 0"): a range alone left a client to guess which of its values it was
            sent = str(err["input"])
            msg = f"{msg}, got {sent if len(sent) <= 40 else sent[:37] + '...'}"
        parts.append(f"{where}: {msg}")
    return _one_line("; ".join(parts) or "invalid request")


_RANGES = ("greater_than", "greater_than_equal", "less_than", "less_than_equal")


def _not_finite(value) -> bool:
    """True for nan and ±inf, as a float or as the text a form or query string carries (not
    for a number too large for a float, "1e400": its range is the message it needs)."""
    if isinstance(value, str):
        return value.strip().lower().lstrip("+-") in ("nan", "inf", "infinity")
    return isinstance(value, float) and not math.isfinite(value)


CUT_OFF = (
    "the multipart body holds no complete part (empty, or cut off before its closing "
    "boundary); send it as curl -F does"
)


async def _cut_off_multipart(request: Request, exc: RequestValidationError) -> bool:
    """Only missing form fields, of a multipart body with bytes in it whose parse found no
    part: a client that sent the file but not the closing boundary gets this, not "field
    required" for the file it sent."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    headers = request.headers
    has_body = headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
    if kind != "multipart/form-data" or not has_body or request.method not in ("POST", "PUT"):
        return False
    errors = exc.errors()
    if not errors or any(
        e.get("type") != "missing" or tuple(e.get("loc", ()))[:1] != ("body",) for e in errors
    ):
        return False
    try:
        form = await request.form()  # parsed already, for the endpoint's fields
    except Exception:  # noqa: BLE001 (unparseable: the endpoint's own answer stands)
        return False
    return len(form) == 0


async def _empty_form_fields(request: Request) -> frozenset[str]:
    """The form fields a request sent with no text in them (``-F classes=``)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return frozenset()
    try:
        form = await request.form()  # parsed already, for the endpoint's fields
    except Exception:  # noqa: BLE001 (unparseable: the plain message stands)
        return frozenset()
    return frozenset(k for k, v in form.multi_items() if isinstance(v, str) and not v.strip())


def _answer(request: Request, message: str, status: int, headers=None) -> Response:
    """``{"error": message}``; or, to a browser that posted a form page, that page again with
    the message above the form (the same status and headers)."""
    if from_the_form(request):
        return HTMLResponse(form_page(message, request.scope), status_code=status, headers=headers)
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(CapsightError)
    async def _capsight_error(request: Request, exc: CapsightError) -> Response:
        return _answer(request, _one_line(str(exc)), status_for(exc))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        if await _cut_off_multipart(request, exc):  # not a missing field: no whole part
            return _answer(request, CUT_OFF, 400)
        empty = await _empty_form_fields(request)
        return _answer(request, validation_message(exc, empty), 422)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}; see /docs"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}; see /docs"
        elif exc.status_code == 400 and message.startswith(("Too many files.", "Too many fields.")):
            from capsight.server.deps import parser_limit  # (deps imports this module)

            if (instead := parser_limit(request, message)) is not None:
                return _answer(request, instead[1], instead[0])
            if message.startswith("Too many fields."):  # Starlette's words named no field
                from capsight.server.deps import declared

                names = sorted({p.alias for p in declared(request, "body_params")})
                message = ("over 1,000 form fields in one request; send each option once"
                           + (f" ({', '.join(names)})" if names else ""))  # fmt: skip
        elif exc.status_code == 400 and message.startswith("Part exceeded maximum size of"):
            # Starlette's limit on one text field (files have none): a class list of 5,000
            # names of 200 letters fits; one of long non-ASCII names may not.
            return _answer(request, "a text field is over 1 MiB, the most one form field may hold "
                                    "(files are not limited by it); send a shorter value", 413)  # fmt: skip
        elif exc.status_code == 400 and message == "Missing boundary in multipart.":
            message = ("the Content-Type multipart/form-data names no boundary (a header set by "
                       "hand?); let the client write it, as curl -F does")  # fmt: skip
        elif exc.status_code == 400 and message == "Invalid multipart data.":  # Starlette's words
            message = ("the body is not readable multipart/form-data (malformed, or a part header "
                       "too long, such as a file name of thousands of characters); send it as "
                       "curl -F does")  # fmt: skip
        return _answer(request, _one_line(message), exc.status_code, exc.headers)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # Starlette answers a 500 outside every middleware, CORS's too: a page on an allowed
        # origin would see an opaque network error instead of this message.
        origin = request.headers.get("origin")
        allowed = getattr(getattr(request.app.state, "settings", None), "allowed_origins", [])
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"} if origin and (
            origin in allowed or "*" in allowed) else None  # fmt: skip
        return _answer(
            request, f"internal error ({type(exc).__name__}); see the server log", 500, headers
        )


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORSMiddleware whose refused preflight is ``{"error": ...}`` like every other
    4xx here (its own is plain text, "Disallowed CORS origin"), naming what to change."""

    def preflight_response(self, request_headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code != 400:
            return response
        refused = response.body.decode().removeprefix("Disallowed CORS ")
        error = f"this server does not allow that cross-origin request ({refused})"
        if "origin" in refused.split(", "):  # (not for "private-network" alone: no origin to add)
            error += ("; its operator names the allowed origins with --cors-origins "
                      "(CAPSIGHT_CORS_ORIGINS)")  # fmt: skip
        headers = {k: v for k, v in response.headers.items()
                   if k.lower() not in ("content-length", "content-type")}  # fmt: skip
        return JSONResponse({"error": error}, status_code=400, headers=headers)
