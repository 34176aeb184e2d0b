import dataclasses

import pytest
import torch

from capsight.captioning.base import DecodingOptions
from capsight.captioning.checkpoint import load_checkpoint, save_checkpoint
from capsight.captioning.decoding import decode
from capsight.captioning.endings import Endings
from capsight.captioning.model import CaptionModel
from capsight.captioning.vocabulary import EOS_ID


def test_learns_final_words_and_pairs_from_training_captions():
    # 10 = "grass" ends 2 of its 2 uses; 11 = "red" ends 1 of its 60 uses (1.7% < 2%).
    captions = [[4, 5, 10], [4, 6, 10], [4, 12, 11]] + [[4, 11, 13]] * 59
    endings = Endings.learn(captions)
    assert 10 in endings.final_words and 11 not in endings.final_words
    assert endings.allows([4, 5, 10])
    assert endings.allows([7, 12, 11])  # "12 11" ended a training caption
    assert not endings.allows([7, 4, 11])  # "red" after anything else: mid-phrase
    assert not endings.allows([])  # an empty caption is never finished


def test_learns_first_words_that_start_enough_training_captions():
    # 4 = "a" starts 60 of 60; 12 = "dog" starts 3 of its 4 uses; 7 = "at" starts 3 of 700
    # (0.4% < 0.5%); 8 starts 2 captions only, every use of it.
    captions = [[4, 11, 13]] * 60 + [[12, 5, 10]] * 3 + [[4, 12, 10]]
    captions += [[7, 5, 10]] * 3 + [[4, 7, 10]] * 697 + [[8, 5, 10]] * 2
    endings = Endings.learn(captions + [[3, 5, 10]] * 5)  # 3 = <unk>: never emitted, never first
    assert endings.first_words == {4, 12}
    assert endings.not_first(9) == [0, 1, 2, 3, 5, 6, 7, 8]
    # A tiny corpus whose only frequent first word is <unk>: any word may start, not none.
    assert Endings.learn([[3, 5, 10]] * 5 + [[4, 5, 10]]).first_words is None


def test_first_words_are_banned_alike_on_torch_and_numpy_rows():
    """One masked write for the rows with no word yet; the ONNX Runtime path passes NumPy."""
    import numpy as np

    from capsight.captioning.rules import apply_history_bans

    class Model:
        bos_id, eos_id, pad_id, unk_id, endings = 1, 2, 0, 3, Endings([6], [], [4, 6])

    model = Model()  # one Endings for both kinds, NumPy first (a shared cache key had mixed them)
    for logp in (np.zeros((3, 8), np.float32), torch.zeros(3, 8), np.zeros((3, 8), np.float32)):
        out = apply_history_bans(model, logp, [[], [4], []], DecodingOptions(), last=False)
        for row in (0, 2):  # no word yet: 4 and 6 only (the end is banned, as for any empty one)
            assert [w for w in range(8) if float(out[row, w]) > -1e9] == [4, 6]
        assert [w for w in range(8) if float(out[1, w]) > -1e9] == [0, 1, 3, 5, 6, 7]  # not 2, 4


def test_save_and_load_round_trip(tmp_path):
    endings = Endings([3, 9], [(4, 5)], [4, 6])
    endings.save(tmp_path)
    again = Endings.load(tmp_path)
    assert again.final_words == {3, 9} and again.final_pairs == {(4, 5)}
    assert again.first_words == {4, 6}
    assert Endings.load(tmp_path / "missing") is None
    Endings([3, 9], [(4, 5)]).save(tmp_path)  # as files learned before first words were
    assert Endings.load(tmp_path).first_words is None and Endings.load(tmp_path).not_first(9) == []


class ScriptedModel(CaptionModel):
    """At step t, the logits ``steps[t]`` gives ({word: logit}, the rest -9); past the last
    step, only <eos>."""

    def __init__(self, steps: list[dict[int, float]]) -> None:
        super().__init__()
        self.steps = steps

    def start(self, grid):
        return {"t": torch.zeros(grid.shape[0], dtype=torch.long)}

    def step(self, tokens, state):
        logits = torch.full((tokens.shape[0], 8), -9.0)
        t = state["t"]
        for i, scores in enumerate(self.steps):
            for word, logit in scores.items():
                logits[t == i, word] = logit
        logits[t >= len(self.steps), self.eos_id] = 0.0
        return logits, {"t": t + 1}, None


def dangling_model() -> ScriptedModel:
    """Prefers "4 5 <eos>"; its second choice after "5" is word 6, then <eos>."""
    return ScriptedModel([{4: 0.0}, {5: 0.0}, {EOS_ID: 0.0, 6: -1.0}])


def test_decoding_does_not_stop_mid_phrase_when_the_model_has_endings():
    model, grid = dangling_model(), torch.zeros(2, 1, 1)
    for method in ("greedy", "beam"):
        options = DecodingOptions(method=method, max_length=6)
        assert decode(model, grid, options)[0].tokens == [4, 5]  # no endings known: any end
        model.endings = Endings([6], [])
        assert decode(model, grid, options)[0].tokens == [4, 5, 6]
        off = DecodingOptions(method=method, max_length=6, complete_endings=False)
        assert decode(model, grid, off)[0].tokens == [4, 5]
        model.endings = None


def test_checkpoints_carry_their_endings(tiny_model, tmp_path):
    model = tiny_model("show-and-tell")
    model.endings = Endings([5], [(6, 7)])
    save_checkpoint(model, None, tmp_path)
    loaded, _, _ = load_checkpoint(tmp_path)
    assert loaded.endings.final_words == {5} and loaded.endings.final_pairs == {(6, 7)}


def test_a_caption_starts_only_with_a_word_training_captions_start_with():
    """show-and-tell began COCO captions "at night", "of people", "and white dog ..."."""
    # its first word is likeliest 5 ("at"), then 4 ("a"); then 6 and <eos>
    model, grid = ScriptedModel([{5: 0.0, 4: -1.0}, {6: 0.0}]), torch.zeros(2, 1, 1)
    for method in ("greedy", "beam", "sample"):
        options = DecodingOptions(method=method, max_length=6, temperature=0.01, seed=1) if (
            method == "sample") else DecodingOptions(method=method, max_length=6)  # fmt: skip
        model.endings = Endings([6], [])  # learned before first words: any word may start
        assert decode(model, grid, options)[0].tokens == [5, 6], method
        model.endings = Endings([6], [], first_words=[4])
        assert decode(model, grid, options)[0].tokens == [4, 6], method
        off = dataclasses.replace(options, complete_endings=False)
        assert decode(model, grid, off)[0].tokens == [5, 6], method


def test_every_shipped_checkpoint_knows_its_first_words():
    from importlib import resources

    models = resources.files("capsight") / "models"
    folders = [f for f in models.rglob("endings.json")]  # the pair's members too
    assert len(folders) >= 5
    for path in folders:
        endings = Endings.load(path.parent)
        assert endings.first_words and len(endings.first_words) > 100, path


def test_no_caption_is_empty_even_where_the_model_would_end_at_once():
    """A prefix-gpt2 on a GPT-2 tokenizer has no learned endings; beam search had ended its
    captions at the first step: "" for every photo."""
    model, grid = ScriptedModel([{EOS_ID: 0.0, 4: -1.0}, {5: 0.0}]), torch.zeros(2, 1, 1)
    for method in ("greedy", "beam"):
        assert decode(model, grid, DecodingOptions(method=method, max_length=6))[0].tokens == [4, 5]


def test_a_checkpoint_without_its_endings_is_said_when_loaded(tiny_model, vocab, tmp_path):
    """Any word may end its captions; it had loaded without a word (`capsight models` said so)."""
    import warnings

    from capsight.captioning.trained import TrainedCaptioner
    from capsight.errors import CapsightWarning

    model = tiny_model("show-and-tell")
    model.endings = None
    save_checkpoint(model, vocab, tmp_path)
    with pytest.warns(CapsightWarning, match="has no endings.json, so any word may end its"):
        TrainedCaptioner("checkpoint", tmp_path)
    model.endings = Endings([5], [])
    save_checkpoint(model, vocab, tmp_path / "with")
    with warnings.catch_warnings():
        warnings.simplefilter("error", CapsightWarning)
        TrainedCaptioner("checkpoint", tmp_path / "with")
