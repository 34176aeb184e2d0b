import re

import pytest
import torch

import capsight.captioning.trained as trained
from capsight.captioning.base import DecodingOptions, create_captioner, default_captioner_name
from capsight.captioning.checkpoint import save_checkpoint
from capsight.errors import InvalidParameter, ModelNotFound
from capsight.training.export import export_model
from capsight.vision.encoder import EncodedImages


def _encoded(n: int = 2) -> EncodedImages:
    grid = torch.randn(n, 49, 1280, generator=torch.Generator().manual_seed(3)).abs()
    return EncodedImages(grid.mean(1), grid, torch.zeros(n, 1000), (7, 7))


@pytest.mark.skipif(
    not (trained.MODELS_DIR / "show-attend-tell").is_dir(), reason="no shipped model"
)
def test_shipped_model_is_the_default_and_captions_a_photo(encoder, photo, monkeypatch):
    # The pair's Lite2 member carries its own encoder, so the pair needs no ImageNet Lite2
    # weights (capsight[lite12]): it is the default with only Lite0's installed.
    monkeypatch.setattr(trained, "available_encoders", lambda: ["efficientnet-lite0"])
    assert default_captioner_name() == "show-attend-tell-pair"
    both = create_captioner("show-attend-tell-pair")
    # Options naming some fields keep the rest as the checkpoint ships them (its beam 4).
    three = create_captioner("show-attend-tell-pair", decoding=DecodingOptions(num_captions=3))
    assert (three.default_decoding.beam_width, three.default_decoding.num_captions) == (4, 3)
    assert both.describe()["encoder"] == "efficientnet-lite0 + efficientnet-lite2"
    result = both.caption(encoder.encode([photo("chelsea")]))[0]
    assert 2 <= len(result.tokens) <= 20 and result.attention.shape == (len(result.tokens), 49)
    result.attention.div_(2)  # an ordinary tensor: an inference-mode one had refused this
    captioner = create_captioner("show-attend-tell")
    result = captioner.caption(encoder.encode([photo("chelsea")]))[0]
    assert 2 <= len(result.tokens) <= 20 and "<unk>" not in result.tokens
    assert result.text == " ".join(result.tokens)
    assert result.attention.shape == (len(result.tokens), 49)
    assert captioner.word_vectors(result.tokens).shape == (len(result.tokens), 512)
    import capsight  # the library lower-cases first: "Dog" is not <unk>

    dog, upper, unknown = capsight.word_vectors(["dog", " Dog", "zzzq"], model="show-attend-tell")
    assert torch.equal(dog, upper) and not torch.equal(dog, unknown)
    assert captioner.describe()["kind"].startswith("trained show-attend-tell")


def test_missing_checkpoint_raises_and_default_skips_it(monkeypatch, tmp_path):
    monkeypatch.setattr(trained, "MODELS_DIR", tmp_path)
    with pytest.raises(ModelNotFound):
        create_captioner("show-attend-tell")
    with pytest.raises(ModelNotFound):
        create_captioner("checkpoint", path=str(tmp_path))


def test_exported_single_and_ensemble_checkpoints_caption(tiny_model, vocab, tmp_path):
    for i in range(2):
        save_checkpoint(tiny_model("show-attend-tell"), vocab, tmp_path / f"run{i}")
    export_model(
        [tmp_path / "run0"], tmp_path / "single", DecodingOptions(method="greedy", max_length=5)
    )
    export_model(
        [tmp_path / "run0", tmp_path / "run1"], tmp_path / "pair", DecodingOptions(beam_width=2)
    )
    single = create_captioner("checkpoint", path=str(tmp_path / "single"))
    assert single.default_decoding.method == "greedy" and single.default_decoding.max_length == 5
    pair = create_captioner("checkpoint", path=str(tmp_path / "pair"))
    assert "ensemble of 2" in pair.describe()["kind"] and pair.default_decoding.beam_width == 2
    for captioner in (single, pair):
        results = captioner.caption(_encoded())
        assert len(results) == 2 and all(set(r.tokens) <= set(vocab.itos[4:]) for r in results)


def test_export_checks_every_member_before_touching_the_destination(tiny_model, vocab, tmp_path):
    from capsight.captioning.vocabulary import Vocabulary

    save_checkpoint(tiny_model("show-attend-tell"), vocab, tmp_path / "run0")
    other = Vocabulary([f"v{i}" for i in range(26)])  # as many words, other words
    save_checkpoint(tiny_model("show-attend-tell"), other, tmp_path / "odd")
    shipped = tmp_path / "shipped"
    export_model([tmp_path / "run0"], shipped, DecodingOptions())
    before = sorted(p.name for p in shipped.iterdir())
    with pytest.raises(InvalidParameter, match="vocabulary differs.*--vocab-from"):
        export_model([tmp_path / "run0", tmp_path / "odd"], shipped, DecodingOptions())
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text('{"architecture": "show-att')
    with pytest.raises(ModelNotFound, match="not valid JSON"):
        export_model([tmp_path / "broken"], shipped, DecodingOptions())
    assert sorted(p.name for p in shipped.iterdir()) == before  # the old export is untouched


def test_damaged_or_incomplete_checkpoints_are_one_clear_line(tiny_model, vocab, tmp_path):
    import json

    from capsight.captioning.endings import Endings

    for name in ("cut", "list", "empty", "novocab", "alien", "torn", "resized", "endings", "odd"):
        save_checkpoint(tiny_model("show-attend-tell"), vocab, tmp_path / name)
    (tmp_path / "cut" / "config.json").write_text('{"architecture": "show-att')
    (tmp_path / "list" / "config.json").write_text("[1, 2]")
    (tmp_path / "empty" / "config.json").write_text("{}")
    (tmp_path / "novocab" / "vocab.json").unlink()
    (tmp_path / "alien" / "config.json").write_text('{"architecture": "show-attend-tell"}')
    weights = tmp_path / "torn" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])  # a download or copy cut short
    config = json.loads((tmp_path / "resized" / "config.json").read_text())
    config["hidden_dim"] *= 2  # a config edited by hand: the weights no longer fit it
    (tmp_path / "resized" / "config.json").write_text(json.dumps(config))
    Endings([5], []).save(tmp_path / "odd")
    (tmp_path / "endings" / "endings.json").write_text("garbage{")
    (tmp_path / "odd" / "endings.json").write_text('{"bad": 1}')
    for name, fragment in (("cut", "not valid JSON"), ("list", "JSON object"), ("empty", "naming its architecture"),
                           ("novocab", "no vocab.json; the checkpoint is incomplete"),
                           ("alien", "does not describe a captioner"),
                           ("torn", "model.safetensors: not a readable safetensors file"),
                           ("resized", r"weights do not match config.json \(size mismatch for "),
                           ("endings", "endings.json: not a capsight endings file"),
                           ("odd", "endings.json: not a capsight endings file")):  # fmt: skip
        with pytest.raises(ModelNotFound, match=fragment):
            create_captioner("checkpoint", path=str(tmp_path / name))


@pytest.mark.parametrize(("change", "fragment"), [
    ({"hidden_dim": "big"}, r"hidden_dim='big': expected int \(default"),
    ({"hidden_dim": 12.5}, "hidden_dim=12.5: expected int"),
    ({"vocab_size": "26"}, r"vocab_size='26': expected int\)"),
    ({"vocab_size": -1}, "vocab_size=-1: must not be negative"),
    ({"dropout": "x"}, "dropout='x': expected float"),
    ({"gate": "yes"}, "gate='yes': expected bool"),
    ({"resolution": 100000}, "resolution=100000: the encoder's input must be 32-1024 px"),
    ({"decoding": "beam"}, "decoding 'beam' is not decoding options"),
    ({"decoding": {"beam_width": -3}}, "is not decoding options .beam width must be between 1"),
    ({"decoding": {"method": "beam", "beam_width": 0, "max_length": 20, "length_penalty": 0.0}},
     r"its config's decoding is not decoding options \(beam width must be between 1 and 20, got 0\); "
     "the checkpoint is damaged"),
    ({"encoder": "resnet9000"}, "reads an unknown encoder 'resnet9000'; known: efficientnet-lite0"),
])  # fmt: skip
def test_a_config_with_values_of_the_wrong_kind_is_one_clear_line(
    tiny_model, vocab, tmp_path, change, fragment
):
    """Each was a traceback (TypeError, AttributeError, RuntimeError), or advice to install an
    extra that has no such encoder."""
    import json

    save_checkpoint(tiny_model("show-attend-tell"), vocab, tmp_path / "ck")
    config = json.loads((tmp_path / "ck" / "config.json").read_text())
    (tmp_path / "ck" / "config.json").write_text(json.dumps({**config, **change}))
    with pytest.raises(ModelNotFound, match=fragment):
        create_captioner("checkpoint", path=str(tmp_path / "ck"))


def test_weights_that_are_not_numbers_or_not_floats_are_one_clear_line(tiny_model, vocab, tmp_path):
    """Overwritten with NaN, or saved as integers, they loaded and captioned every photo "the"."""
    import torch
    from safetensors.torch import load_file, save_file

    save_checkpoint(tiny_model("show-attend-tell"), vocab, tmp_path / "ck")
    weights = tmp_path / "ck" / "model.safetensors"
    good = load_file(str(weights))
    name = sorted(good)[0]
    save_file({**good, name: torch.full_like(good[name], float("nan"))}, str(weights))
    with pytest.raises(ModelNotFound, match=f"{name} holds values that are not numbers"):
        create_captioner("checkpoint", path=str(tmp_path / "ck"))
    save_file({k: v.to(torch.int32) for k, v in good.items()}, str(weights))
    with pytest.raises(ModelNotFound, match="is stored as int32, not as float"):
        create_captioner("checkpoint", path=str(tmp_path / "ck"))
    save_file(good, str(weights))
    assert create_captioner("checkpoint", path=str(tmp_path / "ck")).describe()


def test_a_folder_names_one_checkpoint_unless_it_is_an_exported_ensemble(
    tiny_model, vocab, tmp_path
):
    run = tmp_path / "run"  # what `capsight train --out run` leaves: best/ and last/
    for sub in ("best", "last"):
        save_checkpoint(tiny_model("show-attend-tell"), vocab, run / sub)
    assert "ensemble" not in create_captioner(str(run)).describe()["kind"]  # its best
    (tmp_path / "two").mkdir()
    (run / "best").rename(tmp_path / "two" / "a")
    (run / "last").rename(tmp_path / "two" / "b")
    two = tmp_path / "two"
    with pytest.raises(ModelNotFound, match=re.escape(f"holds 2 checkpoint folders (a, b); name one, or "
                       f"join several folders' paths with commas ({two / 'a'},{two / 'b'})")):  # fmt: skip
        create_captioner(str(two))  # unrelated checkpoints are not averaged unasked
    joined = f"{tmp_path / 'two' / 'a'},{tmp_path / 'two' / 'b'}"
    assert "ensemble of 2" in create_captioner("checkpoint", path=joined).describe()["kind"]
    # As the refusal above says: joined by commas as the model's name (--model a,b) too.
    assert "ensemble of 2" in create_captioner(joined.replace(",", ", ")).describe()["kind"]
    with pytest.raises(ModelNotFound, match="no such checkpoint folder"):
        create_captioner(f"{tmp_path / 'two' / 'a'},{tmp_path / 'gone'}")
    with pytest.raises(
        ModelNotFound, match=f"^{re.escape(str(tmp_path / 'gone'))}: no such checkpoint folder$"
    ):
        create_captioner("checkpoint", path=str(tmp_path / "gone"))  # as for --model gone/
    with pytest.raises(ModelNotFound, match="needs a folder"):
        create_captioner("checkpoint")


def test_a_run_folder_whose_best_is_damaged_or_gone_never_falls_back_to_last(
    tiny_model, vocab, tmp_path
):
    """A run folder stands for its best/; its last/ is another epoch's model, used only when named."""
    run = tmp_path / "run"
    for sub in ("best", "last"):
        save_checkpoint(tiny_model("show-attend-tell"), vocab, run / sub)
    (run / "best" / "config.json").unlink()
    with pytest.raises(
        ModelNotFound, match=r"whose best/ checkpoint has no config.json \(damaged\);.*last"
    ):
        create_captioner(str(run))
    import shutil

    shutil.rmtree(run / "best")
    with pytest.raises(ModelNotFound, match="whose best/ checkpoint is missing"):
        create_captioner(str(run))
    started = tmp_path / "started"  # stopped before its first epoch: no last/ to suggest
    started.mkdir()
    (started / "train_config.json").write_text("{}")
    with pytest.raises(
        ModelNotFound, match="best/ checkpoint is missing; no epoch of it has finished"
    ):
        create_captioner(str(started))
    assert "ensemble" not in create_captioner(str(run / "last")).describe()["kind"]
    # An ensemble SCST run's best/ holds its members, and says how to use them.
    for sub in ("m0", "m1"):
        save_checkpoint(tiny_model("show-attend-tell"), vocab, run / "best" / sub)
    with pytest.raises(
        ModelNotFound, match=r"best: holds 2 checkpoint folders \(m0, m1\); name one, or join"
    ):
        create_captioner(str(run))


@pytest.mark.slow  # loads the Lite0 and Lite2 encoders
def test_an_ensemble_over_two_encoders_reads_each_members_own_grid(
    tiny_model, vocab, tmp_path, encoder, photo
):
    import json

    from capsight.vision.encoder import available_encoders

    if "efficientnet-lite2" not in available_encoders():
        pytest.skip("EfficientNet-Lite2 weights not installed (capsight[lite12])")
    save_checkpoint(tiny_model("show-attend-tell"), vocab, tmp_path / "lite0")
    save_checkpoint(tiny_model("show-attend-tell", encoder="efficientnet-lite2", resolution=260), vocab,
                    tmp_path / "pair" / "lite2")  # fmt: skip
    (tmp_path / "pair" / "ensemble.json").write_text(
        json.dumps(
            {"members": ["../lite0", "lite2"], "decoding": {"method": "beam", "beam_width": 2}}
        )
    )
    pair = create_captioner(str(tmp_path / "pair"))
    assert pair.encoder_name == "efficientnet-lite0" and pair.extra_encoders == [
        ("efficientnet-lite2", 260)
    ]
    encoded = encoder.encode([photo("chelsea"), photo("astronaut")])
    assert pair.features(encoded).shape == (2, 49 + 81, 1280)  # Lite0's 7x7 grid, then Lite2's 9x9
    results = pair.caption(encoded)  # (random weights: the captions may be empty)
    assert len(results) == 2 and all(
        r.attention is None or r.attention.shape[1] == 49 for r in results
    )
    with pytest.raises(InvalidParameter, match="pass the photos' encoding"):  # not an unknown model
        pair.caption(_encoded())  # an encoding without its photos cannot be encoded again
    (tmp_path / "trio").mkdir()
    (tmp_path / "trio" / "ensemble.json").write_text(
        json.dumps({"members": ["../lite0", "../pair/lite2", "../lite0"]})
    )
    trio = create_captioner(str(tmp_path / "trio"))
    assert trio.features(encoded).shape == (2, 49 + 81 + 49, 1280)  # each member's grid, in order
    assert len(trio.caption(encoded)) == 2


@pytest.mark.parametrize(
    "text, says",
    [
        ("{bad", "not valid JSON; fix it, or export the ensemble again"),
        ("[]", "not an ensemble's description"),
        ('{"members": "m0"}', "not an ensemble's description"),
        ('{"members": [0]}', "not an ensemble's description"),
    ],
)
def test_a_damaged_ensemble_json_is_one_line_not_a_traceback(
    tiny_model, vocab, tmp_path, text, says
):
    """The docs invite editing ensemble.json by hand: '{bad' had ended in a JSONDecodeError's
    traceback and '[]' in an AttributeError's, where a damaged config.json is one line."""
    save_checkpoint(tiny_model("show-attend-tell"), vocab, tmp_path / "pair" / "m0")
    save_checkpoint(tiny_model("show-attend-tell"), vocab, tmp_path / "pair" / "m1")
    (tmp_path / "pair" / "ensemble.json").write_text(text)
    with pytest.raises(ModelNotFound, match=f"ensemble.json: {re.escape(says)}"):
        create_captioner(str(tmp_path / "pair"))


def test_a_checkpoint_that_finds_no_room_is_an_os_error_naming_its_file(
    tiny_model, vocab, tmp_path
):
    """safetensors' and torch's writers said a full disk as a SafetensorError and a RuntimeError
    ("unexpected pos ..."): `capsight train` ended in a traceback, not capsight's one line."""
    import errno

    from capsight.training.run_folder import write_last

    resource = pytest.importorskip("resource")
    model = tiny_model("show-attend-tell")
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.zeros(1, 49, 1280), torch.ones(1, 3, dtype=torch.long))[0].sum().backward()
    optimizer.step()  # (moments to save)
    save_checkpoint(model, vocab, tmp_path / "room")
    size = (tmp_path / "room" / "model.safetensors").stat().st_size
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size // 2, hard))  # Python ignores SIGXFSZ: EFBIG
    try:
        with pytest.raises(OSError) as weights:
            save_checkpoint(model, vocab, tmp_path / "best")
        # the weights fit, Adam's two moments not
        resource.setrlimit(resource.RLIMIT_FSIZE, (size + 4096, hard))
        with pytest.raises(OSError) as moments:
            write_last(
                tmp_path,
                lambda folder: save_checkpoint(model, vocab, folder),
                optimizer,
                {"epoch": 1},
            )
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert weights.value.errno == errno.EFBIG and weights.value.filename == str(
        tmp_path / "best" / "model.safetensors"
    )
    assert moments.value.errno == errno.EFBIG and moments.value.filename.endswith(
        "last.new/optimizer.pt"
    )
    assert not list(tmp_path.rglob("*.part"))  # nothing half-written left behind
