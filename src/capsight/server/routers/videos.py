"""``POST /v1/videos``: upload a video and its parameters -> ``202`` and a job id.

    $ curl -F video=@clip.mp4 -F every=1 -F window=5 -F metric=cosine http://localhost:8000/v1/videos
    {"id": "3f2a...", "status": "queued", "links": {"self": "/v1/jobs/3f2a...", ...}}

The container is recognised by content (415 otherwise) and probed before the job is queued, so a
corrupt or stream-less file is a 400 at once rather than a failed job later. A full queue
answers 503 with ``Retry-After``, before the upload is read (``queue_gate``); the route checks
again, for a queue that filled while the body arrived.
"""

from __future__ import annotations

import errno
import logging
from dataclasses import replace
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Response, UploadFile
from pydantic import BeforeValidator
from starlette.concurrency import run_in_threadpool

from capsight.io.sniff import SNIFF_BYTES, sniff_video, video_extension
from capsight.server.deps import (
    EngineDep,
    JobsDep,
    SettingsDep,
    form_fields_only,
    lowercase,
    require_api_key,
    single_file,
)
from capsight.server.engine import Engine, VideoParams
from capsight.server.http_errors import JOB_LOCATION, ApiError, error_responses
from capsight.server.jobs import Job, JobManager, QueueFull
from capsight.server.routers.jobs import JobResponse, job_response
from capsight.server.uploads import display_name, upload_refusal

log = logging.getLogger("capsight.server")
FULL_DISK_RETRY_S = 60  # Retry-After of a full disk: a job's outputs or an old job must go first

router = APIRouter(tags=["videos"], dependencies=[Depends(require_api_key)])


async def submit_video(
    upload: UploadFile, params: VideoParams, jobs: JobManager, engine: Engine, face: str = "api"
) -> Job:
    """Check the upload's content, probe it, and queue a job (415 / 400 / 503 otherwise);
    ``face``: how its summary's note names the settings (``JobManager.submit``)."""
    name = display_name(upload.filename, "video")
    try:
        jobs.reserve()  # refuse early: nothing is copied when the queue is full
    except QueueFull as full:
        raise ApiError(503, str(full), {"Retry-After": str(full.retry_after_s)}) from None
    # 422 for an unknown model; the job records the captioner that will run, not "default"
    params = replace(params, model=await run_in_threadpool(engine.video_model, params.model))
    head = await upload.read(SNIFF_BYTES)
    await upload.seek(0)
    refusal = upload_refusal(name, head, "video")
    if refusal:
        raise ApiError(415 if head else 400, refusal)
    kind = sniff_video(head)
    try:
        return await run_in_threadpool(
            jobs.submit, upload.file, name, video_extension(kind), params, engine.probe, face
        )
    except QueueFull as full:
        raise ApiError(503, str(full), {"Retry-After": str(full.retry_after_s)}) from None
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        log.error("cannot save an upload: %s", exc)  # (the job's folder is removed by submit)
        raise ApiError(503, "the server has no room to save this video (its disk is full); try "
                       "again later", {"Retry-After": str(FULL_DISK_RETRY_S)}) from None  # fmt: skip


@router.post(
    "/v1/videos",
    status_code=202,
    response_model=JobResponse,
    summary="Analyse a video for novel moments (asynchronous job)",
    responses={202: {"headers": JOB_LOCATION}, **error_responses(400, 401, 413, 415, 422, 503)},
    dependencies=[Depends(form_fields_only), Depends(single_file("video"))],
)
async def create_video_job(
    *,
    response: Response,
    video: Annotated[UploadFile, File(description="The video file")],
    every: Annotated[float, Form(gt=0, le=3600, description="Seconds between samples")] = 1.0,
    window: Annotated[int, Form(ge=1, le=1000, description="Previous moments averaged")] = 5,
    metric: Annotated[
        Literal["cosine", "euclidean", "euclidian"], BeforeValidator(lowercase), Form()
    ] = "cosine",
    signal: Annotated[
        Literal["fused", "text", "visual"], BeforeValidator(lowercase), Form()
    ] = "fused",
    sensitivity: Annotated[
        float,
        Form(
            ge=0,
            le=1,
            description=(
                "0: only the strongest changes .. 1: every plausible change (still a selection, not every moment)"
            ),
        ),
    ] = 0.5,
    model: Annotated[str | None, Form(description="Captioner; see GET /v1/models")] = None,
    jobs: JobsDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> JobResponse:
    params = VideoParams(every, window, metric, signal, sensitivity, model or settings.model)
    job = await submit_video(video, params, jobs, engine)
    response.headers["Location"] = f"/v1/jobs/{job.id}"
    return job_response(job, settings)
