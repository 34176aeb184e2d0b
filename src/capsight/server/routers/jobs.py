"""``/v1/jobs``: the status, progress (polling or server-sent events) and outputs of video jobs.

    $ curl http://localhost:8000/v1/jobs/3f2a...            # status, progress 0..1, analysis
    $ curl -N http://localhost:8000/v1/jobs/3f2a.../events  # event: progress / data: {...}
    $ curl -O http://localhost:8000/v1/jobs/3f2a.../report  # report.html (also plot csv vtt json)
    $ curl -X DELETE http://localhost:8000/v1/jobs/3f2a...

Server-sent events: ``event: progress`` while the job waits or runs, then one final event named
after the end state (``done``, ``failed`` or ``interrupted``), each with the job as JSON data.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field

from capsight.server.deps import (
    JobsDep,
    SettingsDep,
    known_query_only,
    lowercase,
    require_api_key,
)
from capsight.server.file_responses import NOT_MODIFIED, JobFileResponse, saved_name
from capsight.server.http_errors import ApiError, error_responses
from capsight.server.jobs import ARTIFACTS, DONE, Job, JobManager, valid_job_id
from capsight.server.settings import ServerSettings

# Every route that reads query options refuses one it does not: ?analysys=false had answered
# 200 with the whole analysis.
router = APIRouter(
    tags=["jobs"], dependencies=[Depends(require_api_key), Depends(known_query_only)]
)

SSE_POLL_S = 0.5
SSE_KEEPALIVE_S = 15.0


class Artifact(StrEnum):
    report = "report"
    plot = "plot"
    csv = "csv"
    vtt = "vtt"
    json = "json"


class JobResponse(BaseModel):
    id: str
    status: Literal["queued", "running", "done", "failed", "interrupted"]
    progress: float = Field(ge=0, le=1)
    message: str
    error: str | None = Field(description="Why the job failed or was interrupted")
    filename: str = Field(description="The uploaded file's name (display only)")
    size_bytes: int
    params: dict
    summary: dict = Field(
        description="moments, novel_moments, duration (the video's length, s), "
        "seconds (the analysis time, s), note (why no moment is novel and which field to "
        "change, frames that ended early, a window spanning under 0.5 s of video; null when "
        "none applies); an empty object until the job is done"
    )
    created_at: str
    started_at: str | None
    finished_at: str | None
    expires_at: str | None = Field(description="When a finished job and its files are deleted")
    links: dict[str, str] = Field(description="self, events, and the outputs (report, plot, csv, "
                                  "vtt, json) unless the job failed or was interrupted")  # fmt: skip
    analysis: dict | None = Field(
        default=None,
        description="analysis.json (the CLI's schema) once the job is done; "
        "GET /v1/jobs/{id} only (null in GET /v1/jobs, which would be pages long)",
    )


class JobList(BaseModel):
    jobs: list[JobResponse]
    total: int = Field(description="Jobs there are in all (with the status asked for), for paging")
    queued: int
    running: int


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def job_links(job: Job) -> dict[str, str]:
    """Where the job and its outputs are: the outputs once done or while they may still come,
    not for a job that failed or was interrupted (each would answer 409, "never will")."""
    base = f"/v1/jobs/{job.id}"
    links = {"self": base, "events": base + "/events"}
    if job.status == DONE or not job.finished:
        links.update({a: f"{base}/{a}" for a in ARTIFACTS})
    return links


def job_response(job: Job, settings: ServerSettings, analysis: dict | None = None) -> JobResponse:
    expires = None
    if job.finished_at is not None and settings.job_ttl_hours > 0:
        expires = _iso(job.finished_at + settings.job_ttl_hours * 3600)
    return JobResponse(
        id=job.id,
        status=job.status,
        progress=round(job.progress, 4),
        message=job.message,
        error=job.error,
        filename=job.filename,
        size_bytes=job.size_bytes,
        params=job.params,
        summary=job.summary,
        created_at=_iso(job.created_at),
        started_at=_iso(job.started_at),
        finished_at=_iso(job.finished_at),
        expires_at=expires,
        links=job_links(job),
        analysis=analysis,
    )


def find_job(jobs: JobManager, job_id: str) -> Job:
    if not valid_job_id(job_id):  # any length: one answer for every id that cannot be a job's
        shown = repr(job_id) if len(job_id) <= 40 else repr(job_id[:40]) + "..."
        raise ApiError(404, f"no job with id {shown}: a job's id is the 32 hex characters "
                            "POST /v1/videos returned (see GET /v1/jobs)")  # fmt: skip
    job = jobs.get(job_id)
    if job is None:
        # (deleted, or finished and expired: the store keeps no trace to tell which)
        raise ApiError(404, f"no job with id {job_id!r}: deleted, or finished and expired (see GET "
                            "/v1/jobs)")  # fmt: skip
    return job


def not_done(job: Job, output: str) -> ApiError:
    """409 for an output asked of a job that has none: yet (queued, running) or ever."""
    if job.finished:
        why = f": {job.error}" if job.error else ""
        return ApiError(409, f"job {job.id} {job.status}{why}; it has no {output}, and never will")
    return ApiError(
        409, f"job {job.id} is {job.status}; its {output} will be there once it is done"
    )


# In either case: an id copied from a log or a ticket may have been upper-cased on its way.
JobId = Annotated[
    str,
    Path(description="The id POST /v1/videos returned (32 hex characters, in either case)"),
    AfterValidator(lambda sent: sent.lower() if valid_job_id(sent.lower()) else sent),
]


# A misspelt option (?stauts=failed would list every job) is refused on every route that reads
# query options (deps.known_query_only); a cache-buster (?_=...) or a shared link's tracking
# options pass.
@router.get("/v1/jobs", response_model=JobList, summary="List jobs, newest first",
            responses=error_responses(401, 422))  # fmt: skip
def list_jobs(
    *,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
    status: Annotated[
        Literal["queued", "running", "done", "failed", "interrupted"] | None,
        BeforeValidator(lowercase),
    ] = None,
    jobs: JobsDep,
    settings: SettingsDep,
) -> JobList:
    found = jobs.list(limit, offset, status)
    return JobList(
        jobs=[job_response(j, settings) for j in found],
        total=jobs.store.count(status),
        queued=jobs.queued,
        running=jobs.running,
    )


@router.get("/v1/jobs/{job_id}", response_model=JobResponse, summary="A job's status and result",
            responses=error_responses(401, 404, 422))  # fmt: skip
def get_job(
    *,
    job_id: JobId,
    analysis: Annotated[bool, Query(description="Include analysis.json when done")] = True,
    jobs: JobsDep,
    settings: SettingsDep,
) -> JobResponse:
    job = find_job(jobs, job_id)
    result = jobs.analysis(job_id) if analysis and job.status == DONE else None
    return job_response(job, settings, result)


@router.delete("/v1/jobs/{job_id}", status_code=204, summary="Delete a job and its files",
               responses=error_responses(401, 404, 422))  # fmt: skip
def delete_job(job_id: JobId, jobs: JobsDep) -> Response:
    find_job(jobs, job_id)
    jobs.delete(job_id)
    return Response(status_code=204)


@router.get(
    "/v1/jobs/{job_id}/events",
    summary="Progress as server-sent events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **error_responses(401, 404, 422)},
)
async def job_events(
    *,
    job_id: JobId,
    request: Request,
    jobs: JobsDep,
    settings: SettingsDep,
) -> StreamingResponse:
    find_job(jobs, job_id)

    async def stream():
        last, last_sent = None, time.monotonic()
        yield "retry: 2000\n\n"
        while True:
            job = jobs.get(job_id)
            if job is None:
                yield _sse("deleted", {"id": job_id, "status": "deleted"})
                return
            state = (job.status, round(job.progress, 3), job.message)
            if state != last:
                last, last_sent = state, time.monotonic()
                body = job_response(job, settings).model_dump(exclude={"analysis"})
                yield _sse(job.status if job.finished else "progress", body)
            elif time.monotonic() - last_sent > SSE_KEEPALIVE_S:
                last_sent = time.monotonic()
                yield ": keep-alive\n\n"
            if job.finished or await request.is_disconnected():
                return
            if request.app.state.stopping.is_set():  # the server is stopping: say so, and end
                yield _sse(*_stopping_event(job, settings))
                return
            await asyncio.sleep(SSE_POLL_S)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def _stopping_event(job, settings) -> tuple[str, dict]:
    """The last event of a stream whose server is stopping: a running job is ``interrupted``
    (as the shutdown is about to mark it), a queued one ``stopping`` (it stays queued and runs
    when the server starts again). Without it the stream held the shutdown for its 10 s grace
    and was cut off mid-transfer."""
    body = job_response(job, settings).model_dump(exclude={"analysis"})
    if job.status == "running":
        return "interrupted", {**body, "status": "interrupted", "message": "interrupted",
                               "error": "the server stopped while this job was running; submit "
                                        "the video again"}  # fmt: skip
    return "stopping", {**body, "message": "the server is stopping; the job stays queued and runs "
                                           "when it starts again"}  # fmt: skip


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


@router.get(
    "/v1/jobs/{job_id}/thumbnails/{index}",
    summary="Thumbnail of a novel moment (index into analysis.moments)",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/jpeg": {}}},
        **NOT_MODIFIED,
        **error_responses(400, 401, 404, 409, 416, 422),
    },
)
def get_thumbnail(
    *,
    job_id: JobId,
    index: Annotated[int, Path(ge=0, le=10_000_000)],
    jobs: JobsDep,
) -> FileResponse:
    job = find_job(jobs, job_id)
    path = jobs.thumbnail_path(job_id, index)
    if path.is_file():
        return JobFileResponse(path, media_type="image/jpeg")
    if job.status != DONE:
        raise not_done(job, "thumbnails")
    count = job.summary.get("moments")
    if isinstance(count, int) and index >= count:
        which = f"index goes from 0 to {count - 1}" if count else "it has no thumbnails"
        raise ApiError(404, f"job {job_id} has {count} moments; {which}")
    raise ApiError(404, f"moment {index} of job {job_id} has no thumbnail (only novel ones do)")


@router.get(
    "/v1/jobs/{job_id}/{artifact}",
    summary="Download an output: report (HTML), plot (PNG), csv, vtt (WebVTT) or json",
    response_class=FileResponse,
    responses={
        200: {"content": {m.split(";")[0]: {} for _, m in ARTIFACTS.values()}},
        **NOT_MODIFIED,
        **error_responses(400, 401, 404, 409, 416, 422),
    },
)
def get_artifact(
    *,
    job_id: JobId,
    artifact: Annotated[
        str,
        Path(
            description="report, plot, csv, vtt or json",
            json_schema_extra={"enum": [a.value for a in Artifact]},
        ),
    ],
    download: Annotated[bool, Query(description="Ask the browser to save the file")] = False,
    jobs: JobsDep,
) -> FileResponse:
    job = find_job(jobs, job_id)
    if artifact not in ARTIFACTS:
        names = ", ".join(a.value for a in Artifact)
        raise ApiError(404, f"a job has no output named {artifact[:40]!r}; its outputs are {names}")
    if job.status != DONE:
        raise not_done(job, artifact)
    path = jobs.artifact_path(job_id, artifact)
    if not path.is_file():
        raise ApiError(404, f"job {job_id} has no {artifact} file")
    filename, media_type = ARTIFACTS[artifact]
    disposition = "attachment" if download else "inline"
    return JobFileResponse(path, media_type=media_type, filename=saved_name(job.filename, filename),
                           content_disposition_type=disposition)  # fmt: skip
