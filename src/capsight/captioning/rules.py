"""The decoding rules every method applies, on torch tensors and NumPy arrays alike.

    >>> logp = ban_specials(model, logp)                          # (N, V): no <unk>, <pad>, <bos>
    >>> logp = apply_history_bans(model, logp, seqs, options, last=False)

``model`` is anything with the caption model's ``bos_id``, ``eos_id``, ``pad_id``, ``unk_id`` and
``endings`` attributes; ``logp`` is (N, V) log-probabilities, changed in place and returned. Both
the torch decoder (``capsight.captioning.decoding``) and the ONNX Runtime one
(``capsight.ort.captioner``) call these, so the two follow one set of rules.
"""

from __future__ import annotations

import numpy as np

from capsight.captioning.options import DecodingOptions

# Words a caption may say again right after a word it repeats ("in a red shirt ... in a pool");
# any other word may not follow a repeat of the word it followed before: "a bike ... a bike",
# "a woman and a woman". Ids from ``function_word_ids`` (the model's ``function_ids``).
FUNCTION_WORDS = frozenset(
    "a an the in on of and is are with at to for while into through near by from its his her "
    "their up down over under next front side other another two three some as one it that who "
    "behind outside around each".split()
)


# Words no whole caption starts with. With N diverse captions, the penalty that pushes each
# group of beams off the words earlier groups chose can push a weak model off "a" into the tail
# of a sentence: show-and-tell's alternatives included "to the camera", "of a group of people"
# and "fence" (10 of 80 on 20 COCO photos). An alternative must start elsewhere and have 3
# words (or as many as the best caption, where that is shorter).
NOT_FIRST_WORDS = frozenset(
    "of in on and is are with at to for while into through near by from as that who behind "
    "outside around up down over under next front side".split()
)
MIN_ALTERNATIVE_WORDS = 3


def not_first_word_ids(itos: list[str]) -> frozenset[int]:
    """The ids of ``NOT_FIRST_WORDS`` in a vocabulary's ``itos``."""
    return frozenset(i for i, word in enumerate(itos) if word in NOT_FIRST_WORDS)


def whole_alternative(tokens: list[int], best: list[int], model) -> bool:
    """Whether ``tokens``, an alternative to the caption ``best``, reads as a caption of its own:
    3 words or more (as many as ``best`` where it has fewer), the first not one of
    ``NOT_FIRST_WORDS`` (the model's ``not_first_ids``; a model without them is not checked)."""
    if len(tokens) < min(MIN_ALTERNATIVE_WORDS, max(len(best), 1)):
        return False
    return tokens[0] not in (getattr(model, "not_first_ids", None) or ())


def function_word_ids(itos: list[str]) -> frozenset[int]:
    """The ids of ``FUNCTION_WORDS`` in a vocabulary's ``itos``."""
    return frozenset(i for i, word in enumerate(itos) if word in FUNCTION_WORDS)


def banned_phrase_words(seq: list[int], function_ids: frozenset[int]) -> list[int]:
    """The words that would repeat a two-word phrase of ``seq`` ending in a content word."""
    if not seq:
        return []
    last = seq[-1]
    return [
        seq[i + 1] for i in range(len(seq) - 1) if seq[i] == last and seq[i + 1] not in function_ids
    ]


def banned_trigram_words(seq: list[int]) -> list[int]:
    """The words that would repeat a trigram already in ``seq``."""
    if len(seq) < 3:
        return []
    last = (seq[-2], seq[-1])
    return [seq[i + 2] for i in range(len(seq) - 2) if (seq[i], seq[i + 1]) == last]


def ban_specials(model, logp):
    """Open sentences may not emit <unk>, <pad> or <bos> (only words or <eos>)."""
    banned = {model.pad_id, model.bos_id, getattr(model, "unk_id", None)} - {model.eos_id, None}
    logp[:, sorted(banned)] = float("-inf")
    return logp


def apply_history_bans(model, logp, history: list[list[int]], options: DecodingOptions, last: bool):
    """Repeated trigrams, phrases and words, and (before the last step) an empty caption, endings
    mid-phrase and first words no training caption starts with, per row. Phrases only for a
    model that knows its ``function_ids`` (a loaded checkpoint with a word vocabulary)."""
    endings = model.endings if options.complete_endings and not last else None
    function_ids = getattr(model, "function_ids", None) if options.no_repeat_phrase else None
    if endings is not None:
        _ban_first_words(logp, [row for row, seq in enumerate(history) if not seq], endings)
    for row, seq in enumerate(history):
        if seq and seq[-1] == model.eos_id:
            continue  # finished: the caller pads it
        banned = banned_trigram_words(seq) if options.no_repeat_trigram else []
        if not seq and not last:
            # No empty caption: a model without learned endings (a GPT-2 tokenizer's) had, by
            # beam search, ended at once more likely than after five words.
            banned.append(model.eos_id)
        if function_ids is not None:
            banned += banned_phrase_words(seq, function_ids)
        if options.no_repeat_word and seq:
            banned.append(seq[-1])
        if endings is not None and not endings.allows(seq):
            banned.append(model.eos_id)
        if banned:
            logp[row, banned] = float("-inf")
    return logp


def _ban_first_words(logp, rows: list[int], endings) -> None:
    """At ``rows`` (sentences with no word yet), every word no training caption starts with:
    one masked write for them all (per row, a list of ~2,400 ids had cost 40 ms a batch)."""
    if not rows or (mask := endings.not_first_mask(logp)) is None:
        return
    if hasattr(logp, "masked_fill"):  # torch
        logp[rows] = logp[rows].masked_fill(mask, float("-inf"))
    else:
        logp[rows] = np.where(mask, -np.inf, logp[rows])
