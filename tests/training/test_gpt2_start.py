"""``capsight train --init-from GPT2_FOLDER --architecture prefix-gpt2``: a prefix-gpt2 captioner
trained from a user's GPT-2 weights and tokenizer (a ``save_pretrained`` folder), which then
captions like any checkpoint."""

from __future__ import annotations

import json

import pytest

from capsight._cli.main import main


def _train(caption_folder, tmp_path, *extra: str) -> int:
    return main(["train", str(caption_folder), "--out", str(tmp_path / "run"), "--cache-dir",
                 str(tmp_path / "cache"), "--no-track", "--quiet", *extra])  # fmt: skip


@pytest.mark.slow
def test_a_prefix_gpt2_trains_from_gpt2_weights_and_captions(
    caption_folder, tmp_path, tiny_gpt2, capsys
):
    words = sorted({w for c in json.loads((caption_folder / "captions.json").read_text()).values()
                    for caption in c for w in caption.lower().replace(".", " ").split()})  # fmt: skip
    gpt2 = tiny_gpt2(words)
    status = _train(caption_folder, tmp_path, "--init-from", str(gpt2), "--architecture", "prefix-gpt2",
                    "--epochs", "3", "--warmup-steps", "1", "--lr", "3e-3", "--scst-epochs", "1")  # fmt: skip
    assert status == 0, capsys.readouterr().err
    best = tmp_path / "run" / "best"
    config = json.loads((best / "config.json").read_text())
    assert config["pretrained"] == str(gpt2) and config["vocab_size"] == len(words) + 3
    assert (
        best / "tokenizer" / "tokenizer.json"
    ).is_file()  # its own tokenizer, not vocab.json's words
    capsys.readouterr()
    photo = sorted((caption_folder / "images").iterdir())[0]
    assert main(["caption", str(photo), "--model", str(best)]) == 0
    caption = capsys.readouterr().out.split(": ", 1)[1].strip()
    assert caption and set(caption.split()) <= set(words)  # never empty (a rule, not the weights)


def test_gpt2_weights_start_a_prefix_gpt2_only_and_keep_their_own_sizes(
    caption_folder, tmp_path, tiny_gpt2, capsys
):
    gpt2 = tiny_gpt2(["a", "red", "square"])
    for extra, message in (
        ([], "GPT-2 weights start a prefix-gpt2 captioner; pass --architecture prefix-gpt2"),
        (["--architecture", "prefix-gpt2", "--model-option", "n_layer=2"],
         "--model-option n_layer: set by the GPT-2 weights in"),
    ):  # fmt: skip
        assert _train(caption_folder, tmp_path, "--init-from", str(gpt2), *extra) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_train_from_python_checks_a_gpt2_start_too(caption_folder, tmp_path, tiny_gpt2):
    """train() skips the command line's checks: a show-attend-tell config had been built into a
    prefix-gpt2, and other model options had been a TypeError."""
    from capsight.errors import InvalidParameter
    from capsight.training.train import TrainConfig, train

    gpt2 = str(tiny_gpt2(["a", "red", "square"]))
    base = {"data": str(caption_folder), "out": str(tmp_path / "r"), "init_from": gpt2,
            "cache_dir": str(tmp_path / "cache"), "epochs": 1}  # fmt: skip
    with pytest.raises(InvalidParameter, match="GPT-2 weights start a prefix-gpt2 captioner"):
        train(TrainConfig(**base))
    with pytest.raises(InvalidParameter, match="--model-option n_layer: set by the GPT-2 weights"):
        train(TrainConfig(**base, architecture="prefix-gpt2", model={"n_layer": 2}))


def test_gpt2_folders_capsight_cannot_train_from_are_one_line_each(
    caption_folder, tmp_path, tiny_gpt2, capsys
):
    """Each had been trained on: a folder without tokenizer files as a NaN loss blamed on --lr,
    an end-of-text token of id 0 as captions that never ended, a short n_positions as an
    IndexError traceback; another model type was called a damaged checkpoint."""
    import json
    import shutil

    words = ["a", "red", "blue", "green", "square", "stripe", "on", "white", "that", "is"]
    cases = []
    folder = shutil.move(tiny_gpt2(words), tmp_path / "untokenized")  # (each is made as gpt2/)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        (folder / name).unlink(missing_ok=True)
    cases.append((folder, "no tokenizer there (tokenizer.json, or vocab.json and merges.txt"))
    zero = shutil.move(
        tiny_gpt2(words, specials=("<|endoftext|>", "<pad>", "[UNK]")), tmp_path / "zero"
    )
    cases.append(
        (zero, "the tokenizer's end-of-text token has id 0, which capsight trains as padding")
    )
    short = shutil.move(tiny_gpt2(words, n_positions=64), tmp_path / "short")
    cases.append(
        (
            short,
            "its 64 positions leave no room for the image prefix (49) and captions of up to 100",
        )
    )
    neo = shutil.move(tiny_gpt2(words), tmp_path / "neo")
    config = json.loads((neo / "config.json").read_text())
    (neo / "config.json").write_text(json.dumps({**config, "model_type": "gpt_neo"}))
    cases.append(
        (neo, "a Hugging Face gpt_neo model; a prefix-gpt2 starts from GPT-2 weights only")
    )
    for gpt2, message in cases:
        status = _train(caption_folder, tmp_path, "--init-from", str(gpt2), "--architecture", "prefix-gpt2",
                        "--epochs", "1")  # fmt: skip
        err = capsys.readouterr().err
        assert status == 2 and message in err and "Traceback" not in err, (gpt2.name, err)


@pytest.mark.slow
def test_options_a_gpt2_start_ignores_are_said(caption_folder, tmp_path, tiny_gpt2, capsys):
    words = sorted({w for c in json.loads((caption_folder / "captions.json").read_text()).values()
                    for caption in c for w in caption.lower().replace(".", " ").split()})  # fmt: skip
    gpt2 = tiny_gpt2([w for w in words if w not in ("left", "right")] + ["le", "ft", "ri", "ght"])
    captions = json.loads((caption_folder / "captions.json").read_text())
    first = sorted(captions)[0]
    captions[first] = [*captions[first], "a shape on the left"]
    (caption_folder / "captions.json").write_text(json.dumps(captions))
    status = _train(caption_folder, tmp_path, "--init-from", str(gpt2), "--architecture", "prefix-gpt2",
                    "--epochs", "1", "--warmup-steps", "1", "--min-count", "2", "--flip")  # fmt: skip
    err = capsys.readouterr().err
    assert status == 0, err
    assert "--min-count 2 does nothing here: the GPT-2 tokenizer is the vocabulary" in err
    assert "--flip: 'left' and 'right' are no single tokens of this tokenizer" in err
