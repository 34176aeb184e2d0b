"""FastAPI dependencies shared by the routers: the warm engine, the jobs, the API key, limits.

    >>> @router.post("/v1/captions", dependencies=[Depends(require_api_key)])
    ... async def captions(engine: Engine = Depends(get_engine)): ...

Tests swap any of these with ``app.dependency_overrides`` or hand ``create_app`` a fake engine.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import types
import typing
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Annotated, TypeVar

import anyio
from fastapi import Depends, Request, Security, UploadFile
from fastapi.security import APIKeyHeader, HTTPBearer

from capsight.errors import CapsightError, quoted
from capsight.server.batching import BatcherStopping
from capsight.server.engine import Engine
from capsight.server.http_errors import ApiError
from capsight.server.jobs import JobManager
from capsight.server.settings import ServerSettings


def lowercase(value: object) -> object:
    """A choice's text as its lowercase name, for ``BeforeValidator``: the API takes
    ``metric=Cosine`` as the CLI takes ``--metric COSINE`` (it had been a 422)."""
    return value.lower() if isinstance(value, str) else value


STOP_POLL_S = 0.25  # how often a request waiting on the models looks at the stopping event
RESTART_RETRY_S = 30  # Retry-After of the 503 a stopping server answers: a restart takes ~10-30 s
STOPPING = "the server is stopping; send the request again once it is back"

T = TypeVar("T")

API_KEY_HEADER = "X-API-Key"


async def get_settings(request: Request) -> ServerSettings:
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def get_jobs(request: Request) -> JobManager:
    return request.app.state.jobs


EngineDep = Annotated[Engine, Depends(get_engine)]
JobsDep = Annotated[JobManager, Depends(get_jobs)]
SettingsDep = Annotated[ServerSettings, Depends(get_settings)]


def route_path(scope) -> str:
    """The path the app's routes see, for ASGI middleware: without the ``root_path`` a proxy's
    prefix adds (uvicorn's ``--root-path`` puts it in ``scope["path"]`` too)."""
    path, root = scope.get("path", ""), scope.get("root_path", "")
    return path[len(root) :] if root and path.startswith(root) else path


def api_key_matches(headers: Mapping[str, str], expected: str) -> bool:
    """Whether ``headers`` carry the key ``expected``: X-API-Key, or an Authorization Bearer
    token; compared in constant time."""
    given = headers.get(API_KEY_HEADER)
    if given is None:
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            given = auth[7:].strip()
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


# Declared so that /openapi.json lists the two ways to send the key (and /docs has its
# Authorize button); the check below reads the headers itself, and passes when no key is set.
_KEY_IN_HEADER = APIKeyHeader(name=API_KEY_HEADER, auto_error=False, scheme_name="APIKey",
                              description="The server's API key, when it was started with one")  # fmt: skip
_KEY_AS_BEARER = HTTPBearer(auto_error=False, scheme_name="Bearer",
                            description=f"The same key as a Bearer token, instead of {API_KEY_HEADER}")  # fmt: skip


async def require_api_key(
    request: Request,
    _header: Annotated[str | None, Security(_KEY_IN_HEADER)] = None,
    _bearer: Annotated[object, Security(_KEY_AS_BEARER)] = None,
) -> None:
    """401 unless the server has no key or the request carries it (header or Bearer token)."""
    expected = request.app.state.settings.api_key
    if expected is None:
        return
    if not api_key_matches(request.headers, expected):
        raise ApiError(
            401, missing_key_message(request.headers), headers={"WWW-Authenticate": "ApiKey"}
        )


def missing_key_message(headers: Mapping[str, str]) -> str:
    """The 401's one line for ``headers`` without the server's key: none sent, or another one."""
    bearer = headers.get("authorization", "").lower().startswith("bearer ")
    if API_KEY_HEADER in headers or bearer:
        return f"the API key sent in the {API_KEY_HEADER} (or Authorization) header is not this server's"
    return f"this server needs an API key: send it in the {API_KEY_HEADER} header"


async def form_body(request: Request) -> None:
    """415 for a body that is not a form (JSON, a bare image), sent to an endpoint that reads
    one: its fields would all read as missing, or be ignored."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind and kind not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise ApiError(415, f"send the request as multipart/form-data (it came as {kind})")
    headers = request.headers
    has_body = headers.get("content-length", "0") not in ("", "0") or "transfer-encoding" in headers
    if not kind and has_body:  # curl --data-binary @photo.jpg without -H: a body of no kind
        raise ApiError(
            415, "send the request as multipart/form-data (it came with no Content-Type)"
        )
    if kind == "application/x-www-form-urlencoded" and (
        files := _file_fields(request, required=True)
    ):
        # curl --data-binary @photo.jpg: a urlencoded form, which cannot carry a file
        raise ApiError(415, as_multipart(files[0]))


def as_multipart(field: str) -> str:
    """The 415's message for a file sent as a urlencoded form (``curl --data-binary``)."""
    return (f"send the request as multipart/form-data, the file as a field (curl -F {field}=@FILE); "
            "it came as a urlencoded form (as curl --data-binary sends), which cannot carry a file")  # fmt: skip


def too_many_images(limit: int) -> str:
    """The 422's message for more images than a request may carry."""
    return f"images: at most {limit} images per request"


def parser_limit(request: Request, message: str) -> tuple[int, str] | None:
    """(status, message) for the form parser's own 400s where the endpoint reads files: over
    1,000 files is the endpoint's file limit, and over 1,000 fields a file sent as a urlencoded
    form (its bytes split at every "&"). None for any other message."""
    files = _file_fields(request)
    if not files:
        return None
    if message.startswith("Too many files."):
        if files[0] == "images":
            return (
                422,
                f"{too_many_images(request.app.state.settings.max_images)} (this one had over 1,000 files)",
            )
        return 422, f"{files[0]}: over 1,000 files in one request; send fewer"
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if message.startswith("Too many fields.") and kind == "application/x-www-form-urlencoded":
        return 415, as_multipart(files[0])
    return None


def declared(request: Request, kind: str) -> list:
    """The parameters of one ``kind`` ("body_params": form fields, "query_params") that the
    request's endpoint and its dependencies declare, in declared order."""

    def walk(dependant) -> Iterator:
        yield from getattr(dependant, kind)
        for sub in dependant.dependencies:
            yield from walk(sub)

    dependant = getattr(request.scope.get("route"), "dependant", None)
    return [] if dependant is None else list(walk(dependant))


def form_fields(request: Request) -> dict[str, bool]:
    """The form fields the request's endpoint declares (their aliases), in declared order, each
    with whether it takes several values (``images``, ``template``: a list)."""
    fields = declared(request, "body_params")
    return {field.alias: _takes_a_list(field.field_info.annotation) for field in fields}


def _takes_a_list(annotation: object) -> bool:
    """``list[str]``, ``list[UploadFile] | None``, ... (a field's type, optional or not)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_takes_a_list(arg) for arg in typing.get_args(annotation))
    return typing.get_origin(annotation) in (list, tuple, set)


async def form_fields_only(request: Request) -> None:
    """For a ``/v1`` endpoint that reads a form: ``form_body``, and 422 for options in the
    query string or form fields it does not read (``-F modle=labels``, or the original
    endpoint's ``every_n_second`` sent to ``/v1/videos``), which would be ignored without a
    word. (The original endpoints ignore both, as the original server did: its clients may
    send a named submit button.)"""
    await form_body(request)
    names = [name for name in dict.fromkeys(request.query_params.keys()) if name]
    if names:
        raise ApiError(
            422,
            f"{listed(names)}: {request.url.path} takes its options as form fields "
            f"(curl -F {listed(names[:1])}=...), not in the query string",
        )
    known = form_fields(request)
    if not known or not request.headers.get("content-type"):
        return
    form = await request.form()
    unknown = [n for n in dict.fromkeys(form.keys()) if n not in known]
    kind = request.headers["content-type"].split(";")[0].strip().lower()
    files = _file_fields(request)
    if (
        kind == "application/x-www-form-urlencoded"
        and files
        and any(not n.isprintable() for n in unknown)
    ):
        # curl --data-binary @photo.jpg sends the photo as a urlencoded form: its bytes are the
        # name of one field
        raise ApiError(415, as_multipart(files[0]))
    if unknown:
        raise ApiError(
            422,
            f"{listed(unknown)}: not a field of {request.url.path}, which reads {', '.join(known)}",
        )
    _once_each_in_form(form, known)


def _once_each_in_form(form, known: dict[str, bool]) -> None:
    for name, several in known.items():  # -F classes=a,b -F classes=c,d would keep c,d only
        values = form.getlist(name)  # (a file given twice: single_file's message)
        if len(values) > 1 and not several and all(isinstance(v, str) for v in values):
            raise ApiError(422, f"{name}: given {len(values)} times; send it once")


def _once_each_in_query(request: Request, known: list[str]) -> None:
    for name in known:  # ?status=done&status=failed would list the failed ones only
        if (count := len(request.query_params.getlist(name))) > 1:
            raise ApiError(422, f"{name}: given {count} times; send it once")


def _query_options(request: Request) -> list[str]:
    return list(dict.fromkeys(param.alias for param in declared(request, "query_params")))


# Query options no answer depends on, let through where a route reads others: a cache-buster
# (jQuery's ``?_=1712345678``) and a shared link's tracking options.
PASSING_OPTIONS = {"_", "fbclid", "gclid"}


async def known_query_only(request: Request) -> None:
    """422 for a query option a route that reads query options does not read, which would be
    ignored without a word (``GET /v1/jobs?stauts=failed`` would list every job,
    ``/v1/jobs/{id}?analysys=false`` send the whole analysis). A route that reads none ignores
    them, and every route lets a cache-buster ``_`` and a link's tracking options (``utm_*``,
    ``fbclid``, ``gclid``) through."""
    known = _query_options(request)
    if not known:
        return
    given = dict.fromkeys(request.query_params.keys())
    unknown = [n for n in given if n not in known and n not in PASSING_OPTIONS
               and not n.startswith("utm_")]  # fmt: skip
    if unknown:
        raise ApiError(422, f"{listed(unknown)}: not an option of {request.url.path}, which "
                            f"reads {', '.join(known)}")  # fmt: skip
    _once_each_in_query(request, known)


async def options_given_once(request: Request) -> None:
    """For the original endpoints, which ignore fields they do not read (as the original
    server did): 422 for an option they read that is given twice in the query string or twice
    in the form (``?every_n_second=2&every_n_second=3`` ran at 3 s without a word). One in each
    is fine: the form's wins."""
    _once_each_in_query(request, _query_options(request))
    known = form_fields(request)
    if known and request.headers.get("content-type"):
        _once_each_in_form(await request.form(), known)


def listed(names: list[str], most: int = 5) -> str:
    """Client-sent names for a message: plain when short and printable, else quoted and cut
    (``errors.quoted``), at most ``most`` of them: a body sent as one huge name must not come
    back as a huge error."""
    shown = [n if n and len(n) <= 40 and n.isprintable() else quoted(n, 40) for n in names[:most]]
    more = f" and {len(names) - most:,} more" if len(names) > most else ""
    return ", ".join(shown) + more


def _file_fields(request: Request, required: bool = False) -> list[str]:
    """The file fields the request's endpoint declares (``images``, ``video``), in order; with
    ``required``, only those it cannot do without."""
    fields = declared(request, "body_params")
    return [field.alias for field in fields if _takes_a_file(field.field_info.annotation)
            and (field.field_info.is_required() or not required)]  # fmt: skip


def _takes_a_file(annotation: object) -> bool:
    if annotation is UploadFile:
        return True
    return any(_takes_a_file(arg) for arg in typing.get_args(annotation))


def single_file(field: str):
    """A dependency: 422 when the form carries ``field`` more than once, where the endpoint
    reads one file (the others would be ignored without a word)."""

    async def check(request: Request) -> None:
        count = len((await request.form()).getlist(field))  # the form FastAPI parsed already
        if count > 1:
            raise ApiError(
                422, f"{field}: one file per request, got {count}; send each as its own request"
            )

    return check


def read_by_v1(v1_path: str, *, decoding: Collection[str] = ()):
    """A dependency for the original endpoints, which run the server's own captioner (``capsight
    serve --model``) and, for photos, its own decoding: 422 for ``model`` or (given
    ``decoding``, the fields the ``/v1`` endpoint reads) a decoding option in the form or the
    query string, naming the ``/v1`` endpoint that reads it (``beam_width=0``, ``method=sample``
    or ``model=labels`` had been ignored without a word, whatever the value), or saying that no
    endpoint does (``no_repeat_trigram``: Python's only)."""
    from capsight.captioning.options import DecodingOptions

    names = {"model", *(DecodingOptions.__dataclass_fields__ if decoding else ())}
    what = "captioner and decoding" if decoding else "captioner"

    async def check(request: Request) -> None:
        sent = [*request.query_params.keys()]
        if request.headers.get("content-type"):
            sent += [*(await request.form()).keys()]
        if asked := [name for name in dict.fromkeys(sent) if name in names]:
            elsewhere = [name for name in asked if decoding and name not in {"model", *decoding}]
            at_v1 = [name for name in asked if name not in elsewhere]
            said = []
            if at_v1:
                said.append(f"{listed(at_v1)}: {request.url.path} runs the server's own {what}, "
                            f"as the original did; send {'them' if len(at_v1) > 1 else 'it'} to "
                            f"POST {v1_path}")  # fmt: skip
            if elsewhere:
                many = len(elsewhere) > 1
                said.append(f"{listed(elsewhere)}: not {'options' if many else 'an option'} of "
                            "the HTTP API (DecodingOptions in Python only); leave "
                            f"{'them' if many else 'it'} out")  # fmt: skip
            raise ApiError(422, "; ".join(said))

    return check


async def wait_for_models(engine: Engine, timeout: float) -> None:
    """Hold a request that came in while models still load; 503 if they take too long."""
    if engine.ready:
        return
    try:
        ok = await anyio.to_thread.run_sync(engine.wait_ready, min(timeout, 60.0))
    except CapsightError as failed:  # the server's fault: 503, as /readyz says, not a 4xx
        raise ApiError(503, str(failed)) from None
    if not ok:
        raise ApiError(503, "models are still loading; retry shortly", {"Retry-After": "5"})


async def run_limited(
    fn: Callable[[], T],
    timeout: float,
    what: str,
    after: str = "",
    stopping: threading.Event | None = None,
) -> T:
    """Run blocking ``fn`` in a worker thread; 504 if it takes longer than ``timeout`` seconds,
    503 with Retry-After as soon as ``stopping`` (the app's, set on SIGTERM) is set.

    The thread cannot be killed, so callers pass work that stops itself soon after (a caption
    batch), that checks a flag (video analysis through a job), or whose result is kept for the
    next request; ``after`` then tells the client so (the 504's message ends with it). (A
    request waiting on through a shutdown had been cut off after uvicorn's 10 s of grace with
    a plain-text 500.)
    """
    if stopping is not None and stopping.is_set():  # (an upload that arrived as it stopped)
        raise ApiError(503, STOPPING, {"Retry-After": str(RESTART_RETRY_S)})
    work = asyncio.ensure_future(anyio.to_thread.run_sync(fn, abandon_on_cancel=True))
    try:
        with anyio.fail_after(timeout):
            while True:
                done, _ = await asyncio.wait({work}, timeout=STOP_POLL_S)
                if done and not isinstance(work.exception(), BatcherStopping):
                    return work.result()
                # dropped from the caption queue, or still at work as the server stops
                if done or (stopping is not None and stopping.is_set()):
                    raise ApiError(503, STOPPING, {"Retry-After": str(RESTART_RETRY_S)})
    except TimeoutError:
        message = f"{what} took longer than the server's {timeout:g} s limit"
        raise ApiError(504, f"{message}; {after}" if after else message) from None
    finally:
        if not work.done():
            work.cancel()  # (the thread is abandoned: it finishes, and its result is dropped)
