"""The original Flask server's endpoints, answering the requests its clients already send.

    $ curl -F image=@cat.jpg http://localhost:8000/get_captions         # -> the caption, as text
    $ curl -F image=@cat.jpg http://localhost:8000/get_image_caption    # -> captions,
    #      embedded_words (one vector per word piece), encoders_out (1, P, C) encoder grid
    $ curl -F video=@clip.mp4 "http://localhost:8000/get_video_captions?every_n_second=2&\\
    #      metric=euclidian&rolling_window_size=3"   # -> captions, distance_from_previous

Shapes follow the original server (``volico/image_captioning``, ``server/captioning_model``):
``/get_captions`` answers plain text; ``/get_image_caption`` answers ``{"captions": str,
"encoders_out": [[[...]]], "embedded_words": [[...], ...]}``; ``/get_video_captions`` takes its
parameters in the query string (as the original Shiny page sent them) or as form fields and
answers ``{"captions": [...], "distance_from_previous": [...]}`` with one entry per sampled frame
(0.0 where there is no previous frame, as the original did), plus ``times`` and ``novel``.

Differences, on purpose: errors are 4xx JSON ``{"error": ...}`` (the original answered 200 with
a message); the vectors come from capsight's own encoder (EfficientNet-Lite0, C = 1280) and word
vectors (MiniLM word pieces, 384-d); the video endpoint runs as a job (so it is bounded by the
worker pool and its report stays downloadable under ``/v1/jobs/<job_id>``).
"""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BeforeValidator

from capsight.errors import CapsightError
from capsight.server.deps import (
    RESTART_RETRY_S,
    EngineDep,
    JobsDep,
    SettingsDep,
    form_body,
    lowercase,
    options_given_once,
    read_by_v1,
    require_api_key,
    run_limited,
    single_file,
    wait_for_models,
)
from capsight.server.engine import Engine, VideoParams
from capsight.server.http_errors import JOB_LOCATION, ApiError, error_responses
from capsight.server.jobs import DONE
from capsight.server.routers.captions import V1_CAPTION_FIELDS, decode_images, read_images
from capsight.server.routers.videos import submit_video
from capsight.server.settings import ServerSettings
from capsight.server.upload_form import form_page

router = APIRouter(tags=["legacy (original Flask server)"], dependencies=[Depends(require_api_key)])
# The photo endpoints caption with the server's captioner and decoding: options for them are 422.
PHOTO_OPTIONS_AT_V1 = Depends(read_by_v1("/v1/captions", decoding=V1_CAPTION_FIELDS))


async def _caption_one(
    image: UploadFile, engine: Engine, settings: ServerSettings, with_vectors: bool
) -> dict:
    uploads = await read_images([image], 1)
    await wait_for_models(engine, settings.request_timeout_s)
    deadline = time.monotonic() + settings.request_timeout_s  # the 504 answers for it

    def work() -> dict:
        pil = decode_images(uploads)[0]
        described = engine.describe([pil], deadline=deadline)[0]
        out = {"captions": described.caption.text, "model": described.model}
        if with_vectors:
            encoded = engine.encode([pil], described.model)
            words, vectors = engine.word_vectors(described.caption.text)
            out["encoders_out"] = _rounded(encoded.grid.tolist())  # (1, P, C)
            out["embedded_words"] = _rounded(vectors)  # (T, 384)
            out["words"] = words
            # (as /v1/captions says it: an icon or a strip, an animation's first frame)
            out["note"] = described.note
        return out

    return await run_limited(
        work, settings.request_timeout_s, "captioning", stopping=engine.stopping
    )


def _rounded(x):
    if isinstance(x, list):
        return [_rounded(v) for v in x]
    return round(float(x), 6)


# The form holds nothing: open behind a key too, saying how to send one (a browser cannot).
form_router = APIRouter(tags=["legacy (original Flask server)"])


@form_router.get("/get_captions", response_class=HTMLResponse, summary="An upload form (original)")
def get_captions_form(request: Request) -> HTMLResponse:
    return HTMLResponse(form_page(scope=request.scope))


@router.post(
    "/get_captions",
    response_class=PlainTextResponse,
    summary="Image -> its caption, as plain text (original endpoint)",
    responses=error_responses(400, 401, 413, 415, 422, 503, 504),
    dependencies=[Depends(form_body), Depends(single_file("image")), PHOTO_OPTIONS_AT_V1],
)
async def get_captions(
    *,
    image: Annotated[UploadFile, File(description="An image file")],
    engine: EngineDep,
    settings: SettingsDep,
) -> PlainTextResponse:
    out = await _caption_one(image, engine, settings, with_vectors=False)
    return PlainTextResponse(out["captions"])


def _described(properties: dict[str, tuple[dict, str]]) -> dict:
    """An OpenAPI 200 response for a JSON object of ``properties`` (name -> (schema, description)),
    documented only: the handlers return plain dicts, so a 62,720-number grid is not validated
    on its way out."""
    schema = {"type": "object", "required": list(properties),
              "properties": {k: {**v, "description": d} for k, (v, d) in properties.items()}}  # fmt: skip
    return {
        200: {
            "description": "Successful Response",
            "content": {"application/json": {"schema": schema}},
        }
    }


_NUMBERS = {"type": "array", "items": {"type": "number"}}
IMAGE_CAPTION_RESPONSE = _described({
    "captions": ({"type": "string"}, "The caption"),
    "encoders_out": ({"type": "array", "items": {"type": "array", "items": _NUMBERS}},
                     "The shared ImageNet encoder's grid, (1, P, C): P = 49 positions (7x7) of "
                     "C = 1280 channels for EfficientNet-Lite0, the shipped captioners' (81, 9x9, "
                     "for a Lite2 one); after ReLU6, so in [0, 6]"),
    "embedded_words": ({"type": "array", "items": _NUMBERS},
                       "One 384-d MiniLM vector per word piece of the caption"),
    "words": ({"type": "array", "items": {"type": "string"}}, "The word pieces, one per vector"),
    "model": ({"type": "string"}, "The captioner that wrote the caption"),
    "note": ({"type": ["string", "null"]}, "Why the caption may be a guess (an image under 32 px "
             "on a side) or say little (only an animation's first frame described); null for a "
             "photo"),
})  # fmt: skip
VIDEO_CAPTIONS_RESPONSE = _described({
    "captions": ({"type": "array", "items": {"type": "string"}}, "One caption per sampled frame"),
    "distance_from_previous": (_NUMBERS, "Each frame's novelty against the previous ones (0 for the first)"),
    "times": (_NUMBERS, "Each sampled frame's time, in seconds"),
    "novel": ({"type": "array", "items": {"type": "boolean"}}, "The frames the selection picked as novel"),
    "job_id": ({"type": "string"}, "The job: its report and files stay under /v1/jobs/{job_id}"),
    "model": ({"type": "string"}, "The captioner that ran"),
    "note": ({"type": ["string", "null"]}, "Why no frame is novel (too few sampled, a restless "
             "video, ...) and what to change; null when some frame is"),
})  # fmt: skip


@router.post(
    "/get_image_caption",
    summary="Image -> caption, word vectors and encoder output (original endpoint)",
    responses={**IMAGE_CAPTION_RESPONSE, **error_responses(400, 401, 413, 415, 422, 503, 504)},
    dependencies=[Depends(form_body), Depends(single_file("image")), PHOTO_OPTIONS_AT_V1],
)
async def get_image_caption(
    *,
    image: Annotated[UploadFile, File(description="An image file")],
    engine: EngineDep,
    settings: SettingsDep,
) -> dict:
    return await _caption_one(image, engine, settings, with_vectors=True)


# Case aside, as the CLI takes them (--metric COSINE): a client's "Cosine" had been a 422.
Metric = Annotated[Literal["euclidian", "euclidean", "cosine"], BeforeValidator(lowercase)]


VIDEO_CAPTIONS_ERRORS = error_responses(400, 401, 410, 413, 415, 422, 503, 504)
VIDEO_CAPTIONS_ERRORS[504]["headers"] = JOB_LOCATION  # the job still running, to poll


@router.post(
    "/get_video_captions",
    summary="Video -> every sampled frame's caption and dissimilarity (original, synchronous)",
    responses={**VIDEO_CAPTIONS_RESPONSE, **VIDEO_CAPTIONS_ERRORS},
    dependencies=[
        Depends(form_body),
        Depends(single_file("video")),
        Depends(options_given_once),
        Depends(read_by_v1("/v1/videos")),
    ],
)
async def get_video_captions(
    *,
    request: Request,
    video: Annotated[UploadFile, File(description="A video file")],
    every_n_second_form: Annotated[
        float | None, Form(alias="every_n_second", gt=0, le=3600)
    ] = None,
    metric_form: Annotated[Metric | None, Form(alias="metric")] = None,
    rolling_window_size_form: Annotated[
        int | None, Form(alias="rolling_window_size", ge=1, le=1000)
    ] = None,
    every_n_second: Annotated[
        float, Query(gt=0, le=3600, description="Seconds between sampled frames")
    ] = 10.0,
    # Cosine, not the original's euclidian: on real clips Euclidean finds fewer events and
    # raises more false alarms (docs/novelty.md); a client that sends metric=euclidian gets it.
    metric: Annotated[
        Metric,
        Query(
            description="cosine; or euclidian (the original's default and spelling), the same as euclidean"
        ),
    ] = ("cosine"),
    rolling_window_size: Annotated[
        int, Query(ge=1, le=1000, description="Previous frames each frame is compared with")
    ] = 3,
    jobs: JobsDep,
    engine: EngineDep,
    settings: SettingsDep,
) -> dict:
    # Form fields win over the query string; the original Shiny page used the query string.
    params = VideoParams(
        every=every_n_second_form or every_n_second,
        window=rolling_window_size_form or rolling_window_size,
        metric=metric_form or metric,
        model=settings.model,
    )
    job = await submit_video(video, params, jobs, engine, face="legacy")
    deadline = time.monotonic() + settings.request_timeout_s
    while True:
        if (now := jobs.get(job.id)) is None:  # DELETE /v1/jobs/{id} meanwhile
            raise ApiError(410, f"job {job.id} was deleted before its analysis finished")
        if (job := now).finished:
            break
        if await request.is_disconnected():  # nobody will read the answer, or learn the job's id
            await asyncio.to_thread(jobs.delete, job.id)  # (files to remove: off the event loop)
            raise ApiError(499, "the client closed the connection before the analysis finished")
        if request.app.state.stopping.is_set():  # SIGTERM: answer now, as the event streams do
            # (waiting on, the request held the shutdown for its 10 s of grace, then got no
            # answer at all; the job, whose id the client never learned, goes with it)
            await asyncio.to_thread(jobs.delete, job.id)
            raise ApiError(503, "the server is stopping; send the video again once it is back",
                           headers={"Retry-After": str(RESTART_RETRY_S)})  # fmt: skip
        if time.monotonic() > deadline:
            raise ApiError(
                504,
                f"the video took longer than {settings.request_timeout_s:g} s; it is still "
                f"analysed as job {job.id}: poll GET /v1/jobs/{job.id}",
                headers={"Location": f"/v1/jobs/{job.id}"},  # for a program to follow
            )
        await asyncio.sleep(0.2)
    if job.status != DONE:
        status = 500 if (job.error or "").startswith("internal error") else 400
        # the answer says it all; a job the client was never told of goes (off the event loop)
        await asyncio.to_thread(jobs.delete, job.id)
        raise ApiError(status, job.error or f"the analysis ended {job.status}")
    try:
        analysis = await asyncio.to_thread(jobs.analysis, job.id)  # (a file read)
    except (OSError, ValueError):  # its files deleted as they were read
        analysis = None
    if analysis is None and jobs.get(job.id) is None:  # deleted between its end and this answer
        raise ApiError(410, f"job {job.id} was deleted before its analysis could be read")
    analysis = analysis or {"moments": []}
    moments = analysis["moments"]
    note = None
    if moments:
        from capsight.novelty.analysis import Analysis

        try:  # the job's own analysis.json: the sentences the CLI, page and report give
            note = "; ".join(Analysis.from_dict(analysis).notes(face="legacy")) or None
        except CapsightError:  # (an analysis the store could not give back whole)
            note = None
    ran = (analysis.get("extra") or {}).get("captioner") or analysis.get("params", {}).get(
        "captioner"
    )
    return {
        "captions": [m["caption"] for m in moments],
        "distance_from_previous": [m["novelty"] or 0.0 for m in moments],
        "times": [m["time"] for m in moments],
        "novel": [bool(m.get("is_novel")) for m in moments],
        "job_id": job.id,
        "model": ran or params.model,
        "note": note,
    }
