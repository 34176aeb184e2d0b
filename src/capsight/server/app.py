"""The capsight HTTP service: FastAPI app with warm models, video jobs and the web page at /ui.

    >>> from capsight.server.app import create_app
    >>> app = create_app(ServerSettings(job_dir=Path("/tmp/capsight-jobs")))
    >>> uvicorn.run(app, host="127.0.0.1", port=8000)      # or: capsight serve

Start-up (``lifespan``): open the job store (marking jobs a dead server left running as
``interrupted``), start the job workers, and load the models in the background so that
``/healthz`` answers at once and ``/readyz`` turns 200 when the models are warm. Requests that
need a model before then wait for it. Shutdown stops the workers; a job still running is marked
``interrupted``, never silently lost.
"""

from __future__ import annotations

import functools
import logging
from contextlib import asynccontextmanager

from fastapi import FastAPI

from capsight import __version__
from capsight.server.engine import Engine, serve_checkpoints
from capsight.server.head_requests import HeadAsGet
from capsight.server.http_errors import install_error_handlers
from capsight.server.jobs import JobManager, JobStore
from capsight.server.queue_gate import QueueGate
from capsight.server.routers import captions, classify, health, jobs, legacy, models, videos
from capsight.server.settings import ServerSettings
from capsight.server.slash_redirects import SaidRedirects
from capsight.server.uploads import BodySizeLimit, StalledUploads

log = logging.getLogger("capsight.server")

DESCRIPTION = """
Describe images in words and find the moments in a video unlike what came before. Offline.

* **Images**: `POST /v1/captions` (multipart `images`, one or more) answers a caption per image.
* **Videos**: `POST /v1/videos` answers `202` with a job; follow it with `GET /v1/jobs/{id}` or
  the server-sent events at `/v1/jobs/{id}/events`, then download the report, plot, CSV, WebVTT
  or JSON.
* **The original server's endpoints** `/get_captions`, `/get_image_caption` and
  `/get_video_captions` answer the requests written for it.

Errors are JSON `{"error": "..."}`. When the server has an API key, send it as `X-API-Key`
(or as a Bearer token).
"""


def mount_api_docs(app: FastAPI) -> None:
    """Swagger UI at ``/docs`` with its scripts served from this server, not from a CDN.

    The scripts (Swagger UI 5, which reads FastAPI's OpenAPI 3.1) come from the package
    ``fastapi-swagger``; only its files are used.
    """
    from importlib.resources import files

    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.staticfiles import StaticFiles

    assets = str(files("fastapi_swagger") / "resources")
    app.mount("/docs-assets", StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def api_docs():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title}: HTTP API",
            swagger_js_url="/docs-assets/swagger-ui-bundle.js",
            swagger_css_url="/docs-assets/swagger-ui.css",
            swagger_favicon_url="/docs-assets/favicon-32x32.png",
        )


def _schema_without_keys(app: FastAPI, build) -> dict:
    """The OpenAPI schema of a server started without an API key: no security schemes, since
    no request needs one (the routes declare them for servers that have a key)."""
    if app.openapi_schema is None:
        schema = build()
        schema.get("components", {}).pop("securitySchemes", None)
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if isinstance(operation, dict):
                    operation.pop("security", None)
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(settings: ServerSettings | None = None, engine: Engine | None = None) -> FastAPI:
    """Build the app. ``engine`` defaults to the real models; tests pass a small fake."""
    settings = settings or ServerSettings.from_env()
    serve_checkpoints(settings.served_checkpoints)  # (serve --captioner NAME=FOLDER)
    engine = engine or Engine(settings.model, settings.inference_slots)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        store = JobStore(settings.job_dir)
        manager = JobManager(
            store,
            engine,
            workers=settings.workers,
            queue_size=settings.queue_size,
            ttl_hours=settings.job_ttl_hours,
            job_timeout_s=settings.job_timeout_s,
        )
        app.state.jobs = manager
        engine.stopping.clear()  # (an engine an earlier app stopped with: tests)
        manager.start()
        engine.start_loading()
        log.info("capsight %s serving; jobs in %s", __version__, settings.job_dir)
        try:
            yield
        finally:
            manager.stop()
            store.close()
            engine.close()

    stopping = engine.stopping  # set by `capsight serve` on SIGINT/SIGTERM, before shutdown

    app = FastAPI(
        title="capsight",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,  # mount_api_docs serves it from a package: no CDN, works offline
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.stopping = stopping
    install_error_handlers(app)
    if settings.ui:  # the page's JSON bodies stay small; its file route serves only outputs
        from capsight.server.ui_gate import UiGate

        app.add_middleware(UiGate, job_dir=settings.job_dir, keyed=bool(settings.api_key))
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_upload_bytes)
    # a body that stops arriving: 408, not a held connection; one arriving on SIGTERM: 503
    app.add_middleware(StalledUploads, stopping=stopping)
    app.add_middleware(QueueGate)  # a full queue answers before the body is read
    app.add_middleware(SaidRedirects)  # POST /v1/captions/: a 307 that says where, not nothing
    app.add_middleware(HeadAsGet)  # HEAD is a GET without its body, everywhere
    if settings.allowed_origins:  # outermost: a 413 or 503 reaches the browser's page as well
        from capsight.server.http_errors import JsonCORSMiddleware

        app.add_middleware(
            JsonCORSMiddleware, allow_origins=settings.allowed_origins, allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["Location", "Retry-After", "Content-Disposition", "X-Capsight-Classes", "X-Capsight-Note"],
        )  # fmt: skip
    for module in (health, captions, videos, jobs, models, legacy, classify):
        app.include_router(module.router)
    app.include_router(legacy.form_router)
    if settings.api_key is None:
        app.openapi = functools.partial(_schema_without_keys, app, app.openapi)
    mount_api_docs(app)
    if settings.ui:
        from capsight.server.ui import mount_ui

        mount_ui(app)
    return app
