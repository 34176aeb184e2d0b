"""Zero-shot engines behind one interface, chosen by name, and the one-call ``classify_images``
(``capsight.classify_images``; ``classify`` here is the same function).

    >>> engine = create_engine("offline")                 # default: bundled models, no download
    >>> engine = create_engine("clip", clip="/models/clip")  # transformers CLIP weights you name
    >>> clf = engine.build(parse_classes("cat,dog,car"), templates=None)  # engine's default set
    >>> classify_images(["cat.jpg"], "cat,dog,car")[0].top[0]
    ('cat', 0.995)

Every engine's ``build(classes, templates)`` returns an ``ImageClassifier`` module (pixels in,
probabilities out) that capsight runs and exports as it is.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from capsight.classify.class_sets import ClassList, as_class_list
from capsight.classify.classifier import ImageClassifier, Prediction, predict, top_k
from capsight.classify.templates import resolve_templates
from capsight.errors import CapsightWarning, ClassesIndistinct, InvalidParameter, check_count
from capsight.model_loading import loaded_once
from capsight.progress import ProgressCallback
from capsight.warning_origin import callers_level

if TYPE_CHECKING:
    from capsight.io.image_inputs import ImageInput

ENGINES = ("offline", "clip")


class ZeroShotEngine(Protocol):
    name: str
    default_templates: tuple[str, ...]

    def build(
        self,
        classes: ClassList,
        templates: Sequence[str] | str | None = None,
        progress: ProgressCallback | None = None,
    ) -> ImageClassifier: ...


def check_engine(name: str, clip: str | None) -> None:
    """The InvalidParameter ``create_engine`` would raise for these names, without loading."""
    if not isinstance(name, str) or not (clip is None or isinstance(clip, (str, os.PathLike))):
        what = f"engine {name!r}" if not isinstance(name, str) else f"clip {clip!r}"
        raise InvalidParameter(f"{what}: expected a name (text)")  # (a list was a TypeError)
    if name not in ENGINES:
        raise InvalidParameter(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    if name == "offline" and clip:
        raise InvalidParameter("--clip (clip= in Python) names CLIP weights; use it with "
                               "--engine clip (engine='clip')")  # fmt: skip
    if name == "clip" and not clip:
        raise InvalidParameter(
            "the clip engine needs weights: --clip PATH, or clip=PATH in Python (a folder "
            "with a saved CLIPModel)"
        )


def create_engine(name: str = "offline", clip: str | None = None) -> ZeroShotEngine:
    """Build an engine once per process; ``clip`` names the CLIP weights (folder or hub id)."""
    check_engine(name, clip)  # (before the cache, which needs names it can hash)
    return _engine(name, None if clip is None else str(clip))


@loaded_once(maxsize=4)  # (CLIP's weights load once, not on every classify call)
def _engine(name: str, clip: str | None) -> ZeroShotEngine:
    if name == "offline":
        from capsight.classify.offline import OfflineEngine

        return OfflineEngine()
    from capsight.classify.clip import ClipEngine

    return ClipEngine(clip)


def classify_images(
    images: Sequence[ImageInput] | ImageInput,
    classes: str | Sequence[str] | ClassList,
    templates: Sequence[str] | str | None = None,
    top: int = 5,
    engine: str = "offline",
    clip: str | None = None,
) -> list[Prediction]:
    """Classify images into ``classes``; one Prediction per image, in order.

    ``images``: what ``capsight.caption`` takes (paths, bytes, PIL images or NumPy arrays; one
    alone or a list); a prediction names its image by its path, or by its place (``images[2]``).
    ``classes``: a built-in set's name ("everyday", "dog-breeds", ...), "a, b, c", a list of
    names, a class file's path (one name a line), or a ``ClassList``; two classes or more.
    ``templates``: prompt templates with ``{}`` for the class ("a photo of a {}."); None for the
    engine's own. ``top``: classes per prediction. ``engine``: "offline" (ImageNet's classes
    mapped to yours; no download) or "clip" with ``clip`` naming local CLIP weights.
    A ``Prediction`` has ``image``, ``top`` ([(class, score)], best first), ``scores`` (one
    per class, they sum to 1) and ``labels`` (the classes, in the scores' order);
    ``score_of("cat")`` is one class's. Classes the engine cannot tell apart (synonyms, names
    it cannot read) score alike, and a
    ``ClassesIndistinct`` warning names them.
    Raises ``InputNotFound``, ``ImageLoadError`` or ``InvalidParameter``."""
    from capsight.io.image_inputs import image_list, rgb_images

    top = check_count("top", top, 1)
    class_list = as_class_list(classes)
    check_engine(engine, clip)  # checked now, not when the first chunk is decoded (or never: [])
    if templates is not None:
        resolve_templates(templates, ())
    images = image_list(images, "classify")  # types and files checked, before any model loads
    names = [str(image) if isinstance(image, (str, os.PathLike)) else f"images[{i}]"
             for i, image in enumerate(images)]  # fmt: skip
    # Decoded a chunk at a time, as the CLI does: all at once, a folder of phone photos held
    # every one of them in memory (9.5 MB each). A photo that cannot be decoded is found before
    # any model loads only in the first chunk; its type and file were checked above for all.
    found: list[Prediction] = []
    classifier = None
    for start in range(0, len(images), DECODE_CHUNK):
        loaded = rgb_images(images, start, DECODE_CHUNK)  # the first chunk's before the model loads
        if classifier is None:
            classifier = create_engine(engine, clip).build(class_list, templates)
            _warn_build_notes(classifier)
        found += predictions(classifier, loaded, names[start : start + DECODE_CHUNK], top)
    return found


def _warn_build_notes(classifier) -> None:
    """The CLI's notes as warnings: classes the engine cannot tell apart ("cat, cats", "猫, 狗";
    a Python caller had had no word of why two classes tied at 0.499), and templates given that
    changed nothing."""
    from capsight.classify.offline import UNUSED_TEMPLATES, indistinct_notes

    for note in indistinct_notes(classifier):
        warnings.warn(note, ClassesIndistinct, stacklevel=callers_level())
    if getattr(classifier, "templates_unused", False):  # templates=[...] that changed nothing
        warnings.warn(UNUSED_TEMPLATES, CapsightWarning, stacklevel=callers_level())


DECODE_CHUNK = 32  # photos decoded and classified together by classify_images()


# classify_images is the name the capsight package exports (capsight.classify is this package),
# and the one a mistyped keyword's TypeError names; classify, the name within it.
classify = classify_images


def predictions(
    classifier: ImageClassifier, images: list, names: list[str], top: int = 5
) -> list[Prediction]:
    from capsight.classify.photo_notes import photo_note

    probs = predict(classifier, images)  # (N, C)
    labels = list(classifier.labels)
    tops = top_k(probs, labels, top)
    notes = [photo_note(image) for image in images] if isinstance(images, list) else []
    notes += [None] * (len(names) - len(notes))
    return [
        Prediction(name, best, [float(v) for v in row], labels, note)
        for name, best, row, note in zip(names, tops, probs, notes, strict=False)
    ]
