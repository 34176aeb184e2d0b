import pytest
import torch

from capsight.captioning.base import DecodingOptions
from capsight.captioning.checkpoint import load_checkpoint, save_checkpoint
from capsight.captioning.ensemble import CaptionEnsemble
from capsight.captioning.show_attend_tell import attention_penalty, attention_scores
from capsight.errors import InvalidParameter, ModelNotFound

ARCHITECTURES = ["show-attend-tell", "show-and-tell", "prefix-gpt2"]


def _captions(n: int) -> torch.Tensor:
    captions = torch.randint(4, 30, (n, 7), generator=torch.Generator().manual_seed(1))
    captions[:, 0] = 1
    return captions  # (n, T)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_teacher_forcing_shapes_with_k_captions_per_image(architecture, grid, tiny_model):
    model = tiny_model(architecture)
    logits, extras = model(grid, _captions(6))  # 3 images x 2 captions
    assert logits.shape == (6, 6, 30)
    if architecture == "show-attend-tell":
        assert extras["alphas"].shape == (6, 6, 49)
        assert torch.allclose(extras["alphas"].sum(-1), torch.ones(6, 6), atol=1e-5)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_checkpoint_round_trip_fp16(architecture, grid, vocab, tmp_path, tiny_model):
    model = tiny_model(architecture)
    save_checkpoint(model, vocab, tmp_path, fp16=True, extra={"note": "test"})
    loaded, loaded_vocab, raw = load_checkpoint(tmp_path)
    assert raw["architecture"] == architecture and raw["training"]["note"] == "test"
    assert loaded_vocab.itos == vocab.itos
    captions = _captions(3)
    before, _ = model(grid, captions)
    after, _ = loaded(grid, captions)
    assert (before - after).abs().max() < 2e-2  # fp16 weights
    assert next(loaded.parameters()).dtype == torch.float32


def test_checkpoint_missing_files_raise_model_not_found(tmp_path):
    with pytest.raises(ModelNotFound):
        load_checkpoint(tmp_path)


def test_show_and_tell_options_gru_layers_and_bad_cell(tiny_model):
    model = tiny_model("show-and-tell", cell="gru", num_layers=2)
    assert isinstance(model.rnn, torch.nn.GRU) and model.rnn.num_layers == 2
    with pytest.raises(InvalidParameter):
        tiny_model("show-and-tell", cell="transformer")


@pytest.mark.parametrize("rows", [0, 1, 37])  # 37: more than two of its 16-row chunks
def test_inference_attention_scores_equal_the_tanh_form(rows):
    generator = torch.Generator().manual_seed(0)
    keys, query = (
        torch.randn(rows, 49, 32, generator=generator),
        torch.randn(rows, 1, 32, generator=generator),
    )
    score = torch.nn.Linear(32, 1)
    with torch.no_grad():
        expected = score(torch.tanh(keys + query)).squeeze(-1)  # (rows, 49)
        assert torch.allclose(attention_scores(keys, query, score), expected, atol=1e-5)


def test_decoding_uses_the_sigmoid_scores_and_training_the_tanh_form(tiny_model, grid, monkeypatch):
    import capsight.captioning.show_attend_tell as sat
    from capsight.captioning.decoding import decode

    calls = []
    monkeypatch.setattr(sat, "attention_scores", lambda *a: calls.append(1) or attention_scores(*a))
    model = tiny_model("show-attend-tell")
    decode(model, grid, DecodingOptions(method="greedy", max_length=3))
    assert calls  # float32 inference on a CPU
    calls.clear()
    model.train()(grid, torch.randint(4, 30, (3, 5)))  # teacher forcing with gradients
    assert not calls


def test_attention_penalty_zero_when_every_cell_gets_one_unit():
    alphas = torch.eye(4).unsqueeze(0)  # (1, T=4, P=4): each step on its own cell
    assert float(attention_penalty(alphas, torch.ones(1, 4))) == 0.0
    assert float(attention_penalty(alphas, torch.zeros(1, 4))) == 1.0


def test_ensemble_of_identical_models_matches_the_model(grid, tiny_model):
    model = tiny_model("show-attend-tell")
    ensemble = CaptionEnsemble([model, model])
    tokens = torch.full((3,), 1)
    single, _, _ = model.step(tokens, model.start(grid))
    mixed, _, alpha = ensemble.step(tokens, ensemble.start(grid))
    assert torch.allclose(single.log_softmax(-1), mixed, atol=1e-5)
    assert alpha.shape == (3, 49)


@pytest.mark.parametrize(
    "options", [{"n_layer": 2}, {"prefix_from": "pooled", "prefix_length": 3, "n_layer": 2}]
)
def test_prefix_gpt2_cached_steps_match_the_full_forward_pass(grid, tiny_model, options):
    # Decoding steps run the blocks by hand with a key/value cache; teacher forcing runs
    # transformers' GPT-2 on the whole sequence. Both must give the same next-word logits.
    model = tiny_model("prefix-gpt2", **options)
    captions = _captions(3)
    full, _ = model(grid, captions)  # (3, 6, V)
    state = model.start(grid)
    for t in range(captions.shape[1] - 1):
        logits, state, _ = model.step(captions[:, t], state)
        assert torch.allclose(logits, full[:, t], atol=1e-5), t
    assert state["wk0"].shape[2] == captions.shape[1] - 1
    # Beam search reorders the word cache rows; the prefix cache is the same for every beam.
    assert set(model.static_state_keys) == {"pk0", "pv0", "pk1", "pv1"}


def test_prefix_gpt2_from_pretrained_folder(tmp_path, grid, tiny_gpt2):
    import transformers

    from capsight.captioning.base import DecodingOptions
    from capsight.captioning.decoding import decode
    from capsight.captioning.prefix_gpt2 import PrefixGPT2

    folder = tiny_gpt2(["a", "dog", "runs", "on", "grass"])  # ids 3-7, after 3 specials
    gpt = transformers.GPT2LMHeadModel.from_pretrained(folder)
    model, vocab = PrefixGPT2.from_pretrained(folder)
    assert vocab.encode(["a", "dog"], add_bos_eos=True) == [1, 3, 4, 1]
    assert torch.equal(model.gpt.transformer.wte.weight, gpt.transformer.wte.weight)
    logits, _ = model(grid, torch.tensor([[1, 3, 4, 5], [1, 3, 4, 5], [1, 6, 7, 1]]))
    assert logits.shape == (3, 3, 8)
    out = decode(model, grid, DecodingOptions(method="beam", beam_width=2, max_length=5))
    assert all(len(d.tokens) <= 5 for d in out)
    save_checkpoint(model, vocab, tmp_path / "ck")
    loaded, loaded_vocab, _ = load_checkpoint(tmp_path / "ck")
    assert loaded_vocab.decode([1, 3, 4, 1]) == ["a", "dog"]
    assert loaded.config.pretrained.endswith("gpt2")


def test_prefix_gpt2_from_pretrained_missing_folder_is_model_not_found(tmp_path):
    from capsight.captioning.prefix_gpt2 import PrefixGPT2

    with pytest.raises(ModelNotFound):
        PrefixGPT2.from_pretrained(tmp_path / "nothing")


def test_a_stored_config_is_checked_by_kind_and_a_large_vocabulary_is_kept():
    """The size bound of --model-option values is no bound on what training sets: a corpus of
    70,000 words (Conceptual Captions with --min-count 1) would have been called damaged."""
    from capsight.captioning.model import check_model_options, config_from_dict

    assert (
        config_from_dict({"architecture": "show-attend-tell", "vocab_size": 70_000}).vocab_size
        == 70_000
    )
    with pytest.raises(ValueError, match="hidden_dim=70000: must be at most 65536"):
        config_from_dict(
            {"architecture": "show-attend-tell", "vocab_size": 10, "hidden_dim": 70_000}
        )
    with pytest.raises(InvalidParameter, match=r"dropout=nan: a dropout rate must be in \[0, 1\)"):
        check_model_options("show-attend-tell", {"dropout": float("nan")})


def test_decoding_stops_where_gpt2_has_no_positions_left(grid, tiny_model):
    """128 positions less a 49-cell prefix leave 79 steps; max_length 80 to 100, which
    DecodingOptions allows, ran into an IndexError when no sentence ended sooner."""
    from capsight.captioning.decoding import decode

    model = tiny_model("prefix-gpt2", n_positions=60)  # 60 - 49 cells: 11 steps
    assert model.longest_caption(grid) == 11
    for options in (DecodingOptions(method="sample", temperature=50.0, seed=1, max_length=100),
                    DecodingOptions(method="beam", beam_width=2, max_length=40),
                    DecodingOptions(method="greedy", max_length=12)):  # fmt: skip
        assert all(len(d.tokens) <= 11 for d in decode(model, grid, options))
    assert tiny_model("show-attend-tell").longest_caption(grid) is None


def test_create_captioner_refuses_a_name_or_an_option_of_the_wrong_kind():
    """None was a TypeError in posixpath, device="cuda" a TypeError from the constructor."""
    from capsight.captioning.base import create_captioner

    with pytest.raises(ModelNotFound, match="a captioner is named by text"):
        create_captioner(None)
    with pytest.raises(
        InvalidParameter, match="captioner 'labels' takes the options second_label_ratio; got foo"
    ):
        create_captioner("labels", foo=1)
