import torch

from capsight.captioning.base import DecodingOptions
from capsight.captioning.checkpoint import load_checkpoint, save_checkpoint
from capsight.captioning.decoding import decode
from capsight.captioning.endings import Endings
from capsight.captioning.model import CaptionModel


def test_learns_final_words_and_pairs_from_training_captions():
    # 10 = "grass" ends 2 of its 2 uses; 11 = "red" ends 1 of its 60 uses (1.7% < 2%).
    captions = [[4, 5, 10], [4, 6, 10], [4, 12, 11]] + [[4, 11, 13]] * 59
    endings = Endings.learn(captions)
    assert 10 in endings.final_words and 11 not in endings.final_words
    assert endings.allows([4, 5, 10])
    assert endings.allows([7, 12, 11])  # "12 11" ended a training caption
    assert not endings.allows([7, 4, 11])  # "red" after anything else: mid-phrase
    assert not endings.allows([])  # an empty caption is never finished


def test_save_and_load_round_trip(tmp_path):
    endings = Endings([3, 9], [(4, 5)])
    endings.save(tmp_path)
    again = Endings.load(tmp_path)
    assert again.final_words == {3, 9} and again.final_pairs == {(4, 5)}
    assert Endings.load(tmp_path / "missing") is None


class DanglingModel(CaptionModel):
    """Prefers "4 5 <eos>"; its second choice after "5" is word 6, then <eos>."""

    def start(self, grid):
        return {"t": torch.zeros(grid.shape[0], dtype=torch.long)}

    def step(self, tokens, state):
        logits = torch.full((tokens.shape[0], 8), -9.0)
        t = state["t"]
        logits[t == 0, 4] = 0.0
        logits[t == 1, 5] = 0.0
        logits[t == 2, self.eos_id], logits[t == 2, 6] = 0.0, -1.0
        logits[t >= 3, self.eos_id] = 0.0
        return logits, {"t": t + 1}, None


def test_decoding_does_not_stop_mid_phrase_when_the_model_has_endings():
    model, grid = DanglingModel(), torch.zeros(2, 1, 1)
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

