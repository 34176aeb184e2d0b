"""What every trainable caption decoder offers, and the registry of decoder architectures.

    >>> model = build_model({"architecture": "show-attend-tell", "vocab_size": 3000})
    >>> state = model.start(grid)                       # grid (B, P, 1280) -> per-image state
    >>> logits, state, attention = model.step(tokens, state)   # tokens (B,) -> logits (B, V)
    >>> logits, extras = model(grid, captions)          # teacher forcing: captions (B, T)

A *state* is a dict of tensors whose first dimension is the batch, so decoding can copy rows
for beams (``expand_state``) and reorder them (``select_state``) without knowing the model.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import torch
from torch import nn

from capsight.captioning.endings import Endings
from capsight.captioning.vocabulary import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from capsight.errors import InvalidParameter, ModelNotFound

State = dict[str, torch.Tensor]

_ARCHITECTURES: dict[str, tuple[type, type]] = {}  # name -> (config class, model class)
MAX_SIZE = 65536  # the largest width, depth or length an architecture option may ask for
# The encoder's grid is the input over 32; below 32 px there is no grid, and past 1024 px the
# cached features of a dataset run to hundreds of GB.
MIN_RESOLUTION, MAX_RESOLUTION = 32, 1024


def register_architecture(name: str, config_cls: type) -> Callable[[type], type]:
    def wrap(model_cls: type) -> type:
        _ARCHITECTURES[name] = (config_cls, model_cls)
        return model_cls

    return wrap


def architectures() -> list[str]:
    _import_architectures()
    return sorted(_ARCHITECTURES)


def _import_architectures() -> None:
    import capsight.captioning.show_and_tell  # noqa: F401
    import capsight.captioning.show_attend_tell  # noqa: F401

    try:
        import capsight.captioning.prefix_gpt2  # noqa: F401
    except ImportError:
        pass


def config_from_dict(data: dict):
    """A frozen config from its JSON dict (keys the architecture does not know are ignored)."""
    _import_architectures()
    name = data.get("architecture")
    if name not in _ARCHITECTURES:
        raise ModelNotFound(f"unknown captioner architecture {name!r}; known: {architectures()}")
    config_cls = _ARCHITECTURES[name][0]
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    values = {k: v for k, v in data.items() if k in fields}
    for key, value in values.items():  # a damaged config.json: "hidden_dim": "big" was a traceback
        if problem := value_problem(value, fields[key]):
            raise ValueError(f"{key}={value!r}: {problem}")
    return config_cls(**values)


def value_problem(value, field: dataclasses.Field) -> str | None:
    """Why ``value`` cannot be ``field`` of an architecture's config; None when it can."""
    kind = {"int": int, "float": float, "bool": bool, "str": str}.get(str(field.type))
    if kind is None:
        return None
    ok = (isinstance(value, kind) and not (kind is int and isinstance(value, bool))) or (
        kind is float and isinstance(value, int) and not isinstance(value, bool)
    )
    if not ok:
        default = "" if field.default is dataclasses.MISSING else f" (default {field.default!r})"
        return f"expected {kind.__name__}{default}"
    if field.name == "resolution" and not MIN_RESOLUTION <= value <= MAX_RESOLUTION:
        return f"the encoder's input must be {MIN_RESOLUTION}-{MAX_RESOLUTION} px"
    if "dropout" in field.name and not 0 <= value < 1:  # (NaN fails it too)
        return "a dropout rate must be in [0, 1)"
    if kind in (int, float) and not 0 <= value:
        return "must not be negative" if value < 0 else "must be a number"
    # Sizes an option may ask for; training sets the vocabulary's, which a corpus may take past
    # any such bound, and the token ids in it.
    if kind in (int, float) and field.name not in _SET_BY_TRAINING and value > MAX_SIZE:
        return f"must be at most {MAX_SIZE}"
    return None


# Set by training from the data and its own options (or by PrefixGPT2.from_pretrained), never
# by --model-option.
_SET_BY_TRAINING = {"architecture", "vocab_size", "encoder", "resolution", "fine_tune_blocks",
                    "feature_dim", "bos_token_id", "eos_token_id", "pad_token_id",
                    "pretrained", "encoder_weights"}  # fmt: skip


def check_model_options(architecture: str, options: dict) -> None:
    """Raise InvalidParameter for an architecture option that is unknown, reserved or of the
    wrong type (``--model-option hiden_dim=1024`` fails here, not after an hour of training)."""
    _import_architectures()
    if architecture not in _ARCHITECTURES:
        raise InvalidParameter(f"unknown architecture {architecture!r}; known: {architectures()}")
    fields = {f.name: f for f in dataclasses.fields(_ARCHITECTURES[architecture][0])}
    settable = sorted(set(fields) - _SET_BY_TRAINING)
    for key, value in options.items():
        if key not in fields or key in _SET_BY_TRAINING:
            reason = "is set by training" if key in _SET_BY_TRAINING else "is not an option"
            raise InvalidParameter(
                f"--model-option {key or '(empty)'}: {reason} of {architecture}; "
                f"options: {', '.join(settable)}"
            )
        kind = str(fields[key].type)
        if kind == "int" and value_problem(value, fields[key]) is None and value < 1:
            problem = f"must be between 1 and {MAX_SIZE}"  # every int option is a size or a count
        else:
            problem = value_problem(value, fields[key])
        if problem:
            raise InvalidParameter(f"--model-option {key}={value}: {problem}")
    try:  # the architecture's own checks ("cell": lstm or gru), named as the flag that set them
        _ARCHITECTURES[architecture][0](vocab_size=8, **options)
    except InvalidParameter as exc:
        raise InvalidParameter(f"--model-option: {exc}") from None


def build_model(config) -> CaptionModel:
    """A freshly initialised model from a config (or its dict)."""
    if isinstance(config, dict):
        config = config_from_dict(config)
    _import_architectures()
    return _ARCHITECTURES[config.architecture][1](config)


class CaptionModel(nn.Module):
    """Base class: image grid features in, word logits out, one step or a whole sentence."""

    config: object
    bos_id: int = BOS_ID
    eos_id: int = EOS_ID
    pad_id: int = PAD_ID
    unk_id: int | None = UNK_ID  # never emitted when decoding; None when the tokenizer has none
    # Which word ids may end a caption (``captioning.endings``); None allows any ending.
    endings: Endings | None = None
    has_attention: bool = False
    # What ``start`` reads from the encoder: its ``"grid"`` (B, P, 1280), or its ``"hidden"`` map
    # (B, C, h, w) for a model that fine-tuned the encoder's top blocks (``encoder_top``).
    feature_input: str = "grid"
    # State entries that depend only on the image: identical for every beam of one image, so
    # beam search need not reorder them.
    static_state_keys: tuple[str, ...] = ()

    def start(self, grid: torch.Tensor) -> State:
        """Encoder grid (B, P, D) -> the initial decoding state."""
        raise NotImplementedError

    def longest_caption(self, grid: torch.Tensor) -> int | None:
        """The most decoding steps this model has room for after ``grid`` (None: no limit);
        decoding stops there, whatever its ``max_length``."""
        return None

    def step(
        self, tokens: torch.Tensor, state: State
    ) -> tuple[torch.Tensor, State, torch.Tensor | None]:
        """Previous tokens (B,) -> next-word logits (B, V), new state, attention (B, P) or None."""
        raise NotImplementedError

    def forward(self, grid: torch.Tensor, captions: torch.Tensor) -> tuple[torch.Tensor, dict]:
        """Teacher forcing: captions (B, T) starting with <bos> -> logits (B, T-1, V), extras.

        ``grid`` has one row per caption, or one row per image when ``captions_per_image`` rows
        of captions follow each image (see ``repeat_rows``).
        """
        raise NotImplementedError


def expand_state(state: State, times: int) -> State:
    """Repeat every row ``times`` times: (B, ...) -> (B*times, ...), rows of one image adjacent."""
    return {k: v.repeat_interleave(times, dim=0) for k, v in state.items()}


def select_state(state: State, index: torch.Tensor, static: tuple[str, ...] = ()) -> State:
    """Rows ``index`` of every entry; ``static`` entries are kept as they are (beams of one image)."""
    return {k: v if k in static else v.index_select(0, index) for k, v in state.items()}


def repeat_rows(x: torch.Tensor, times: int) -> torch.Tensor:
    return x if times == 1 else x.repeat_interleave(times, dim=0)
