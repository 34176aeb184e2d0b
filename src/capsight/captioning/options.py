"""``DecodingOptions``: how a caption model's word distributions become a sentence.

    >>> DecodingOptions(method="beam", beam_width=3)
    >>> DecodingOptions(method="sample", temperature=0.8, top_k=20, num_captions=5, seed=1)
    >>> DecodingOptions(num_captions=3).over(captioner.default_decoding)   # its beam width

Options record which fields their caller chose (a command-line flag or an API field sets some
fields only), and ``over(base)`` lays those on a captioner's own decoding: ``--num 3``, like
``DecodingOptions(num_captions=3)``, keeps the photo default's beam 4 instead of the class
default's 3 (until 2026-12-07 only ``partial`` options did; the constructor's had replaced every
field, so the Python API's captions differed from the CLI's and the HTTP API's for the same
choice).

Imports nothing heavy: the torch path (``capsight.captioning.decoding``) and the ONNX Runtime
path (``capsight.ort.captioner``) both read it.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import numbers
import secrets
from dataclasses import dataclass

from capsight.errors import CapsightError, InvalidParameter, ModelNotFound

# Past these, memory and time grow for nothing: beam 20 already finds what beam 5 does, and each
# beam or alternative is a row of every batch (beam 100,000 over 32 photos asks for 5 GB).
MAX_BEAM_WIDTH = 20
NARROWING_START = 5  # words the narrowing schedule samples among at first, when top_k is 0
MAX_CAPTIONS = 20
MAX_LENGTH = 100  # tokens: five times the longest training caption the shipped models learned
MAX_LENGTH_PENALTY = 5.0  # score / length**p; past ~2 every beam runs to max_length
_INTEGERS = ("beam_width", "max_length", "top_k", "num_captions")
_NUMBERS = ("length_penalty", "temperature", "top_p")
_FLAGS = ("no_repeat_trigram", "no_repeat_phrase", "no_repeat_word", "complete_endings")
# Fields one decoding method reads and the others ignore (``in_force``).
_BEAM_ONLY = ("beam_width", "length_penalty")
_SAMPLING_ONLY = ("temperature", "top_k", "top_p", "seed")
_SAMPLE_SHAPE = ("temperature", "top_k", "top_p")  # what a shipped beam-search config also stores
# Field names as the range errors say them.
_SPOKEN = {"top_k": "top-k", "top_p": "top-p", "num_captions": "the number of captions"}


@dataclass(frozen=True)
class DecodingOptions:
    """How to turn a model's word distributions into a sentence.

    The fields named when the options are made replace a captioner's own decoding; the others
    come from the captioner (the repr shows them at the class defaults below: the photo default
    runs ``DecodingOptions(num_captions=3)`` with its own beam 4). A copy made with
    ``dataclasses.replace`` names every field, and replaces them all."""

    method: str = "beam"  # greedy | beam | sample | narrowing
    beam_width: int = 3
    max_length: int = 20  # tokens, the end token included: at most 19 words
    length_penalty: float = 0.0  # score / length**penalty; 0 = raw log-prob
    no_repeat_trigram: bool = True
    no_repeat_phrase: bool = True  # no "a bike ... a bike": captioning.rules.FUNCTION_WORDS
    no_repeat_word: bool = True  # a word may not follow itself ("a man is is")
    # no <eos> mid-phrase ("in a red"), no first word no training caption starts with: captioning.endings
    complete_endings: bool = True
    # Sampling's temperature: 0.7 keeps 4.3 of 5 draws distinct and scores +15% CIDEr over 1.0
    # (benchmarks/sampling_settings.py). narrowing samples at 1, as the original project did,
    # whatever this says.
    temperature: float = 0.7
    top_k: int = 0  # 0 = no top-k filter
    top_p: float = 1.0  # 1.0 = no nucleus filter
    num_captions: int = 1  # >1 returns alternatives (diverse captions)
    seed: int | None = None

    def __post_init__(self) -> None:
        self._check_types()
        if self.method not in ("greedy", "beam", "sample", "narrowing"):
            raise InvalidParameter(
                f"unknown decoding method {self.method!r}; use greedy, beam, sample or narrowing"
            )
        if not 1 <= self.beam_width <= MAX_BEAM_WIDTH:
            raise InvalidParameter(
                f"beam width must be between 1 and {MAX_BEAM_WIDTH}, got {self.beam_width}"
            )
        if not 2 <= self.max_length <= MAX_LENGTH:
            raise InvalidParameter(
                f"max length must be between 2 and {MAX_LENGTH} (it counts the end token: 2 "
                f"allows one word), got {self.max_length}"
            )
        if not 0 <= self.length_penalty <= MAX_LENGTH_PENALTY:
            raise InvalidParameter(
                f"length penalty must be between 0 (none) and {MAX_LENGTH_PENALTY:g}, got "
                f"{self.length_penalty:g}"
            )
        if not 0 < self.temperature < math.inf:
            # (temperature 0, in other tools, means the likeliest word every time: greedy)
            hint = (
                "; for the likeliest word every time, ask for greedy decoding (--greedy, "
                "method='greedy')"
                if self.temperature == 0
                else ""
            )
            raise InvalidParameter(
                f"temperature must be a positive number, got {self.temperature}{hint}"
            )
        if not 0 < self.top_p <= 1:
            raise InvalidParameter(f"top-p must be in (0, 1], got {self.top_p}")
        if self.seed is not None and not 0 <= self.seed < 2**63:  # others would wrap onto these
            raise InvalidParameter(f"seed must be between 0 and 2**63 - 1, got {self.seed}")
        if self.top_k < 0:
            raise InvalidParameter(f"top-k must be >= 0 (0: no limit), got {self.top_k}")
        if not 1 <= self.num_captions <= MAX_CAPTIONS:
            raise InvalidParameter(
                f"the number of captions must be between 1 and {MAX_CAPTIONS}, got {self.num_captions}"
            )
        if (
            self.method == "narrowing"
            and self.top_k == 0
            and "top_k" in self._given
            and not self._whole()
        ):
            # (the class default 0 is "no filter": narrowing then starts from its own 5, as a
            # copy of options that left it out, which names every field, does)
            raise InvalidParameter("top-k: narrowing starts from the top_k likeliest words: at "
                                   f"least 1 (default {NARROWING_START})")  # fmt: skip
        if self.method == "greedy" and self.num_captions > 1:
            raise InvalidParameter(
                "greedy decoding has one answer; for several captions use beam search or sampling"
            )

    def _check_types(self) -> None:
        # A wrong type would otherwise surface deep inside torch (beam_width=2.5, seed="1");
        # NumPy and JSON numbers are accepted and stored as plain int / float.
        for name in (*_INTEGERS, "seed"):
            value = getattr(self, name)
            if name == "seed" and value is None:
                continue
            whole = isinstance(value, numbers.Integral) or (
                isinstance(value, numbers.Real) and math.isfinite(value) and value == int(value)
            )  # 3.0, as JSON may send 3
            if isinstance(value, bool) or not whole:
                raise InvalidParameter(f"{_spoken(name)} must be a whole number, got {value!r}")
            object.__setattr__(self, name, int(value))
        for name in _NUMBERS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise InvalidParameter(f"{_spoken(name)} must be a number, got {value!r}")
            try:
                number = float(value)
            except OverflowError:  # 10**400
                raise InvalidParameter(f"{_spoken(name)} is too large, got {value}") from None
            if not math.isfinite(number) and name != "temperature":  # its own message below
                raise InvalidParameter(f"{_spoken(name)} must be a finite number, got {value!r}")
            object.__setattr__(self, name, number)
        for name in _FLAGS:
            value = getattr(self, name)
            # NumPy's too: numpy.bool_ (1.x), numpy.bool (2.x)
            if not isinstance(value, bool) and type(value).__name__ not in ("bool_", "bool"):
                raise InvalidParameter(f"{_spoken(name)} must be True or False, got {value!r}")
            object.__setattr__(self, name, bool(value))

    def __new__(cls, *args, **given):
        """An option it has not is one line (``DecodingOptions(temprature=0.8)`` had been
        Python's TypeError); the fields named, by keyword or by place, are the ones chosen."""
        names = [f.name for f in dataclasses.fields(cls)]
        if unknown := sorted(set(given) - set(names)):
            raise InvalidParameter(f"DecodingOptions has no option {unknown[0]!r}; it has "
                                   f"{', '.join(names)}")  # fmt: skip
        options = super().__new__(cls)
        # Not a field: equality, hash and asdict ignore it (pickle and copy keep it).
        object.__setattr__(options, "_given", frozenset(names[: len(args)]) | frozenset(given))
        return options

    @classmethod
    def partial(cls, **given) -> DecodingOptions:
        """The same as ``DecodingOptions(**given)`` (validated as usual; ``over`` fills in the
        rest from a captioner's own decoding); kept for the code that spelled it out."""
        return cls(**given)

    def in_force(self) -> dict:
        """The fields this method reads, as plain values: beam search has no temperature and
        sampling no beam width, so an echo of the options (the API's ``decoding``) leaves them
        out rather than show a value that did nothing."""
        unused = {
            "greedy": _BEAM_ONLY + _SAMPLING_ONLY,
            "beam": _SAMPLING_ONLY,
            "sample": _BEAM_ONLY,
            "narrowing": _BEAM_ONLY + ("top_p", "temperature"),  # its top_k is the starting width
        }[self.method]
        out = {k: v for k, v in dataclasses.asdict(self).items() if k not in unused}
        if self.method == "narrowing":  # the width it starts from, not "0"
            out["top_k"] = self.top_k or NARROWING_START
        return out

    def unread(self, resolved: DecodingOptions | None = None) -> list[str]:
        """The fields a caller chose that ``resolved`` (these options as they will run; default
        themselves) does not read: temperature for beam search, beam_width for sampling."""
        resolved = resolved or self
        unused = [f.name for f in dataclasses.fields(self) if f.name not in resolved.in_force()]
        if self._whole():  # a copy (dataclasses.replace, **asdict): the fields away from defaults
            defaults = DecodingOptions()
            return [name for name in unused if getattr(self, name) != getattr(defaults, name)]
        return [name for name in unused if name in self._given]

    @property
    def named(self) -> frozenset[str]:
        """The fields its caller named (the others come from a captioner's own decoding)."""
        return self._given

    def _whole(self) -> bool:
        """Every field named, as ``dataclasses.replace`` and ``DecodingOptions(**asdict(x))``
        name them: whole options, which replace a captioner's own (a copy of options had been
        refused for naming the temperature of a beam search it never chose)."""
        return len(self._given) == len(dataclasses.fields(self))

    def seeded(self) -> DecodingOptions:
        """These options with a seed drawn from the OS when they sample without one (31 bits,
        easy to read and type), so that the seed can be shown and the draw
        replayed; the same options for any other decoding."""
        if self.method not in ("sample", "narrowing") or self.seed is not None:
            return self
        out = dataclasses.replace(self, seed=secrets.randbits(31))
        object.__setattr__(out, "_given", self._given | {"seed"})  # as chosen as the rest
        return out

    def over(self, base: DecodingOptions | None) -> DecodingOptions:
        """These options on a captioner's own (``base``): the fields chosen replace its own,
        the others stay as ``base`` has them."""
        given = self._given
        if base is None or self._whole():
            return self
        if base.method != "sample":  # its sampling fields were never chosen: sampling's defaults
            defaults = DecodingOptions()
            base = dataclasses.replace(
                base, **{name: getattr(defaults, name) for name in _SAMPLE_SHAPE}
            )
        out = dataclasses.replace(base, **{name: getattr(self, name) for name in given})
        # Still only these were chosen: the options resolved again (the server resolves a
        # request's, then the library does) are judged by them, not against the class defaults.
        object.__setattr__(out, "_given", given)
        return out


# The fields as a notebook's or an IDE's signature help lists them (the custom __new__ had made
# it ``(*args, **given)``).
DecodingOptions.__signature__ = inspect.signature(DecodingOptions.__init__).replace(
    parameters=list(inspect.signature(DecodingOptions.__init__).parameters.values())[1:]
)


def _spoken(field_name: str) -> str:
    return _SPOKEN.get(field_name, field_name.replace("_", " "))


def stored_decoding(stored: object, who: str) -> DecodingOptions:
    """The decoding a checkpoint's config.json ships (its "decoding" object; keys this version
    does not know are left out); ModelNotFound naming captioner ``who`` when it is not options:
    "decoding": "beam" was an AttributeError traceback."""
    try:
        if not isinstance(stored, dict):
            raise TypeError("not a JSON object of options")
        known = DecodingOptions.__dataclass_fields__
        fields = {k: v for k, v in stored.items() if k in known}
        if fields.get("method") == "narrowing" and fields.get("top_k") == 0:
            # (asdict(DecodingOptions(method="narrowing")) stores 0 for its own starting width,
            # which a caller may not name: such a checkpoint had been called damaged)
            fields["top_k"] = NARROWING_START
        options = DecodingOptions(**fields)
        # The fields its method does not read at the class defaults: the shipped configs store
        # "temperature": 1.0 beside beam search, and a copy of a captioner's own decoding
        # (dataclasses.replace(captioner.default_decoding, beam_width=5)) had been refused for
        # choosing a temperature beam search ignores.
        defaults = DecodingOptions()
        options = dataclasses.replace(options, **{f.name: getattr(defaults, f.name)
                                                  for f in dataclasses.fields(options)
                                                  if f.name not in options.in_force()})  # fmt: skip
        # A captioner's own decoding handed back to it (decoding=captioner.default_decoding) is
        # no choice of options its method ignores: its stored sampling shape is not judged.
        object.__setattr__(options, "_given", frozenset(options.in_force()))
        return options
    except (TypeError, ValueError, CapsightError) as exc:
        # The value when it is short ('beam'); a whole object of options, cut to fit, had ended
        # mid-word ("'lengt is not decoding options").
        shown = f" {stored!r}" if len(repr(stored)) <= 40 else ""
        raise ModelNotFound(f"captioner {who}: its config's decoding{shown} is not decoding "
                            f"options ({exc}); the checkpoint is damaged") from None  # fmt: skip
