"""Turning a caption model's word distributions into sentences, for a whole batch at once.

    >>> out = decode(model, grid, DecodingOptions(method="beam", beam_width=3))
    >>> out[0].tokens, out[0].score, out[0].attention.shape   # ids, mean log-prob, (len, P)

Methods (``DecodingOptions.method``):

* ``greedy``: the most likely word at every step;
* ``beam``: batched beam search (``beam_width``), optional ``length_penalty`` (final score is
  ``sum log p / length ** penalty``); ``num_captions > 1`` runs diverse
  beam search (Vijayakumar et al. 2018): one beam group per caption, each group penalised for
  words the earlier groups chose at the same step, so the alternatives really differ;
* ``sample``: ancestral sampling with ``temperature``, ``top_k`` and ``top_p`` (seeded by
  ``seed``); ``num_captions`` independent samples per image;
* ``narrowing``: the original project's schedule, sampling from the ``top_k`` (default 5) most
  likely words for the first word, one fewer for each following word, greedy from then on.

Every method honours ``no_repeat_trigram``, ``no_repeat_word`` and ``complete_endings`` (no
``<eos>`` mid-phrase, when the model carries ``endings`` learned from its training captions).
"""

from __future__ import annotations

import dataclasses
import secrets
from dataclasses import dataclass, field

import torch

from capsight.captioning.base import DecodingOptions
from capsight.captioning.model import CaptionModel, State, expand_state, select_state
from capsight.captioning.options import NARROWING_START
from capsight.captioning.rules import apply_history_bans, ban_specials, whole_alternative

DIVERSITY_STRENGTH = 0.5  # Hamming penalty per earlier group that chose a word at the same step


@dataclass
class Decoded:
    tokens: list[int]  # word ids, no <bos>/<eos>
    score: float  # mean log-probability per emitted token (incl. <eos>)
    attention: torch.Tensor | None = None  # (len(tokens), P) for attention models
    alternatives: list[list[int]] = field(default_factory=list)


def decode(
    model: CaptionModel, grid: torch.Tensor, options: DecodingOptions | None = None
) -> list[Decoded]:
    """Decode a batch of encoder grids (B, P, D) into one Decoded per image."""
    options = options or DecodingOptions()
    limit = model.longest_caption(grid)
    if limit is not None and options.max_length > limit:  # the model's room, not an error
        options = dataclasses.replace(options, max_length=limit)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            if options.method == "greedy":
                return _greedy(model, grid, options)
            if options.method == "beam":
                if options.num_captions > 1:
                    return _diverse_beam(model, grid, options)
                return _beam(model, grid, options)
            return _sample(model, grid, options)
    finally:
        model.train(was_training)


# -- helpers ----------------------------------------------------------------------------------
def _finish(
    seqs: list[list[int]], logps: list[float], atts: list[list[torch.Tensor]] | None, eos: int
) -> list[Decoded]:
    out = []
    for i, seq in enumerate(seqs):
        words = seq[: seq.index(eos)] if eos in seq else seq
        steps = min(len(seq), len(words) + 1)
        attention = torch.stack(atts[i][: len(words)]) if atts is not None and words else None
        out.append(Decoded(words, logps[i] / max(steps, 1), attention))
    return out


# -- greedy and sampling ----------------------------------------------------------------------
def _greedy(model: CaptionModel, grid: torch.Tensor, options: DecodingOptions) -> list[Decoded]:
    return _run_sequential(model, grid, options, choose="greedy", generators=None, copies=1)


def _sample(model: CaptionModel, grid: torch.Tensor, options: DecodingOptions) -> list[Decoded]:
    copies = options.num_captions
    # One generator per caption, seeded by (seed, copy): the same seed gives an image the same
    # captions whatever else shares its batch.
    # Unseeded: a fresh seed from the OS (torch.seed() would reseed the caller's global RNG).
    seed = options.seed if options.seed is not None else secrets.randbits(62)
    generators = []
    for _ in range(grid.shape[0]):
        for copy in range(copies):
            g = torch.Generator(device=grid.device)
            g.manual_seed((seed * 1009 + copy) % 2**63)
            generators.append(g)
    decoded = _run_sequential(model, grid, options, options.method, generators, copies)
    if copies == 1:
        return decoded
    grouped = []
    for i in range(grid.shape[0]):
        group = decoded[i * copies : (i + 1) * copies]
        best = max(group, key=lambda d: d.score)
        best.alternatives = [d.tokens for d in group if d is not best]
        grouped.append(best)
    return grouped


def filter_logits(
    logits: torch.Tensor, temperature: float, top_k: int, top_p: float
) -> torch.Tensor:
    """Temperature, then keep the top-k words and the smallest set with mass >= top_p.

    Any temperature in (0, inf] is safe: the best word is shifted to 0 first, so near 0 every
    other word falls to -inf (greedy, the limit) instead of all of them overflowing; near inf
    the allowed words level out while the banned ones stay at -inf (not inf/inf = NaN)."""
    allowed = torch.isfinite(logits)  # (B, V)
    best = logits.masked_fill(~allowed, float("-inf")).amax(-1, keepdim=True)  # (B, 1)
    shifted = (logits - best.clamp(min=torch.finfo(logits.dtype).min)).masked_fill(~allowed, 0.0)
    # Within float32's range, where the arithmetic stays finite (1e-300 would be 0 there).
    temperature = min(max(float(temperature), 1e-30), 1e30)
    logits = (shifted / temperature).masked_fill(~allowed, float("-inf"))  # (B, V)
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[:, -1:]  # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)  # (B, V)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        drop = cumulative - sorted_logits.softmax(-1) >= top_p  # keep the word that crosses p
        drop[:, 0] = False  # and always the likeliest (a top-p below float32's tiniest is 0)
        logits = logits.scatter(-1, order, sorted_logits.masked_fill(drop, float("-inf")))
    return logits


def _run_sequential(
    model: CaptionModel,
    grid: torch.Tensor,
    options: DecodingOptions,
    choose: str,
    generators: list[torch.Generator] | None,
    copies: int,
) -> list[Decoded]:
    state = model.start(grid)
    if copies > 1:
        state = expand_state(state, copies)
    n = grid.shape[0] * copies
    # The sentences still open (indices into seqs): an ended one leaves the batch, so later steps
    # run the model on the open ones only.
    rows = torch.arange(n, device=grid.device)
    tokens = torch.full((n,), model.bos_id, dtype=torch.long, device=grid.device)
    seqs: list[list[int]] = [[] for _ in range(n)]
    total = torch.zeros(n, device=grid.device)
    atts: list[list[torch.Tensor]] | None = [[] for _ in range(n)] if model.has_attention else None
    for t in range(options.max_length):
        logits, state, alpha = model.step(tokens, state)  # (open, V)
        open_rows = rows.tolist()
        logp = ban_specials(model, logits.float().log_softmax(-1))  # (open, V)
        logp = apply_history_bans(model, logp, [seqs[r] for r in open_rows], options,
                                  last=t == options.max_length - 1)  # fmt: skip
        if t == options.max_length - 1:
            chosen = torch.full_like(tokens, model.eos_id)
        elif choose == "greedy":
            chosen = logp.argmax(-1)  # (open,)
        else:
            if choose == "narrowing":  # the original project's schedule, at temperature 1
                temperature, top_k, top_p = 1.0, max(1, (options.top_k or NARROWING_START) - t), 1.0
            else:
                temperature, top_k, top_p = options.temperature, options.top_k, options.top_p
            filtered = filter_logits(logp, temperature, top_k, top_p)  # (open, V)
            # Gumbel-max: argmax(logits + Gumbel noise) samples softmax(logits); row i's noise
            # comes from its own generator.
            uniform = torch.stack([
                torch.rand(filtered.shape[-1], generator=generators[r], device=filtered.device) for r in open_rows
            ]).clamp_(1e-12, 1.0 - 1e-7)  # fmt: skip
            chosen = (filtered - (-uniform.log()).log()).argmax(-1)  # (open,)
        total.index_add_(0, rows, logp.gather(1, chosen[:, None]).squeeze(1))
        for j, (r, word) in enumerate(zip(open_rows, chosen.tolist(), strict=True)):
            seqs[r].append(word)
            if atts is not None and alpha is not None:
                atts[r].append(alpha[j].float())
        ended = chosen == model.eos_id
        if bool(ended.all()):
            break
        if bool(ended.any()):
            kept = (~ended).nonzero().flatten()
            state, chosen, rows = select_state(state, kept), chosen[kept], rows[kept]
        tokens = chosen
    return _finish(seqs, total.tolist(), atts, model.eos_id)


# -- beam search ------------------------------------------------------------------------------
class _Beams:
    """One group of ``width`` beams for each of ``batch`` images, stepping in lockstep.

    Images whose search is over leave the batch (``retire``), so later steps run the model on
    the images still open only; ``ranked`` and ``result`` then read every image's final beams.
    """

    def __init__(self, model: CaptionModel, state: State, batch: int, width: int, device) -> None:
        self.model, self.batch, self.width = model, batch, width
        self.state = expand_state(state, width)  # (B*W, ...)
        self.tokens = torch.full((batch * width,), model.bos_id, dtype=torch.long, device=device)
        self.scores = torch.full((batch, width), float("-inf"), device=device)
        self.scores[:, 0] = 0.0  # all beams start identical; keep one alive
        self.done = torch.zeros(batch * width, dtype=torch.bool, device=device)
        self.seqs: list[list[int]] = [[] for _ in range(batch * width)]
        self.atts: list[list[torch.Tensor]] = [[] for _ in range(batch * width)]
        # The images still searched (their index in the batch given), and the retired ones' beams.
        self.images = list(range(batch))
        self.final_scores = torch.full((batch, width), float("-inf"))
        self.final_seqs: list[list[int]] = [[] for _ in range(batch * width)]
        self.final_atts: list[list[torch.Tensor]] = [[] for _ in range(batch * width)]

    def candidates(self, options: DecodingOptions, last: bool) -> tuple[torch.Tensor, torch.Tensor]:
        logits, self.state, alpha = self.model.step(self.tokens, self.state)  # (B*W, V)
        self.alpha = alpha
        logp = ban_specials(self.model, logits.float().log_softmax(-1))  # (B*W, V)
        logp = apply_history_bans(self.model, logp, self.seqs, options, last)
        if last:  # force every open beam to end
            forced = torch.full_like(logp, float("-inf"))
            forced[:, self.model.eos_id] = logp[:, self.model.eos_id].clamp(min=-1e4)
            logp = forced
        finished = torch.full_like(logp, float("-inf"))
        finished[:, self.model.pad_id] = 0.0  # a finished beam only extends with free padding
        logp = torch.where(self.done[:, None], finished, logp)
        return logp, self.scores.reshape(-1, 1) + logp  # (B*W, V) each

    def advance(self, total: torch.Tensor) -> None:
        """total (B*W, V) candidate scores -> keep the best ``width`` per image."""
        vocab = total.shape[-1]
        best, flat = total.reshape(self.batch, -1).topk(self.width, dim=-1)  # (B, W)
        source = flat // vocab + torch.arange(self.batch, device=flat.device)[:, None] * self.width
        source = source.reshape(-1)  # (B*W,) row each new beam continues
        words = (flat % vocab).reshape(-1)  # (B*W,)
        # Beams never move between images, so image-only entries need no reordering.
        self.state = select_state(self.state, source, self.model.static_state_keys)
        was_done = self.done[source]
        src = source.tolist()
        self.seqs = [list(self.seqs[s]) for s in src]
        self.atts = [list(self.atts[s]) for s in src]
        alpha = self.alpha.index_select(0, source) if self.alpha is not None else None
        for i, w in enumerate(words.tolist()):
            if not was_done[i]:
                self.seqs[i].append(w)
                if alpha is not None:
                    self.atts[i].append(alpha[i].float())
        self.done = was_done | (words == self.model.eos_id)
        self.scores = best
        self.tokens = torch.where(self.done, torch.full_like(words, self.model.eos_id), words)
        # The words chosen at this step: <pad> for beams that had ended before it.
        self.chosen = torch.where(was_done, torch.full_like(words, self.model.pad_id), words)

    def decided(self, best_only: bool) -> torch.Tensor:
        """(batch,) images whose search cannot change its outcome any more: all their beams have
        ended, or (``best_only``: only the best beam is wanted, ranked by summed log-probability)
        their best one has, since open beams can only lose score."""
        done = self.done.reshape(self.batch, self.width)
        return done.all(dim=1) | done[:, 0] if best_only else done.all(dim=1)

    def retire(self, which: torch.Tensor) -> None:
        """Take the images ``which`` (batch,) out of the search, their beams as they are now."""
        width, leaving = self.width, which.nonzero().flatten().tolist()
        for b in leaving:
            image = self.images[b]
            self.final_scores[image] = self.scores[b].cpu()
            for w in range(width):
                self.final_seqs[image * width + w] = self.seqs[b * width + w]
                self.final_atts[image * width + w] = self.atts[b * width + w]
        kept = (~which).nonzero().flatten().tolist()
        rows = [b * width + w for b in kept for w in range(width)]
        index = torch.tensor(rows, dtype=torch.long, device=self.tokens.device)
        self.state = select_state(self.state, index)  # every entry: these images' rows only
        self.tokens, self.done = self.tokens[index], self.done[index]
        self.scores = self.scores[torch.tensor(kept, dtype=torch.long, device=self.scores.device)]
        self.seqs, self.atts = [self.seqs[r] for r in rows], [self.atts[r] for r in rows]
        self.images, self.batch = [self.images[b] for b in kept], len(kept)

    def ranked(self, length_penalty: float) -> list[list[int]]:
        """Per image, beam rows ordered by length-normalised score (best first); retires every
        image still open."""
        self.retire(torch.ones(self.batch, dtype=torch.bool))
        batch = len(self.final_scores)
        lengths = torch.tensor([max(len(s), 1) for s in self.final_seqs], dtype=torch.float)
        normalised = self.final_scores / lengths.reshape(batch, self.width) ** length_penalty
        # (B, W); ties: search order
        order = normalised.argsort(dim=-1, descending=True, stable=True)
        return [[b * self.width + int(j) for j in order[b]] for b in range(batch)]

    def result(self, row: int) -> Decoded:
        """The beam in ``row`` of ``ranked``'s numbering (image * width + beam)."""
        seq = self.final_seqs[row]
        eos = self.model.eos_id
        words = seq[: seq.index(eos)] if eos in seq else seq
        steps = max(min(len(seq), len(words) + 1), 1)
        attention = (
            torch.stack(self.final_atts[row][: len(words)])
            if self.final_atts[row] and words
            else None
        )
        score = float(self.final_scores.reshape(-1)[row]) / steps
        return Decoded(words, score, attention)


def _run_beams(
    model: CaptionModel, grid: torch.Tensor, options: DecodingOptions, best_only: bool
) -> _Beams:
    """Beam search; an image leaves the batch once its outcome is settled: when all its beams
    have ended, or, for ``best_only`` callers, when its best beam has (``_Beams.decided``). The
    captions are the same as searching every image to the end (tests/captioning check this);
    the model runs on ~40% fewer rows with beam 4."""
    beams = _Beams(model, model.start(grid), grid.shape[0], options.beam_width, grid.device)
    best_only = best_only and options.length_penalty == 0  # a penalty can rank a longer beam first
    for t in range(options.max_length):
        _, total = beams.candidates(options, last=t == options.max_length - 1)
        beams.advance(total)
        settled = beams.decided(best_only)
        if bool(settled.all()):
            break
        if bool(settled.any()):
            beams.retire(settled)
    return beams


def _beam(model: CaptionModel, grid: torch.Tensor, options: DecodingOptions) -> list[Decoded]:
    beams = _run_beams(model, grid, options, best_only=True)
    return [beams.result(rows[0]) for rows in beams.ranked(options.length_penalty)]


def beam_candidates(
    model: CaptionModel, grid: torch.Tensor, options: DecodingOptions
) -> list[list[Decoded]]:
    """Every beam of a beam search, per image, best first (for re-ranking experiments)."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            beams = _run_beams(model, grid, options, best_only=False)
            return [
                [beams.result(r) for r in rows] for rows in beams.ranked(options.length_penalty)
            ]
    finally:
        model.train(was_training)


def _diversity_penalty(chosen: list[torch.Tensor], vocab_size: int, pad_id: int) -> torch.Tensor:
    """(B, V): for each word, how many earlier groups chose it at this step (``chosen``: one
    (B, W) tensor of words per group, ``pad_id`` where a beam had already ended). A group counts
    once however many of its beams chose the word, so the penalty does not grow with the beam
    width. Beams that ended earlier choose nothing: counting the end of the sentence they
    repeat kept later groups from ever ending, and filled them with run-on sentences."""
    penalty = torch.zeros(chosen[0].shape[0], vocab_size, device=chosen[0].device)
    for words in chosen:
        penalty += torch.zeros_like(penalty).scatter_(1, words, 1.0)
    penalty[:, pad_id] = 0.0
    return penalty


def _diverse_beam(
    model: CaptionModel, grid: torch.Tensor, options: DecodingOptions
) -> list[Decoded]:
    batch = grid.shape[0]
    start = model.start(grid)
    groups = [
        _Beams(model, start, batch, options.beam_width, grid.device)
        for _ in range(options.num_captions)
    ]
    for t in range(options.max_length):
        chosen_now: list[torch.Tensor] = []  # (B, W) words of earlier groups at this step
        for group in groups:
            logp, total = group.candidates(options, last=t == options.max_length - 1)
            if chosen_now:
                penalty = _diversity_penalty(chosen_now, logp.shape[-1], model.pad_id)
                total = total - DIVERSITY_STRENGTH * penalty.repeat_interleave(group.width, dim=0)
            group.advance(total)
            # The penalised total is what ranks beams inside the group; keep true scores apart.
            chosen_now.append(group.chosen.reshape(batch, group.width))
        if all(bool(g.done.all()) for g in groups):
            break
    ranked = [g.ranked(options.length_penalty) for g in groups]
    results = []
    for b in range(batch):
        # Each group's best first; when groups agree, their other beams fill the count.
        order = [(0, gi) for gi in range(len(groups))] + [
            (rank, gi) for rank in range(1, options.beam_width) for gi in range(len(groups))
        ]
        captions = [groups[gi].result(ranked[gi][b][rank]) for rank, gi in order
                    if rank < len(ranked[gi][b])]  # fmt: skip
        best, seen, alternatives = captions[0], {tuple(captions[0].tokens)}, []
        for c in captions[1:]:
            if len(alternatives) == options.num_captions - 1:
                break
            if (
                whole_alternative(c.tokens, best.tokens, model)
                and c.score > float("-inf")
                and tuple(c.tokens) not in seen
            ):
                seen.add(tuple(c.tokens))
                alternatives.append(c.tokens)
        best.alternatives = alternatives
        results.append(best)
    return results
