"""Zero-shot classification over HTTP: classify photos, or build a classifier file to download.

    $ curl -F images=@cat.jpg -F classes="cat, dog, car" http://localhost:8000/v1/classify
    {"engine": "offline", "classes": 3,
     "results": [{"index": 0, "filename": "cat.jpg", "top": [{"label": "cat", "score": 0.98}, ...]}],
     "timings_ms": {...}}
    $ curl -F classes=dog-breeds -F format=torchscript -o dogs.pt http://localhost:8000/v1/classifiers

``classes`` is a built-in set name (imagenet, everyday, dog-breeds, cat-breeds, foods, scenes,
professions) or names separated by commas or new lines; the server never reads a file named by
a client. Both endpoints use the offline engine (the server names no CLIP weights).
"""

from __future__ import annotations

import difflib
import json
import tempfile
import threading
import time
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel, BeforeValidator, Field

from capsight.classify.class_sets import (
    BUILTIN_SETS,
    ClassList,
    builtin_set,
    clean_name,
    parse_classes,
    typed_names,
)
from capsight.errors import InvalidParameter, quoted
from capsight.server.deps import (
    SettingsDep,
    form_fields_only,
    lowercase,
    require_api_key,
    run_limited,
)
from capsight.server.http_errors import ApiError, error_responses
from capsight.server.routers.captions import ImageUpload, decode_images, read_images
from capsight.server.uploads import example_name

router = APIRouter(tags=["classify"], dependencies=[Depends(require_api_key)])

MAX_CLASSES = 5000
NOTE_HEADER_CHARS = 2000  # at most, in /v1/classifiers' X-Capsight-Note


class LabelScore(BaseModel):
    label: str
    score: float = Field(description="Probability over the given classes (all sum to 1)")


class ImageClasses(BaseModel):
    index: int
    filename: str
    top: list[LabelScore]
    stands_out: bool = Field(
        description=(
            "Whether the top class is a clear winner (20 points ahead of the next, or 3 times "
            "its share from 10%): scores are shares of the classes sent, so a photo of none of "
            "them still has a top class (capsight.classify.standout)"
        )
    )
    note: str | None = Field(
        default=None,
        description="Why the scores may say little about the image: blank (one flat colour), "
        "under 32 px on a side, or only an animation's first frame classified",
    )


class ClassifyResponse(BaseModel):
    engine: str
    classes: int
    results: list[ImageClasses]
    timings_ms: dict[str, float]
    note: str | None = Field(
        default=None,
        description=(
            "Classes the engine cannot tell apart (names it cannot read): they score alike"
        ),
    )


MAX_TEMPLATES = 16
# Prompts a request may have embedded: 5,000 classes under the 3 default templates. Custom
# templates cost more than their classes: ImageNet's 1,860 names are embedded under them too,
# ~3.7 s a template on 2 cores the first time.
MAX_PROMPTS = MAX_CLASSES * 3


def client_templates(
    templates: Sequence[str] | None, classes: ClassList | None
) -> tuple[str, ...] | None:
    """A client's templates (None: the engine's default), within what one request may cost.
    Blank ones are kept: ``-F template=`` alone is "no template given", not the default."""
    if not templates:
        return None
    templates = tuple(templates)
    count = sum(bool(t.strip()) for t in templates)
    if count > MAX_TEMPLATES:
        raise ApiError(
            422, f"template: at most {MAX_TEMPLATES} templates per request, got {count:,}"
        )
    named = len(classes.labels) if classes is not None else 0
    if named * count > MAX_PROMPTS:
        raise ApiError(422, f"template: {named:,} classes under {count} templates make "
                            f"{named * count:,} prompts; at most {MAX_PROMPTS:,} per request "
                            "(fewer templates, or fewer classes)")  # fmt: skip
    return templates


def client_classes(text: str, at_least: int = 2) -> ClassList:
    """A built-in set name or a comma/newline separated list (never a path on the server).

    ``at_least=1`` when example photos add classes of their own."""
    text = text.strip()
    if text in BUILTIN_SETS:
        return builtin_set(text)
    parts = typed_names(text)
    named = [part.strip() for part in parts if clean_name(part)]  # (a pasted zero-width space too)
    if len(named) > MAX_CLASSES:  # before the list is checked further: a 2 MB list goes at once
        raise ApiError(422, f"classes: at most {MAX_CLASSES} classes per request")
    if len(named) == 1 and at_least > 1:  # the library's advice names class files: not here
        close = difflib.get_close_matches(named[0].lower(), BUILTIN_SETS, n=1, cutoff=0.6)
        hint = f"did you mean the built-in set {close[0]!r}? " if close else ""
        raise InvalidParameter(
            f"{quoted(named[0])} is a single class; {hint}give two or more ('cat, dog') or a built-in "
            f"set ({', '.join(BUILTIN_SETS)})"
        )
    return parse_classes(named, at_least)  # (typed blanks dropped, as a class file's)


# A build cut off by the time limit goes on: its class list (here, for /v1/classify) and its
# prompts' embeddings (on disk, for both routes) are kept, so the same request again is quicker.
KEPT_FOR_THE_NEXT_REQUEST = ("the work goes on, and the class list it prepares is kept: the same "
                             "request again in a minute is quicker")  # fmt: skip
FILE_KEPT = ("the work goes on, and the file it makes is kept: the same request again in a "
             "minute is quicker")  # fmt: skip
EMBEDDINGS_KEPT = ("the work goes on, and the embeddings of its class prompts are kept: the same "
                   "request again in a minute is quicker")  # fmt: skip


# One lock per class list (up to hash collisions among 16): a request that finds the same list
# being built, by one that ran past the time limit, waits for that build instead of starting
# a second one beside it.
_BUILD_LOCKS = [threading.Lock() for _ in range(16)]


def _classifier(classes: ClassList, templates: tuple[str, ...] | None):
    """Built classifiers are reused: the same class list costs one build per server, even for
    requests that arrive while it is being built."""
    with _BUILD_LOCKS[hash((classes, templates)) % len(_BUILD_LOCKS)]:
        return _built_classifier(classes, templates)


@lru_cache(maxsize=16)
def _built_classifier(classes: ClassList, templates: tuple[str, ...] | None):
    from capsight.classify.engines import create_engine

    return create_engine("offline").build(classes, templates)


def _exported(
    classes: ClassList, templates: tuple[str, ...] | None, suffix: str
) -> tuple[bytes, int, tuple[str, ...]]:
    """A class list's classifier file (bytes, classes, notes), made once: the same list asked
    for again had been exported anew (~10 s for a .pt2). Built from the classifier
    /v1/classify keeps for that list. (Locks of their own, taken before a build lock and never
    after one: sharing _BUILD_LOCKS, a file and its list falling on one lock had deadlocked.)"""
    with _FILE_LOCKS[hash((classes, templates, suffix)) % len(_FILE_LOCKS)]:
        return _exported_file(classes, templates, suffix)


_FILE_LOCKS = [threading.Lock() for _ in range(4)]


@lru_cache(maxsize=4)  # ~20 MB each
def _exported_file(
    classes: ClassList, templates: tuple[str, ...] | None, suffix: str
) -> tuple[bytes, int, tuple[str, ...]]:
    from capsight.classify.export import save_classifier

    clf = _classifier(classes, templates)
    with tempfile.TemporaryDirectory() as tmp:
        data = save_classifier(clf, Path(tmp) / f"classifier{suffix}").read_bytes()
    return data, len(clf.labels), _notes(classes, templates)


@lru_cache(maxsize=16)
def _notes(classes: ClassList, templates: tuple[str, ...] | None) -> tuple[str, ...]:
    """``build_notes`` of ``_classifier(classes, templates)``, worked out once per list."""
    from capsight.classify.offline import build_notes

    return tuple(build_notes(_classifier(classes, templates)))


@router.post(
    "/v1/classify",
    response_model=ClassifyResponse,
    summary="Zero-shot classification of one or more images into the classes you name",
    responses=error_responses(400, 401, 413, 415, 422, 504),
    dependencies=[Depends(form_fields_only)],
)
async def classify_images(
    *,
    images: Annotated[list[UploadFile], File(description="One or more image files", min_length=1)],
    classes: Annotated[str, Form(description="A built-in set name, or 'a, b, c' / one per line")],
    template: Annotated[
        list[str] | None, Form(description="Prompt templates with {} (default: the engine's)")
    ] = None,
    top: Annotated[int, Form(ge=1, le=100)] = 5,
    settings: SettingsDep,
    request: Request,
) -> ClassifyResponse:
    from capsight.classify.engines import predictions

    t0 = time.perf_counter()
    class_list = client_classes(classes)
    templates = client_templates(template, class_list)
    uploads = await read_images(images, settings.max_images)
    timing: dict[str, float] = {}

    def work():
        t = time.perf_counter()
        classifier, notes = _classifier(class_list, templates), _notes(class_list, templates)
        timing["build"] = time.perf_counter() - t
        t = time.perf_counter()
        pils = decode_images(uploads)
        found = predictions(classifier, pils, [u.filename for u in uploads], top)
        timing["inference"] = time.perf_counter() - t
        return classifier, notes, found

    classifier, notes, found = await run_limited(work, settings.request_timeout_s, "classification",
                                                 KEPT_FOR_THE_NEXT_REQUEST,
                                                 stopping=request.app.state.stopping)  # fmt: skip
    results = [
        ImageClasses(
            index=i,
            filename=p.image,
            top=[LabelScore(label=label, score=round(score, 6)) for label, score in p.top],
            stands_out=p.stands_out,
            note=p.note,
        )
        for i, p in enumerate(found)
    ]
    ms = {k: round(v * 1000, 2) for k, v in timing.items()}
    ms["total"] = round((time.perf_counter() - t0) * 1000, 2)
    return ClassifyResponse(
        engine=classifier.engine,
        classes=len(classifier.labels),
        results=results,
        timings_ms=ms,
        note="; ".join(notes) or None,
    )


@router.post(
    "/v1/classifiers",
    summary="Build a classifier that needs only torch, and download it",
    response_class=Response,
    responses={
        200: {
            "content": {"application/octet-stream": {}},
            "description": "The classifier file (.pt TorchScript or .pt2 torch.export)",
        },
        **error_responses(400, 401, 413, 415, 422, 504),
    },
    dependencies=[Depends(form_fields_only)],
)
async def build_classifier(
    *,
    classes: Annotated[
        str | None, Form(description="A built-in set name, or 'a, b, c' / one per line")
    ] = None,
    template: Annotated[list[str] | None, Form(description="Prompt templates with {}")] = None,
    format: Annotated[
        Literal["torchscript", "export"], BeforeValidator(lowercase), Form()
    ] = "torchscript",
    examples: Annotated[
        list[UploadFile] | None,
        File(
            description="Example photos for few-shot classes; each file name is "
            "'<class>/<photo>' (or '<class>__<photo>')"
        ),
    ] = None,
    settings: SettingsDep,
    request: Request,
) -> Response:
    if not classes and not examples:
        raise ApiError(422, "send classes, example photos, or both")
    class_list = client_classes(classes, 1 if examples else 2) if classes else None
    template = client_templates(template, class_list)
    if template is not None and class_list is None:  # as capsight classifier build refuses it
        raise ApiError(422, "template: templates fill in class names, and examples alone give none; "
                            "send classes as well, or no template")  # fmt: skip
    grouped: dict[str, list[tuple[str, ImageUpload]]] = {}
    if examples:
        uploads = await read_images(examples, max(settings.max_images, 1000), example_name)
        for upload, raw in zip(uploads, examples, strict=True):
            name = (raw.filename or "").replace("\\", "/")
            # The folder the photo is in: a browser sends a folder picked whole as
            # "examples/cat/1.jpg" ("a/b/c.png" had become the class "a").
            label = (name.split("/")[-2] if "/" in name else name.partition("__")[0]).strip()
            if not label or label == name:
                raise ApiError(422, f"{upload.filename}: name example photos '<class>/<photo>'")
            if label.startswith(".") or len(label) > 100 or not label.isprintable():
                # The class becomes a folder name below: no ".", "..", hidden or odd names.
                # (the photo's shown name drops a leading "."; the folder is quoted as sent)
                raise ApiError(422, f"{upload.filename}: its folder {label[:40]!r} cannot name a "
                                    "class (no leading '.', at most 100 printable characters)")  # fmt: skip
            grouped.setdefault(label, []).append((Path(name).name, upload))
    suffix = ".pt" if format == "torchscript" else ".pt2"

    def work() -> tuple[bytes, int, list[str]]:
        from capsight.classify.engines import create_engine
        from capsight.classify.export import save_classifier
        from capsight.classify.few_shot import build_from_examples
        from capsight.classify.offline import build_notes

        if not grouped:  # a class list alone: its file is kept for the next request
            data, n, notes = _exported(class_list, template, suffix)
            return data, n, list(notes)
        with tempfile.TemporaryDirectory() as tmp:
            for label, photos in grouped.items():
                # Decoded here first, one at a time (none kept): a damaged photo is named as
                # the client named it.
                for _, upload in photos:
                    decode_images([upload])
                folder = Path(tmp) / "examples" / label
                folder.mkdir(parents=True, exist_ok=True)
                for i, (_, upload) in enumerate(photos):
                    (folder / f"{i}.jpg").write_bytes(upload.data)  # opened by content
            clf = build_from_examples(
                create_engine("offline"), Path(tmp) / "examples", class_list, template
            )
            path = save_classifier(clf, Path(tmp) / f"classifier{suffix}")
            return path.read_bytes(), len(clf.labels), build_notes(clf)

    data, n, notes = await run_limited(work, settings.request_timeout_s, "building the classifier",
                                       FILE_KEPT if not grouped else EMBEDDINGS_KEPT if class_list is not None else "",
                                       stopping=request.app.state.stopping)  # fmt: skip
    headers = {
        "Content-Disposition": f'attachment; filename="classifier{suffix}"',
        "X-Capsight-Classes": str(n),
    }
    if notes:  # what `capsight classifier build` prints: classes the file cannot tell apart
        # (a header holds Latin-1: characters outside ASCII are escaped as JSON escapes them;
        # cut to NOTE_HEADER_CHARS, as proxies answer 502 to headers of tens of kB)
        note = json.dumps("; ".join(notes))[1:-1]
        if len(note) > NOTE_HEADER_CHARS:
            note = note[: NOTE_HEADER_CHARS - 20].rsplit(" ", 1)[0] + " ... (cut short)"
        headers["X-Capsight-Note"] = note
    return Response(content=data, media_type="application/octet-stream", headers=headers)
