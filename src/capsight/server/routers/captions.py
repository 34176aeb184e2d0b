"""``POST /v1/captions``: one or more images (multipart) -> a caption per image, with timings.

    $ curl -F images=@cat.jpg -F images=@dog.png -F model=default http://localhost:8000/v1/captions
    {"model": "show-attend-tell-pair", "results": [{"filename": "cat.jpg", "caption": "a cat ...", ...}],
     "timings_ms": {"read": 0.4, "decode": 6.1, "inference": 71.9, "total": 79.0}}

File types are checked by content (415 for anything that is not an image); a corrupt image or a
decompression bomb is a 400 naming the file; decoding options out of range are a 422.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, UploadFile
from PIL import Image
from pydantic import BaseModel, BeforeValidator, Field

from capsight.captioning.base import DecodingOptions
from capsight.captioning.options import MAX_LENGTH_PENALTY
from capsight.captioning.shortfall import API_SPELLING, fewer_reason, reached_limit
from capsight.errors import InvalidParameter
from capsight.io.images import full_size, load_image
from capsight.io.sniff import SNIFF_BYTES
from capsight.server.deps import (
    EngineDep,
    SettingsDep,
    form_fields_only,
    lowercase,
    require_api_key,
    run_limited,
    too_many_images,
    wait_for_models,
)
from capsight.server.http_errors import ApiError, error_responses
from capsight.server.uploads import display_name, upload_refusal

router = APIRouter(tags=["captions"], dependencies=[Depends(require_api_key)])


class Label(BaseModel):
    name: str
    probability: float


class ImageCaption(BaseModel):
    index: int = Field(description="Position of the image in the request")
    filename: str = Field(description="The client's file name (display only)")
    width: int
    height: int
    caption: str
    alternatives: list[str] = Field(description="Further captions when num_captions > 1")
    score: float | None = Field(description="Mean log-probability per word, when the model has one")
    labels: list[Label] = Field(description="The encoder's most likely ImageNet classes")
    blank: bool = Field(
        False, description='One flat colour: captioned "a blank image", with no score and no labels'
    )
    note: str | None = Field(
        None,
        description="Why the caption is a guess (an image under 32 px on a side), why fewer "
        "captions came back than num_captions asked for, or that the caption ran into the "
        "max_length sent (sentences joined by '; '); null for none of these",
    )


class Timings(BaseModel):
    read: float = Field(description="Receiving the upload, ms")
    decode: float = Field(description="Decoding the images, ms")
    inference: float = Field(description="Encoder + captioner, ms (including waiting for a slot)")
    total: float


class CaptionsResponse(BaseModel):
    model: str
    decoding: dict | None = Field(description="The decoding options in force, those its method "
                                  "reads (no beam_width when sampling; null: the model's own, when "
                                  "none were sent, or none at all for the labels model)")  # fmt: skip
    results: list[ImageCaption]
    timings_ms: Timings
    note: str | None = Field(None, description="Anything sent that the model did not use")


def result_note(described, ran: DecodingOptions | None, sent: DecodingOptions | None) -> str | None:
    """An image's ``note``: its description's own (a tiny image's caption is a guess), and, as
    ``capsight caption`` notes them, fewer distinct captions than ``num_captions`` asked for
    and a caption that ran into the ``max_length`` sent (``ran``: the decoding in force)."""
    notes = [described.note] if described.note else []
    given = sent.named if sent is not None else frozenset()
    if ran is not None and not described.blank:  # (labels decodes nothing: ran is None)
        caption = described.caption
        got = 1 + sum(a != caption.text for a in caption.alternatives)
        if "num_captions" in given and got < ran.num_captions:
            notes.append(f"{got} distinct caption{'s' if got > 1 else ''} of the "
                         f"{ran.num_captions} asked for: {fewer_reason(ran, API_SPELLING)}")  # fmt: skip
        if "max_length" in given and reached_limit(caption.tokens, ran.max_length):
            notes.append(f"the caption reached max_length {ran.max_length}, where a caption is "
                         "ended, finished or not")  # fmt: skip
    return "; ".join(notes) or None


def labels_note(decoding: DecodingOptions) -> str:
    """The note for decoding options sent to the one captioner that writes no sentence word by
    word: it names the options sent (the fields it was given, in DecodingOptions' order)."""
    given = decoding.named
    names = [f.name for f in dataclasses.fields(decoding) if f.name in given]
    return (f"the labels model ignores decoding options ({', '.join(names)}): it names the top "
            "ImageNet class, and the second when it is nearly as likely")  # fmt: skip


@dataclass
class ImageUpload:
    data: bytes
    filename: str


async def read_images(
    files: list[UploadFile],
    max_images: int,
    display: Callable[[str | None, str], str] = display_name,
) -> list[ImageUpload]:
    """Read uploads, refusing (415) anything whose content is not an image; ``display`` makes
    the name a refusal shows (and the upload keeps) from the client's file name."""
    if not files:
        raise ApiError(422, "images: send at least one image file")
    if len(files) > max_images:
        raise ApiError(422, too_many_images(max_images))
    uploads = []
    for i, f in enumerate(files):
        name = display(f.filename, f"image {i + 1}")
        data = await f.read()
        refusal = upload_refusal(name, data[:SNIFF_BYTES], "image")
        if refusal:
            raise ApiError(415 if data else 400, refusal)
        uploads.append(ImageUpload(data, name))
    return uploads


def decode_images(uploads: list[ImageUpload]) -> list[Image.Image]:
    """RGB images; a corrupt file or a decompression bomb raises ImageLoadError (400)."""
    return [load_image(u.data, u.filename) for u in uploads]


def decoding_options(**fields) -> DecodingOptions | None:
    """DecodingOptions from the fields a client set (None: the model's own default). A seed,
    temperature, top_k or top_p without ``method=sample`` is refused (422): greedy and beam
    search would silently ignore them. (A beam_width without beam search is refused once the
    model's own method is known: ``create_captions``.)"""
    given = {k: v for k, v in fields.items() if v is not None}
    method = given.get("method")
    if "seed" in given and method not in ("sample", "narrowing"):
        raise InvalidParameter("seed needs method=sample or narrowing (greedy and beam search are "
                               "not random)")  # fmt: skip
    if method == "narrowing":  # the original project's schedule: it samples at temperature 1
        if {"temperature", "top_p"} & given.keys():
            raise InvalidParameter("method=narrowing takes top_k (its starting width) and seed "
                                   "only")  # fmt: skip
        if given.get("top_k") == 0:
            raise InvalidParameter("top_k: method=narrowing starts from the top_k likeliest "
                                   "words: at least 1 (default 5)")  # fmt: skip
    elif method != "sample" and {"temperature", "top_k", "top_p"} & given.keys():
        raise InvalidParameter("temperature, top_k and top_p need method=sample (they shape sampling "
                               "only; top_k also starts method=narrowing)")  # fmt: skip
    return DecodingOptions.partial(**given) if given else None  # the rest: the model's own


@router.post(
    "/v1/captions",
    response_model=CaptionsResponse,
    summary="Caption one or more images",
    responses=error_responses(400, 401, 413, 415, 422, 503, 504),
    dependencies=[Depends(form_fields_only)],
)
async def create_captions(
    *,
    images: Annotated[list[UploadFile], File(description="One or more image files", min_length=1)],
    model: Annotated[str | None, Form(description="Captioner name; see GET /v1/models")] = None,
    method: Annotated[
        Literal["greedy", "beam", "sample", "narrowing"] | None,
        BeforeValidator(lowercase),
        Form(
            description="Decoding method; default: the model's own (beam search for trained captioners). "
            "narrowing: the original project's schedule, sampling among top_k words (default "
            "5), fewer as the sentence grows"
        ),
    ] = None,
    beam_width: Annotated[
        int | None,
        Form(
            ge=1,
            le=10,
            description=(
                "Beams kept at each step (method=beam); default: the model's own, 4 for the photo default"
            ),
        ),
    ] = None,
    length_penalty: Annotated[
        float | None,
        Form(
            ge=0,
            le=MAX_LENGTH_PENALTY,
            description=(
                "method=beam: rank sentences by log-probability / length**p; 0 (default) the "
                "plain sum, larger favours longer captions"
            ),
        ),
    ] = None,
    temperature: Annotated[
        float | None,
        Form(
            gt=0,
            le=5,
            description=("method=sample: lower safer wording, higher bolder (default 0.7)"),
        ),
    ] = None,
    top_k: Annotated[
        int | None,
        Form(
            ge=0,
            le=1000,
            description=(
                "method=sample: draw among the k likeliest words only; 0 (default) for no limit. "
                "method=narrowing: the starting width (default 5)"
            ),
        ),
    ] = None,
    top_p: Annotated[
        float | None,
        Form(
            gt=0,
            le=1,
            description=(
                "method=sample: draw among the likeliest words whose probabilities add up to p; 1 (default) for no limit"
            ),
        ),
    ] = None,
    num_captions: Annotated[
        int | None,
        Form(
            ge=1,
            le=10,
            description=(
                "Captions per image: the best as caption, the rest as alternatives (default 1)"
            ),
        ),
    ] = None,
    max_length: Annotated[
        int | None,
        Form(
            ge=2,
            le=50,
            description=(
                "Most tokens per caption, the end token included: at most max_length - 1 words (default 20)"
            ),
        ),
    ] = None,
    seed: Annotated[
        int | None,
        Form(
            ge=0,
            le=2**63 - 1,  # as DecodingOptions and the CLI take: a CLI's seed replays here
            description=("method=sample or narrowing: the same seed gives the same samples"),
        ),
    ] = None,
    num_labels: Annotated[int, Form(ge=0, le=10, description="Top ImageNet classes per image")] = 3,
    engine: EngineDep,
    settings: SettingsDep,
) -> CaptionsResponse:
    t0 = time.perf_counter()
    decoding = decoding_options(
        method=method,
        beam_width=beam_width,
        length_penalty=length_penalty,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        num_captions=num_captions,
        max_length=max_length,
        seed=seed,
    )
    uploads = await read_images(images, settings.max_images)
    t_read = time.perf_counter()
    await wait_for_models(engine, settings.request_timeout_s)
    timing: dict = {}
    deadline = time.monotonic() + settings.request_timeout_s  # the 504 below answers for it

    def work():
        timing["model"] = engine.resolve_model(model)  # may build a model named the first time
        timing["decoding"] = engine.decoding_for(timing["model"], decoding)
        if timing["decoding"] is not None:  # an unseeded sample's seed, drawn here: echoed
            timing["decoding"] = timing["decoding"].seeded()
        # the method sent, or the model's own (labels has none: the one sent): greedy keeps no beams
        ran = timing["decoding"] or decoding
        if beam_width is not None and ran is not None and ran.method != "beam":
            raise InvalidParameter(f"beam_width needs method=beam (this request decodes by "
                                   f"{ran.method} with {timing['model']})")  # fmt: skip
        t = time.perf_counter()
        pils = decode_images(uploads)
        timing["decode"] = time.perf_counter() - t
        t = time.perf_counter()
        described = engine.describe(
            pils, timing["model"], timing["decoding"], num_labels=num_labels, deadline=deadline
        )
        timing["inference"] = time.perf_counter() - t
        return pils, described

    pils, described = await run_limited(
        work, settings.request_timeout_s, "captioning", stopping=engine.stopping
    )
    results = [
        ImageCaption(
            index=i,
            filename=u.filename,
            width=full_size(img)[0],  # the photo's, not its draft's (load_image)
            height=full_size(img)[1],
            caption=d.caption.text,
            alternatives=[a for a in d.caption.alternatives if a != d.caption.text],
            score=None if d.caption.score is None else round(float(d.caption.score), 4),
            labels=[Label(name=n, probability=round(float(p), 4)) for n, p in d.labels],
            blank=d.blank,
            note=result_note(d, timing["decoding"], decoding),
        )
        for i, (u, img, d) in enumerate(zip(uploads, pils, described, strict=True))
    ]
    ms = lambda s: round(s * 1000, 2)  # noqa: E731
    ignored = timing["model"] == "labels" and decoding is not None
    return CaptionsResponse(
        model=timing["model"],
        decoding=None if timing["decoding"] is None or ignored else timing["decoding"].in_force(),
        note=labels_note(decoding) if ignored else None,
        results=results,
        timings_ms=Timings(
            read=ms(t_read - t0),
            decode=ms(timing["decode"]),
            inference=ms(timing["inference"]),
            total=ms(time.perf_counter() - t0),
        ),
    )


# What /v1/captions reads: the original endpoints send a client there for these
V1_CAPTION_FIELDS = frozenset(inspect.signature(create_captions).parameters)
