"""``GET /v1/models``: the captioners this server can use, which one is the default, and why a
registered one is unavailable (for example its checkpoint is not installed).

    $ curl http://localhost:8000/v1/models
    {"default": "show-attend-tell-pair", "video_default": "show-attend-tell", "captioners": [...], ...}
"""

from __future__ import annotations

from pathlib import PurePath

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from capsight.server.deps import EngineDep, SettingsDep, require_api_key, wait_for_models
from capsight.server.engine import METRICS, SIGNALS
from capsight.server.http_errors import error_responses

router = APIRouter(tags=["models"], dependencies=[Depends(require_api_key)])


class ModelsResponse(BaseModel):
    default: str = Field(description="The captioner used when a photo request names none")
    video_default: str = Field(
        description="The captioner used when a video request names none: a one-encoder "
        "captioner, where the photo default encodes each photo twice"
    )
    captioners: list[dict] = Field(
        description="name, available, default, video_default, encoder, kind, ..."
    )
    metrics: list[str]
    signals: list[str]


def without_server_paths(entry: dict) -> dict:
    """A captioner's description with its checkpoint named, not located on this server."""
    if isinstance(entry.get("checkpoint"), str):
        entry = {**entry, "checkpoint": PurePath(entry["checkpoint"]).name}
    return entry


@router.get("/v1/models", response_model=ModelsResponse, summary="Available captioners",
            responses=error_responses(401, 503))  # fmt: skip
async def list_models(*, engine: EngineDep, settings: SettingsDep) -> ModelsResponse:
    from starlette.concurrency import run_in_threadpool

    await wait_for_models(engine, settings.request_timeout_s)
    captioners = [without_server_paths(c) for c in await run_in_threadpool(engine.models)]
    default = next((c["name"] for c in captioners if c.get("default")), engine.default_model)
    video_default = next((c["name"] for c in captioners if c.get("video_default")), default)
    return ModelsResponse(
        default=default,
        video_default=video_default,
        captioners=captioners,
        metrics=list(METRICS),
        signals=list(SIGNALS),
    )
