"""Why a request for several captions, or for a caption of a given length, came back short, in
the words of the face that asked: the CLI's flags (``--temperature``) or the HTTP API's fields
(``temperature``)."""

from __future__ import annotations

SHORT_CAPTION = 5  # tokens (the end one included): a max_length under this limits num_captions

# How each face spells the options the advice names.
CLI_SPELLING = {"max_length": "--max-length", "temperature": "--temperature", "top_k": "--top-k",
                "top_p": "--top-p", "sample": "--sample"}  # fmt: skip
API_SPELLING = {"max_length": "max_length", "temperature": "temperature", "top_k": "top_k",
                "top_p": "top_p", "sample": "method=sample"}  # fmt: skip


def fewer_reason(decoding, spell: dict[str, str] = CLI_SPELLING) -> str:
    """Why fewer distinct captions came back than were asked for, with advice that fits the
    decoding asked for (None: the model's own, a beam search)."""
    method = getattr(decoding, "method", "beam")
    length = getattr(decoding, "max_length", None)
    if length is not None and length < SHORT_CAPTION:  # the limit, not the model, ran out
        return (f"{spell['max_length']} {length} leaves room for few sentences (a larger one "
                "allows more)")  # fmt: skip
    if method == "sample":
        return (f"the model was sure of its answer (a higher {spell['temperature']}, or a larger "
                f"{spell['top_k']} or {spell['top_p']}, varies more)")  # fmt: skip
    if method == "narrowing":
        return (f"the model was sure of its answer (a larger {spell['top_k']}, the schedule's "
                f"starting width, or {spell['sample']} with a higher {spell['temperature']} "
                "varies more)")  # fmt: skip
    return (f"the model was sure of its answer ({spell['sample']} with a higher "
            f"{spell['temperature']} varies more)")  # fmt: skip


def reached_limit(tokens: list, max_length: int) -> bool:
    """Whether a caption of ``tokens`` (words, no end token) ran into ``max_length`` (tokens,
    the end one included), where decoding ends it, finished or not."""
    return len(tokens) >= max_length - 1
