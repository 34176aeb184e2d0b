import dataclasses
import math

import pytest
import torch

from capsight.captioning.base import DecodingOptions
from capsight.captioning.decoding import _diversity_penalty, beam_candidates, decode, filter_logits
from capsight.captioning.model import CaptionModel
from capsight.captioning.rules import banned_trigram_words
from capsight.errors import InvalidParameter


class ScriptedModel(CaptionModel):
    """Always prefers the same word sequence: next word = scripted[step], then <eos>."""

    def __init__(self, script: list[list[float]]):
        super().__init__()
        self.script = torch.tensor(script)  # (T, V) logits per step

    def start(self, grid):
        return {"t": torch.zeros(grid.shape[0], dtype=torch.long)}

    def step(self, tokens, state):
        t = state["t"].clamp(max=len(self.script) - 1)
        return self.script[t], {"t": state["t"] + 1}, None


def test_greedy_and_beam_shapes_and_attention(tiny_model, grid):
    model = tiny_model("show-attend-tell")
    for options in (
        DecodingOptions(method="greedy", max_length=6),
        DecodingOptions(beam_width=3, max_length=6),
    ):
        out = decode(model, grid, options)
        assert len(out) == 3
        for d in out:
            assert len(d.tokens) <= 6 and all(t >= 3 for t in d.tokens)  # no specials in the words
            if d.tokens:
                assert d.attention.shape == (len(d.tokens), 49)
            assert d.score <= 0


def test_beam_search_is_batch_independent(tiny_model, grid):
    model = tiny_model("show-attend-tell")
    options = DecodingOptions(beam_width=3, max_length=8, no_repeat_trigram=False)
    together = decode(model, grid, options)
    alone = [decode(model, grid[i : i + 1], options)[0] for i in range(3)]
    assert [d.tokens for d in together] == [d.tokens for d in alone]


def test_beam_candidates_lists_every_beam_best_first(tiny_model, grid):
    model = tiny_model("show-attend-tell")
    options = DecodingOptions(beam_width=3, max_length=8)
    candidates = beam_candidates(model, grid, options)
    assert [len(c) for c in candidates] == [3, 3, 3]
    assert [c[0].tokens for c in candidates] == [d.tokens for d in decode(model, grid, options)]


class EndsAfter(CaptionModel):
    """A trained-architecture model steered for search tests: each step the model's own likeliest
    word scores 0, its second -1, <eos> -4 (so lower beams end first), every other word -20; once
    image i has ``lengths[i]`` words, <eos> scores +5 for the beams that never took a second
    choice (the best one), while the others go on. The words still come from the model's state,
    so the search must carry each image's state rows faithfully."""

    def __init__(self, model: CaptionModel, lengths: list[int]):
        super().__init__()
        self.model, self.lengths = model, torch.tensor(lengths)
        self.has_attention, self.static_state_keys = model.has_attention, model.static_state_keys

    extra = ("image", "t", "second", "detour")

    def start(self, grid):
        n = grid.shape[0]
        zeros = torch.zeros(n, dtype=torch.long)
        return {**self.model.start(grid), "image": torch.arange(n), "t": zeros, "second": zeros - 1,
                "detour": zeros.bool()}  # fmt: skip

    def step(self, tokens, state):
        own = {k: v for k, v in state.items() if k not in self.extra}
        logits, own, alpha = self.model.step(tokens, own)
        words = logits.clone()
        words[:, [self.pad_id, self.bos_id, self.eos_id, self.unk_id]] = float("-inf")
        top = words.topk(2, dim=-1).indices  # (N, 2)
        steered = torch.full_like(logits, -20.0)
        steered.scatter_(1, top, torch.tensor([[0.0, -1.0]]).expand_as(top))
        detour = state["detour"] | (tokens == state["second"])
        ended = (state["t"] >= self.lengths[state["image"]]) & ~detour
        steered[:, self.eos_id] = torch.where(ended, 5.0, -4.0)
        extra = {
            "image": state["image"],
            "t": state["t"] + 1,
            "second": top[:, 1],
            "detour": detour,
        }
        return steered, {**own, **extra}, alpha


@pytest.mark.parametrize("architecture", ["show-attend-tell", "show-and-tell", "prefix-gpt2"])
def test_settled_images_leave_the_beam_search_without_changing_it(tiny_model, architecture):
    # Images leave the search once their best beam has ended (or, for beam_candidates, all have);
    # the captions and scores must be those of each image searched alone to the end.
    lengths = [1, 4, 2, 9, 3, 1, 6, 12]  # 12 > max_length: forced to end
    model = EndsAfter(tiny_model(architecture), lengths)
    grid = torch.randn(len(lengths), 49, 1280, generator=torch.Generator().manual_seed(1))
    options = DecodingOptions(
        beam_width=3, max_length=10, no_repeat_trigram=False, no_repeat_word=False
    )
    rows = []
    step = model.step
    model.step = lambda tokens, state: rows.append(len(tokens)) or step(tokens, state)
    best = decode(model, grid, options)
    searched = sum(rows)
    full = [c[0] for c in beam_candidates(model, grid, options)]
    alone = [
        decode(EndsAfter(model.model, [n]), grid[i : i + 1], options)[0]
        for i, n in enumerate(lengths)
    ]
    assert [len(d.tokens) for d in best] == [min(n, 9) for n in lengths]
    assert [d.tokens for d in best] == [d.tokens for d in full] == [d.tokens for d in alone]
    assert [d.score for d in best] == pytest.approx([d.score for d in alone], abs=1e-6)
    assert [d.score for d in full] == pytest.approx([d.score for d in alone], abs=1e-6)
    assert searched < sum(rows) - searched  # the best-only search ran the model on fewer rows


@pytest.mark.parametrize("method", ["greedy", "sample"])
def test_ended_sentences_leave_greedy_and_sampled_decoding(tiny_model, method):
    lengths = [1, 4, 2, 9, 3, 12]
    model = EndsAfter(tiny_model("show-attend-tell"), lengths)
    grid = torch.randn(len(lengths), 49, 1280, generator=torch.Generator().manual_seed(1))
    options = DecodingOptions(method=method, max_length=10, seed=3, top_k=1, no_repeat_trigram=False,
                              no_repeat_word=False)  # fmt: skip
    rows = []
    step = model.step
    model.step = lambda tokens, state: rows.append(len(tokens)) or step(tokens, state)
    together = decode(model, grid, options)
    alone = [
        decode(EndsAfter(model.model, [n]), grid[i : i + 1], options)[0]
        for i, n in enumerate(lengths)
    ]
    assert [len(d.tokens) for d in together] == [min(n, 9) for n in lengths]
    assert [d.tokens for d in together] == [d.tokens for d in alone]
    assert [d.score for d in together] == pytest.approx([d.score for d in alone], abs=1e-6)
    assert rows[:4] == [6, 6, 5, 4]  # a sentence that has ended is not run again


class BranchingModel(CaptionModel):
    """After <bos>: word 4 (p=.5) or 5 (p=.4); after 5 <eos> is certain; after 4 all is flat."""

    def start(self, grid):
        return {"unused": torch.zeros(grid.shape[0])}

    def step(self, tokens, state):
        probs = torch.full((tokens.shape[0], 8), 1e-6)
        first, after5 = tokens == self.bos_id, tokens == 5
        probs[first, 4], probs[first, 5], probs[first, 6] = 0.5, 0.4, 0.1
        probs[after5, self.eos_id] = 1.0
        probs[~first & ~after5, 2:] = 1 / 6
        return probs.log(), state, None


def test_beam_finds_the_better_sentence_greedy_misses():
    model, grid = BranchingModel(), torch.zeros(1, 1, 1)
    greedy = decode(model, grid, DecodingOptions(method="greedy", max_length=4))[0]
    beam = decode(model, grid, DecodingOptions(beam_width=2, max_length=4))[0]
    assert greedy.tokens[0] == 4 and beam.tokens == [5]
    assert beam.score > greedy.score


def test_length_penalty_prefers_longer_sentences():
    model, grid = BranchingModel(), torch.zeros(1, 1, 1)
    short = decode(model, grid, DecodingOptions(beam_width=4, max_length=3, length_penalty=0.0))[0]
    long = decode(model, grid, DecodingOptions(beam_width=4, max_length=3, length_penalty=3.0))[0]
    assert len(long.tokens) > len(short.tokens)


def test_no_repeat_trigram_bans_the_third_word():
    assert [banned_trigram_words(s) for s in ([7, 8, 9, 7, 8], [7, 8], [1, 2, 3, 4])] == [
        [9],
        [],
        [],
    ]
    # A model that loves the loop "6 7 6 7 ...": with the ban it cannot repeat "6 7 6".
    script = [[-5.0] * 8 for _ in range(8)]
    for t, row in enumerate(script):
        row[6 if t % 2 == 0 else 7] = 5.0
    model = ScriptedModel(script)
    free = decode(
        model,
        torch.zeros(1, 1, 1),
        DecodingOptions(method="greedy", max_length=8, no_repeat_trigram=False),
    )[0]
    banned = decode(model, torch.zeros(1, 1, 1), DecodingOptions(method="greedy", max_length=8))[0]

    def trigrams(seq):
        return [tuple(seq[i : i + 3]) for i in range(len(seq) - 2)]

    assert free.tokens[:5] == [6, 7, 6, 7, 6]
    assert len(set(trigrams(free.tokens))) < len(trigrams(free.tokens))
    assert banned.tokens[:4] == [6, 7, 6, 7] and banned.tokens[4:5] != [6]
    assert len(set(trigrams(banned.tokens))) == len(trigrams(banned.tokens))


def test_sampling_is_deterministic_with_a_seed(tiny_model, grid):
    model = tiny_model("show-and-tell")
    options = DecodingOptions(method="sample", seed=7, temperature=1.5, max_length=8)
    first = [d.tokens for d in decode(model, grid, options)]
    again = [d.tokens for d in decode(model, grid, options)]
    other = [
        d.tokens
        for d in decode(
            model, grid, DecodingOptions(method="sample", seed=8, temperature=1.5, max_length=8)
        )
    ]
    assert first == again
    assert first != other
    # An image's captions do not depend on what else shares its batch.
    alone = [d.tokens for d in decode(model, grid[1:2], options)]
    assert alone == first[1:2]


def test_unseeded_sampling_leaves_the_callers_random_state_alone(tiny_model, grid):
    model = tiny_model("show-and-tell")
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    first = decode(model, grid, DecodingOptions(method="sample", max_length=6))
    assert torch.equal(torch.rand(3), expected)
    second = decode(model, grid, DecodingOptions(method="sample", max_length=6, num_captions=4))
    assert first and second  # (two unseeded runs may differ: each draws its own seed)


def test_filter_logits_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(filter_logits(logits, 1.0, 2, 1.0)[0, 2:]).all()
    kept = ~torch.isinf(filter_logits(logits, 1.0, 0, 0.7))
    assert kept.tolist() == [[True, True, False, False]]  # 0.5 < 0.7 <= 0.8


@pytest.mark.parametrize("temperature", [1e-300, 1e-40, 1e39, float("inf")])
def test_extreme_temperatures_keep_the_words_apart_from_the_banned_ones(temperature):
    """float32 overflowed: every word became -inf or NaN, and captions came back empty."""
    logits = torch.tensor([[-0.5, -1.0, float("-inf"), -3.0]])  # word 2 banned
    out = filter_logits(logits, temperature, 0, 1.0)
    assert out[0, 0] == 0 and torch.isfinite(out[0, [0, 1, 3]]).all()
    assert out[0, 2] == float("-inf") and not out.isnan().any()
    assert int(out.argmax()) == 0


def test_a_vanishing_top_p_keeps_the_likeliest_word():
    logits = torch.log(torch.tensor([[0.2, 0.5, 0.3]]))
    assert (~torch.isinf(filter_logits(logits, 1.0, 0, 1e-300))).tolist() == [[False, True, False]]


def test_sampling_near_zero_temperature_is_greedy(tiny_model, grid):
    model = tiny_model("show-attend-tell")
    greedy = [d.tokens for d in decode(model, grid, DecodingOptions(method="greedy", max_length=8))]
    cold = DecodingOptions(method="sample", temperature=1e-300, seed=3, max_length=8)
    assert [d.tokens for d in decode(model, grid, cold)] == greedy
    hot = decode(
        model, grid, DecodingOptions(method="sample", temperature=1e39, seed=3, max_length=8)
    )
    assert all(d.tokens and math.isfinite(d.score) for d in hot)  # words, and a finite score


def test_narrowing_samples_at_temperature_one_whatever_the_options_say(tiny_model, grid):
    """The original project's schedule: sampling's default temperature (0.7) is not its."""
    model = tiny_model("show-attend-tell")
    runs = [[d.tokens for d in decode(model, grid, DecodingOptions(method="narrowing", seed=4, top_k=8,
                                                                   max_length=8, temperature=t))]
            for t in (0.05, 1.0, DecodingOptions.temperature)]  # fmt: skip
    assert runs[0] == runs[1] == runs[2]
    assert "temperature" not in DecodingOptions(method="narrowing").in_force()
    cold = decode(
        model, grid, DecodingOptions(method="sample", seed=4, max_length=8, temperature=0.05)
    )
    assert [d.tokens for d in cold] != runs[0]  # (the same seed at 0.05 samples otherwise)


@pytest.mark.parametrize("method", ["sample", "narrowing"])
def test_num_captions_gives_alternatives(tiny_model, grid, method):
    model = tiny_model("show-attend-tell")
    out = decode(
        model,
        grid,
        DecodingOptions(method=method, seed=0, num_captions=3, max_length=6, temperature=2.0),
    )
    assert len(out) == 3
    if method == "sample":
        assert all(len(d.alternatives) == 2 for d in out)


def test_diverse_beam_alternatives_differ(tiny_model, grid):
    model = tiny_model("show-attend-tell")
    out = decode(model, grid, DecodingOptions(beam_width=2, num_captions=3, max_length=6))
    for d in out:
        assert all(alt != d.tokens for alt in d.alternatives)
        assert len({tuple(a) for a in d.alternatives}) == len(d.alternatives)


def test_diverse_beam_fills_the_count_when_its_groups_agree():
    # Every group prefers the same sentence; the groups' other beams still give 3 distinct ones.
    script = [[-9.0, -9.0, 2.0, -9.0, 5.0, 4.0, 3.0, -9.0]] * 2 + [[-9.0, -9.0, 9.0] + [-9.0] * 5]
    out = decode(
        ScriptedModel(script),
        torch.zeros(1, 1, 1),
        DecodingOptions(beam_width=3, num_captions=3, max_length=4),
    )[0]
    assert len({tuple(out.tokens), *map(tuple, out.alternatives)}) == 3


def test_diverse_beam_groups_still_end_after_earlier_groups_have():
    # The likeliest sentences are one word long. Finished beams repeat <eos> at every later step;
    # once that counted against ending, later groups ran on to the length limit.
    script = [[-9.0, -9.0, -9.0, -9.0, 5.0, 4.8, 4.6, 4.4]] + [
        [-9.0, -9.0, 4.0] + [-9.0] * 4 + [0.0]
    ] * 7
    options = DecodingOptions(beam_width=4, num_captions=4, max_length=8, no_repeat_phrase=False)
    out = decode(ScriptedModel(script), torch.zeros(1, 1, 1), options)[0]
    assert len(out.alternatives) == 3
    assert all(len(a) == 1 for a in [out.tokens, *out.alternatives])


def test_an_alternative_is_a_caption_of_its_own_not_the_tail_of_one():
    """Pushed off "a" by the diversity penalty, show-and-tell's later groups said "to the
    camera", "of a group of people", "fence"."""
    from capsight.captioning.rules import whole_alternative

    class Words:
        not_first_ids = frozenset({5})  # "of", say

    best = [4, 6, 7, 6]
    assert whole_alternative([4, 7, 6], best, Words())
    assert not whole_alternative([5, 4, 7, 6], best, Words())  # starts with "of"
    assert not whole_alternative([7, 6], best, Words())  # two words beside a caption of four
    assert whole_alternative([7], [4], Words())  # as many words as the best: a caption too
    script = [[-9.0, -9.0, -9.0, -9.0, 5.0, 4.8, 4.6, 4.4]] + [
        [-9.0, -9.0, 4.0] + [-9.0] * 4 + [0.0]
    ] * 7
    model = ScriptedModel(script)
    model.not_first_ids = frozenset({5})
    options = DecodingOptions(beam_width=4, num_captions=4, max_length=8, no_repeat_phrase=False)
    out = decode(model, torch.zeros(1, 1, 1), options)[0]
    assert out.tokens == [4] and [5] not in out.alternatives and [6] in out.alternatives


def test_a_group_ending_counts_against_ending_there_but_its_finished_beams_do_not():
    # The second group, told off "4", says "5 7"; had the first group's finished beam kept
    # counting its <eos> at every later step, the second would have run on ("5 7 6").
    script = ([[-9.0, -9.0, -9.0, -9.0, 5.0, 4.9, -9.0, -9.0], [-9.0, -9.0, 3.0] + [-9.0] * 4 + [2.8]]
              + [[-9.0, -9.0, 3.0, -9.0, -9.0, -9.0, 2.8, -9.0]] * 4)  # fmt: skip
    options = DecodingOptions(beam_width=1, num_captions=2, max_length=6, no_repeat_phrase=False)
    out = decode(ScriptedModel(script), torch.zeros(1, 1, 1), options)[0]
    assert out.tokens == [4] and out.alternatives == [[5, 7]]


def test_diversity_penalty_counts_each_earlier_group_once():
    first = torch.tensor([[4, 4, 4, 0]])  # one group: three beams chose word 4, one had ended
    second = torch.tensor([[4, 5, 2, 0]])  # one beam ends now: the end of the sentence counts
    penalty = _diversity_penalty([first, second], 8, pad_id=0)
    assert penalty[0].tolist() == [0, 0, 1, 0, 2, 1, 0, 0]


def test_unknown_word_is_never_emitted():
    script = [[0.0, 0.0, -9.0, 9.0, 1.0, -9.0, -9.0, -9.0]] * 3  # <unk> (3) is the favourite
    out = decode(
        ScriptedModel(script), torch.zeros(1, 1, 1), DecodingOptions(method="greedy", max_length=3)
    )[0]
    assert 3 not in out.tokens and out.tokens[0] == 4


def test_decoding_options_are_validated():
    with pytest.raises(InvalidParameter):
        DecodingOptions(method="nucleus")
    with pytest.raises(InvalidParameter):
        DecodingOptions(top_p=0.0)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidParameter, match="temperature"):
            DecodingOptions(method="sample", temperature=bad)
    with pytest.raises(InvalidParameter, match=r"got 0.0; for the likeliest word every time, ask "
                                               r"for greedy decoding \(--greedy, method='greedy'\)$"):  # fmt: skip
        DecodingOptions(method="sample", temperature=0)
    with pytest.raises(InvalidParameter, match="greedy decoding has one answer"):
        DecodingOptions(method="greedy", num_captions=3)
    for seed in (-1, 2**63, 2**70):  # they would wrap onto other seeds' samples
        with pytest.raises(InvalidParameter, match=r"seed must be between 0 and 2\*\*63 - 1"):
            DecodingOptions(method="sample", seed=seed)


def test_partial_options_keep_the_rest_of_a_captioners_own_decoding():
    from dataclasses import asdict

    own = DecodingOptions(beam_width=4, max_length=16)
    partial = DecodingOptions.partial(num_captions=3)
    assert partial.over(own) == DecodingOptions(beam_width=4, max_length=16, num_captions=3)
    assert DecodingOptions.partial(method="greedy").over(own).method == "greedy"
    # The constructor's options are judged by the fields named, as the CLI's and the HTTP
    # API's are: DecodingOptions(num_captions=3) had replaced the photo default's beam 4 by 3.
    plain = DecodingOptions(num_captions=3)
    assert plain.over(own) == partial.over(own) and partial.over(None) is partial
    assert DecodingOptions(method="beam", beam_width=3).over(own).beam_width == 3
    assert DecodingOptions("beam", 5).over(own) == DecodingOptions(beam_width=5, max_length=16)
    full = DecodingOptions(**asdict(DecodingOptions()))  # every field named: the class defaults
    assert full.over(own) is full
    # A copy names every field: whole options, judged as before by the fields away from the
    # defaults (a copied beam search had been refused for the temperature it never chose).
    copied = dataclasses.replace(DecodingOptions(), beam_width=5)
    assert copied.unread() == [] and full.unread() == [] and copied.over(own) is copied
    assert dataclasses.replace(DecodingOptions(), temperature=0.5).unread() == ["temperature"]
    assert partial == plain and hash(partial) == hash(plain) and asdict(partial) == asdict(plain)
    with pytest.raises(InvalidParameter):  # validated when made, not only when laid over
        DecodingOptions.partial(beam_width=0)
    with pytest.raises(
        InvalidParameter, match="DecodingOptions has no option 'beam'; it has method, "
    ):
        DecodingOptions.partial(beam=3)  # a TypeError from the constructor before
    with pytest.raises(InvalidParameter, match="^DecodingOptions has no option 'temprature'"):
        DecodingOptions(temprature=0.8)  # the constructor itself too (a TypeError before)
    import copy
    import pickle

    assert pickle.loads(pickle.dumps(full)) == full == copy.deepcopy(full)
    assert pickle.loads(pickle.dumps(plain)).over(own).beam_width == 4  # still only num_captions
    # Evaluation reports (and a captioner's caption() runs) the options laid on its own too.
    import types

    from capsight.training.evaluate import resolved_decoding

    captioner = types.SimpleNamespace(default_decoding=own)
    assert resolved_decoding(captioner, plain) == partial.over(own)
    assert resolved_decoding(captioner, None) is own
    assert copy.deepcopy(plain).over(own).beam_width == 4
    # A beam-search captioner's config stores sampling fields it never chose (temperature 1 in
    # the shipped ones): asked to sample, it samples with sampling's defaults, not those.
    shipped = DecodingOptions(beam_width=4, temperature=1.0, top_p=0.8)
    sampled = DecodingOptions.partial(method="sample").over(shipped)
    assert (sampled.temperature, sampled.top_p) == (DecodingOptions.temperature, 1.0)
    own_sampler = DecodingOptions(method="sample", temperature=0.9)  # chose its own: kept
    assert DecodingOptions.partial(num_captions=3).over(own_sampler).temperature == 0.9


def test_a_copy_of_a_shipped_decoding_and_numpy_flags_are_taken():
    """dataclasses.replace(captioner.default_decoding, beam_width=5), which the class's own
    docstring suggests, was refused for the temperature the config stores beside beam search;
    a NumPy 2 bool was "must be True or False"; narrowing's top_k=0 was quietly 5."""
    import numpy as np

    from capsight.captioning.options import stored_decoding

    own = stored_decoding({"method": "beam", "beam_width": 4, "temperature": 1.0, "top_p": 0.9},
                          "show-attend-tell")  # fmt: skip
    copied = dataclasses.replace(own, beam_width=5)
    assert copied.unread() == [] and copied.over(own) is copied and copied.beam_width == 5
    assert DecodingOptions(no_repeat_trigram=np.bool_(False)).no_repeat_trigram is False
    with pytest.raises(InvalidParameter, match="^top-k: narrowing starts from the top_k likeliest"):
        DecodingOptions(method="narrowing", top_k=0)
    # left out, or a copy of options that left it out: narrowing's own starting width
    assert DecodingOptions(method="narrowing").in_force()["top_k"] == 5
    assert dataclasses.replace(DecodingOptions(method="narrowing"), seed=1).in_force()["top_k"] == 5
    # as export_model stores it (no seed): a checkpoint, not a caller naming top_k=0
    stored = {
        k: v
        for k, v in dataclasses.asdict(DecodingOptions(method="narrowing")).items()
        if k != "seed"
    }
    assert stored_decoding(stored, "mine").in_force()["top_k"] == 5


def test_no_repeat_word_bans_a_word_right_after_itself():
    script = [[-5.0] * 8 for _ in range(6)]
    for row in script:
        row[6], row[7] = 5.0, 4.0  # "6" every time, "7" a close second
    model = ScriptedModel(script)
    options = DecodingOptions(method="greedy", max_length=5, no_repeat_trigram=False)
    free = decode(
        model,
        torch.zeros(1, 1, 1),
        dataclasses.replace(options, no_repeat_word=False),
    )[0]
    banned = decode(model, torch.zeros(1, 1, 1), options)[0]
    assert free.tokens == [6, 6, 6, 6]
    assert banned.tokens == [6, 7, 6, 7]


def test_no_repeat_phrase_bans_a_content_word_after_a_repeated_word():
    """ "a bike on a bike": after "a" again, "bike" may not follow it again; "a" after a repeated
    "in" may ("in a red shirt ... in a pool"). Only for a model that knows its function words."""
    from capsight.captioning.rules import banned_phrase_words, function_word_ids

    itos = ["<pad>", "<bos>", "<eos>", "<unk>", "a", "in", "bike", "man", "on"]
    function = function_word_ids(itos)
    assert function == {4, 5, 8}  # a, in, on
    # man on a bike on a -> not bike
    assert banned_phrase_words([7, 8, 4, 6, 8, 4], function) == [6]
    assert banned_phrase_words([5, 4, 7, 5], function) == []  # in a man in -> "a" may follow
    assert banned_phrase_words([], function) == []
    script = [[-5.0] * 9 for _ in range(8)]
    for t, word in enumerate([4, 6, 8, 4, 6, 2]):  # "a bike on a bike <eos>", "man" a close second
        script[t][word], script[t][7] = 5.0, 4.0
    model = ScriptedModel(script)
    options = DecodingOptions(
        method="greedy", max_length=8, no_repeat_trigram=False, complete_endings=False
    )
    # no ids: no rule
    assert decode(model, torch.zeros(1, 1, 1), options)[0].tokens == [4, 6, 8, 4, 6]
    model.function_ids = function
    assert decode(model, torch.zeros(1, 1, 1), options)[0].tokens == [4, 6, 8, 4, 7]
    off = dataclasses.replace(options, no_repeat_phrase=False)
    assert decode(model, torch.zeros(1, 1, 1), off)[0].tokens == [4, 6, 8, 4, 6]


@pytest.mark.parametrize("method", ["greedy", "beam", "sample", "narrowing"])
def test_what_in_force_leaves_out_does_not_change_the_caption(tiny_model, grid, method):
    """The API echoes ``in_force()``: every field it drops must be one the method never reads."""
    model = tiny_model("show-attend-tell")
    base = DecodingOptions(method=method, max_length=8, seed=5, top_k=4, top_p=0.9, temperature=1.3,
                           beam_width=2, length_penalty=0.5)  # fmt: skip
    dropped = set(dataclasses.asdict(base)) - set(base.in_force())
    assert dropped, method
    other = {
        "beam_width": 5,
        "length_penalty": 2.0,
        "temperature": 0.4,
        "top_k": 1,
        "top_p": 0.3,
        "seed": 9,
    }
    changed = dataclasses.replace(base, **{k: other[k] for k in dropped})
    assert [d.tokens for d in decode(model, grid, changed)] == [
        d.tokens for d in decode(model, grid, base)
    ]
