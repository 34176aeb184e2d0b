"""The captioner interface and its registry: every captioner is chosen by name.

    >>> captioner = create_captioner("default")
    >>> results = captioner.caption(encoder.encode(images))   # one CaptionResult per image
    >>> results[0].text
    'a dog runs through the grass'

Register a new captioner with ``@register_captioner("name")`` on a zero-argument factory (or a
class whose constructor takes keyword options only). ``"default"`` resolves to the best captioner
installed: the shipped trained model when its checkpoint is present, else ``labels``.
"""

from __future__ import annotations

import inspect
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import torch

from capsight.captioning.options import DecodingOptions
from capsight.errors import InvalidParameter, ModelNotFound, name_hint
from capsight.vision.encoder import EncodedImages


@dataclass
class CaptionResult:
    """One image's caption: ``text``, its ``score`` (mean log-probability per word; higher is
    surer; None for captioners without one), the ``tokens`` it was decoded from, each token's
    ``attention`` over the encoder grid (attention models only; left out of the repr) and up
    to ``num_captions - 1`` other distinct ``alternatives``. ``to_dict()`` is JSON-ready."""

    text: str
    score: float | None = None  # mean log-probability per word, when the model has one
    tokens: list[str] = field(default_factory=list)
    attention: torch.Tensor | None = field(default=None, repr=False)  # (len(tokens), h*w)
    # other distinct captions (num_captions > 1)
    alternatives: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """Plain JSON types: the attention as nested lists of floats (or None)."""
        attention = None if self.attention is None else self.attention.float().tolist()
        return {"text": self.text, "score": self.score, "tokens": list(self.tokens),
                "attention": attention, "alternatives": list(self.alternatives)}  # fmt: skip


class Captioner(ABC):
    """Turns encoder output for a batch of images into one CaptionResult per image."""

    name: str = "captioner"
    encoder_name: str = "efficientnet-lite0"
    decodes: bool = True  # writes its sentence word by word, so DecodingOptions apply

    @abstractmethod
    def caption(
        self, encoded: EncodedImages, decoding: DecodingOptions | None = None
    ) -> list[CaptionResult]: ...

    def describe(self) -> dict:
        """A short, honest description for `capsight models` and the API's /v1/models."""
        return {"name": self.name, "encoder": self.encoder_name}


_REGISTRY: dict[str, Callable[..., Captioner]] = {}
_DEFAULT_PREFERENCE: list[str] = []
_RANKS: dict[str, int] = {}


def register_captioner(name: str, default_rank: int | None = None):
    """Decorator: register a captioner factory under ``name``.

    ``default_rank`` (lower is better) puts the captioner on the list "default" chooses from; a
    factory that raises ModelNotFound (e.g. checkpoint not installed) is skipped.
    """

    def wrap(factory: Callable[..., Captioner]) -> Callable[..., Captioner]:
        _REGISTRY[name] = factory
        if default_rank is not None:
            _RANKS[name] = default_rank
            _DEFAULT_PREFERENCE[:] = sorted(_RANKS, key=_RANKS.__getitem__)
        return factory

    return wrap


def _import_builtin_captioners() -> None:
    # Importing the modules runs their @register_captioner decorators.
    import capsight.captioning.labels  # noqa: F401

    try:
        import capsight.captioning.trained  # noqa: F401
    except ImportError:
        pass


def available_captioners() -> list[str]:
    _import_builtin_captioners()
    return sorted(_REGISTRY)


def default_captioner_name() -> str:
    """The best captioner whose factory builds here (a missing checkpoint skips a candidate)."""
    _import_builtin_captioners()
    for name in _DEFAULT_PREFERENCE:
        try:
            _cached_default(name)
            return name
        except ModelNotFound:
            continue
    return "labels"


@lru_cache(maxsize=8)
def _cached_default(name: str) -> Captioner:
    return _REGISTRY[name]()


def create_captioner(name: str = "default", **options) -> Captioner:
    """Build a registered captioner by name ("default" picks the best one installed)."""
    _import_builtin_captioners()
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    if not isinstance(name, str):  # (None was a TypeError in posixpath)
        raise ModelNotFound(
            f"a captioner is named by text (or a checkpoint folder's path), not {name!r:.60}"
        )
    if name == "default":
        name = default_captioner_name()
        if not options:
            return _cached_default(name)
    if name == "checkpoint" and not options.get("path"):
        raise ModelNotFound(
            "the checkpoint captioner needs a folder: give the folder itself as the model name "
            '(--model runs/sat/best, or model="runs/sat/best" in Python)'
        )
    if name not in _REGISTRY:
        path = os.path.expanduser(name)
        if os.path.isdir(path):  # a trained checkpoint folder (or a run folder, or an ensemble)
            return _REGISTRY["checkpoint"](path=path, **options)
        folders = [os.path.expanduser(part.strip()) for part in name.split(",")]
        if len(folders) > 1 and all(os.path.isdir(folder) for folder in folders):
            return _REGISTRY["checkpoint"](path=",".join(folders), **options)  # an ensemble
        if os.path.exists(path):
            raise ModelNotFound(
                f"{name}: a file; a trained captioner is a folder (e.g. runs/sat/best)"
            )
        if os.sep in name or name.startswith((".", "~")):  # meant as a path: say what is missing
            raise ModelNotFound(f"{name}: no such checkpoint folder")
        raise ModelNotFound(
            f"unknown captioner {name!r}{name_hint(name, _REGISTRY)}; available: "
            f"{', '.join(['default', *sorted(set(_REGISTRY) - {'checkpoint'})])}, "
            "or a trained checkpoint folder"
        )
    factory = _REGISTRY[name]
    try:  # an option it does not take ("device"): said, not a TypeError from inside
        inspect.signature(factory).bind_partial(**options)
    except TypeError:
        takes = [p for p in inspect.signature(factory).parameters if p not in ("self", "name")]
        raise InvalidParameter(f"captioner {name!r} takes the options {', '.join(takes) or 'none'}; "
                               f"got {', '.join(options)}") from None  # fmt: skip
    return factory(**options)
