"""``/healthz`` (the process answers) and ``/readyz`` (models loaded, job store open).

$ curl -f http://localhost:8000/readyz   # 503 {"status": "loading"} until the models are warm
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse

router = APIRouter(tags=["health"])
FAVICON = Path(__file__).resolve().parents[1] / "static" / "favicon.svg"


READY_SCHEMA = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ready", "loading", "failed"]},
        "models_loaded_in_s": {"type": "number", "description": "when ready"},
        "jobs": {"type": "object", "description": "when ready: queued, running, workers"},
        "error": {"type": "string", "description": "when loading failed"},
    },
    "required": ["status"],
}


# HEAD as well (uptime probes often send it): every GET answers it (server.head_requests).
@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness: models loaded and jobs accepted",
    responses={
        200: {"description": "Ready", "content": {"application/json": {"schema": READY_SCHEMA}}},
        503: {
            "description": "Still loading (Retry-After), or loading failed",
            "content": {"application/json": {"schema": READY_SCHEMA}},
        },
    },  # fmt: skip
)
async def readyz(request: Request) -> JSONResponse:
    engine, jobs = request.app.state.engine, request.app.state.jobs
    if engine.ready:
        body = {
            "status": "ready",
            "models_loaded_in_s": None
            if engine.load_seconds is None
            else round(engine.load_seconds, 3),
            "jobs": {"queued": jobs.queued, "running": jobs.running, "workers": jobs.workers},
        }
        return JSONResponse(body)
    if engine.load_error:
        return JSONResponse({"status": "failed", "error": engine.load_error}, status_code=503)
    return JSONResponse({"status": "loading"}, status_code=503, headers={"Retry-After": "2"})


@router.get("/", summary="Where the docs and the web page are")
def root(request: Request):
    if "text/html" in request.headers.get("accept", "") and request.app.state.settings.ui:
        return RedirectResponse("/ui/")
    return {
        "status": "ok",
        "docs": "/docs",
        "ui": "/ui/" if request.app.state.settings.ui else None,
    }


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> FileResponse:
    return FileResponse(FAVICON, media_type="image/svg+xml")
