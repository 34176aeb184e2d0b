import json

import pytest
import torch

from capsight._cli.tools.end_to_end import main
from capsight._cli.tools.features import main as features_main
from capsight.captioning.base import DecodingOptions
from capsight.captioning.facade import cached_encoder
from capsight.captioning.trained import TrainedCaptioner
from capsight.errors import CapsightError
from capsight.io.images import load_image
from capsight.training.cached_eval import evaluate_on_cache
from capsight.training.end_to_end import (
    ENCODER_FILE,
    EndToEndConfig,
    _own_encoder,
    augment,
    end_to_end,
    photo_bytes,
)
from capsight.training.ensemble_scst import EnsembleScstConfig, train_ensemble
from capsight.training.export import export_model
from capsight.training.train import TrainConfig, check_starting_point, train
from capsight.vision.encoder import load_efficientnet_lite


def _config(data, out, **changes) -> EndToEndConfig:
    values = dict(data=str(data), out=str(out), encoder="efficientnet-lite0", epochs=1, scst_epochs=1,
                  batch_images=4, warmup_steps=1, lr=1e-3, progress=False, workers=2)  # fmt: skip
    return EndToEndConfig(**{**values, **changes})


@pytest.mark.slow
def test_encoder_and_decoder_learn_together_and_caption_as_one_checkpoint(caption_folder, tmp_path):
    out = tmp_path / "e2e"
    best = end_to_end(_config(caption_folder, out))
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["stage"] for r in records] == ["xe", "scst"] and "reward" in records[1]
    assert best["val_CIDEr_D"] == max(r["val_CIDEr_D"] for r in records)
    raw = json.loads((out / "best" / "config.json").read_text())
    assert raw["encoder_weights"] == ENCODER_FILE and (out / "best" / ENCODER_FILE).is_file()

    # Every stage of the encoder moved, not only its top; BatchNorm statistics did not.
    imagenet = load_efficientnet_lite("efficientnet-lite0").state_dict()
    tuned = load_efficientnet_lite(
        "efficientnet-lite0", "cpu", str(out / "last" / ENCODER_FILE)
    ).state_dict()
    assert not torch.equal(tuned["_conv_stem.weight"], imagenet["_conv_stem.weight"])
    assert not torch.equal(tuned["_conv_head.weight"], imagenet["_conv_head.weight"])
    assert torch.equal(tuned["_bn0.running_mean"], imagenet["_bn0.running_mean"])
    assert torch.equal(tuned["_bn0.weight"], imagenet["_bn0.weight"])

    # The checkpoint captions photos through its own encoder, alone and beside another model.
    photo = load_image(next((caption_folder / "images").glob("*.jpg")))
    encoded = cached_encoder("efficientnet-lite0").encode([photo])
    captioner = TrainedCaptioner("e2e", out / "best")
    own = cached_encoder("efficientnet-lite0", str(out / "best" / ENCODER_FILE)).encode([photo])
    assert torch.equal(captioner.features(encoded), own.grid)
    assert not torch.equal(own.grid, encoded.grid)
    assert captioner.caption(encoded)[0].text
    pair = TrainedCaptioner("pair", f"{out / 'best'},{out / 'last'}")
    assert pair.features(encoded).shape == (1, 2 * 49, 1280)

    # Export keeps the encoder (float16); tools that read cached ImageNet features refuse it.
    exported = export_model([out / "best", out / "last"], tmp_path / "exported", DecodingOptions())
    assert (exported / "m1" / ENCODER_FILE).stat().st_size < (
        out / "last" / ENCODER_FILE
    ).stat().st_size
    assert TrainedCaptioner("exported", exported).caption(encoded)[0].text
    alone = export_model([out], tmp_path / "alone", DecodingOptions())  # the run folder: its best/
    assert (alone / ENCODER_FILE).is_file() and TrainedCaptioner("alone", alone).caption(encoded)[
        0
    ].text
    with pytest.raises(CapsightError, match="its own fine-tuned encoder"):
        train(
            TrainConfig(
                data=str(caption_folder), out=str(tmp_path / "t"), init_from=str(out / "best")
            )
        )
    # before encoding the photos
    with pytest.raises(CapsightError, match="its own fine-tuned encoder"):
        check_starting_point(TrainConfig(data=str(caption_folder), out=str(tmp_path / "t"),
                                         init_from=str(out / "best"), epochs=0, scst_epochs=1))  # fmt: skip
    with pytest.raises(CapsightError, match="its own fine-tuned encoder"):
        evaluate_on_cache(
            [str(out / "best")], str(caption_folder), "val", DecodingOptions(), str(tmp_path / "c")
        )

    # Ensemble SCST trains it beside a captioner on the shared encoder, from its own cache.
    cache = tmp_path / "cache"
    plain = train(TrainConfig(data=str(caption_folder), out=str(tmp_path / "plain"), epochs=1, batch_images=4,
                              cache_dir=str(cache), progress=False))  # fmt: skip
    # the command that builds its cache
    with pytest.raises(CapsightError, match="--encoder-weights"):
        train_ensemble(EnsembleScstConfig(data=str(caption_folder), members=[str(plain.best_dir), str(out / "best")],
                                          out=str(tmp_path / "pair"), cache_dir=str(cache), progress=False))  # fmt: skip
    features_main(
        [
            str(caption_folder),
            "--encoder-weights",
            str(out / "best" / ENCODER_FILE),
            "--cache-dir",
            str(cache),
        ]
    )
    train_ensemble(EnsembleScstConfig(data=str(caption_folder), members=[str(plain.best_dir), str(out / "best")],
                                      out=str(tmp_path / "pair"), batch_images=4, cache_dir=str(cache), progress=False))  # fmt: skip
    assert (tmp_path / "pair" / "best" / "m1" / ENCODER_FILE).is_file()
    assert TrainedCaptioner("pair", tmp_path / "pair" / "best" / "m0").caption(encoded)[0].text
    assert TrainedCaptioner(
        "pair", f"{tmp_path / 'pair' / 'best' / 'm0'},{tmp_path / 'pair' / 'best' / 'm1'}"
    ).caption(encoded)

    # Resuming with more epochs continues the self-critical stage.
    assert main([str(caption_folder), "--out", str(out), "--encoder", "efficientnet-lite0", "--epochs", "1",
                 "--scst-epochs", "2", "--batch-images", "4", "--resume", "--quiet", "--workers", "2"]) == 0  # fmt: skip
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["epoch"]) for r in records] == [("xe", 1), ("scst", 1), ("scst", 2)]


@pytest.mark.slow
def test_a_run_cut_short_resumes_as_if_it_had_never_stopped(
    caption_folder, tmp_path, monkeypatch, capsys
):
    """last/ holds the optimizer and torch's random state (dropout), and is replaced whole.
    On the CPU: a GPU's kernels (cuDNN's choice, bfloat16 autocast) are not bitwise repeatable."""
    import capsight.training.end_to_end as e2e

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)

    def records(out):
        return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]

    options = dict(epochs=2, scst_epochs=1, max_train_images=8, max_val_images=4)
    end_to_end(_config(caption_folder, tmp_path / "whole", **options))
    save = e2e._save_last

    def stop_after_first(out, decoder, net, vocab, optimizer, state):
        save(out, decoder, net, vocab, optimizer, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(e2e, "_save_last", stop_after_first)
    with pytest.raises(KeyboardInterrupt):
        end_to_end(_config(caption_folder, tmp_path / "cut", **options))
    monkeypatch.setattr(e2e, "_save_last", save)
    assert sorted(p.name for p in (tmp_path / "cut" / "last").iterdir()) == sorted([
        ENCODER_FILE, "config.json", "endings.json", "model.safetensors", "optimizer.pt",
        "random_state.safetensors", "trainer.json", "vocab.json"])  # fmt: skip
    end_to_end(_config(caption_folder, tmp_path / "cut", resume=True, **options))
    same = ("stage", "epoch", "loss", "reward", "val_CIDEr_D")
    assert [{k: r.get(k) for k in same} for r in records(tmp_path / "cut")] == [
        {k: r.get(k) for k in same} for r in records(tmp_path / "whole")]  # fmt: skip

    (tmp_path / "cut" / "last" / "random_state.safetensors").unlink()
    end_to_end(
        _config(caption_folder, tmp_path / "cut", resume=True, **{**options, "scst_epochs": 2})
    )
    assert "random_state.safetensors is missing or damaged" in capsys.readouterr().err


@pytest.mark.slow
def test_a_decoder_can_start_from_a_trained_checkpoint_with_its_vocabulary(
    caption_folder, tmp_path
):
    first = tmp_path / "first"
    end_to_end(_config(caption_folder, first, scst_epochs=0))
    out = tmp_path / "second"
    end_to_end(_config(caption_folder, out, epochs=0, scst_epochs=1, init_from=str(first / "best")))
    # where it started
    assert _own_encoder(str(first / "best")) == str(first / "best" / ENCODER_FILE)
    assert (out / "best" / "vocab.json").read_text() == (first / "best" / "vocab.json").read_text()
    assert [
        json.loads(line)["stage"] for line in (out / "metrics.jsonl").read_text().splitlines()
    ] == ["scst"]


def test_crops_and_mirrors_stay_photos_of_the_same_size():
    pixels = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8)
    gen = torch.Generator().manual_seed(0)
    same = augment(pixels, 1.0, torch.tensor([False, True]), gen)
    assert torch.allclose(same[0], pixels[0], atol=1e-4)  # no crop, no mirror: unchanged
    assert torch.allclose(same[1], pixels[1].flip(-1), atol=1e-4)  # mirrored left to right
    cropped = augment(pixels, 0.5, torch.tensor([False, False]), gen)
    assert cropped.shape == pixels.shape and not torch.allclose(cropped, pixels)


def test_photos_are_resized_whole_to_bytes(caption_folder):
    paths = sorted((caption_folder / "images").glob("*.jpg"))[:3]
    pixels = photo_bytes(paths, 32, workers=2, progress=False)
    assert pixels.shape == (3, 3, 32, 32) and pixels.dtype == torch.uint8


@pytest.mark.parametrize("extra, fragment", [(["--encoder", "resnet"], "choose one of"),
                                             (["--scst-samples", "1"], "--scst-samples >= 2"),
                                             (["--crop", "0"], "--crop"),
                                             (["--attention-lambda", "-1"], "--attention-lambda must be >= 0, got -1.0"),
                                             (["--init-from", "a", "--vocab-from", "b"], "leave out --vocab-from")])  # fmt: skip
def test_bad_options_are_one_line(extra, fragment, tmp_path, capsys):
    assert main([str(tmp_path), "--out", str(tmp_path / "o"), *extra]) == 2
    err = capsys.readouterr().err
    assert fragment in err and err.count("\n") == 1


def test_a_wrong_weights_file_is_one_line(caption_folder, tmp_path, capsys):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    assert (
        main([str(caption_folder), "--out", str(tmp_path / "o"), "--encoder-weights", str(bad)])
        == 2
    )
    err = capsys.readouterr().err
    assert "not efficientnet-lite2 weights" in err and err.count("\n") == 1


def test_video_on_onnx_runtime_leaves_own_encoder_checkpoints_to_torch(tmp_path):
    from capsight.ort.captioner import supported

    for name in ("model.safetensors", "vocab.json"):
        (tmp_path / name).write_text("")
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "show-attend-tell"}))
    assert supported(tmp_path) is not None
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "show-attend-tell",
                                                      "encoder_weights": ENCODER_FILE}))  # fmt: skip
    assert supported(tmp_path) is None


def test_help_works_inside_a_run_folder(tmp_path, monkeypatch, capsys):
    (tmp_path / "last").mkdir()
    (tmp_path / "last" / "trainer.json").write_text("{}")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--time-limit" in capsys.readouterr().out


def test_every_option_says_what_it_does(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in ("--encoder-lr-ratio", "--time-limit", "--no-flip", "--vocab-from", "--resume"):
        assert name in text


def test_a_second_run_into_a_folder_a_run_is_writing_stops_at_once(
    caption_folder, tmp_path, lock_held_elsewhere
):
    from capsight.errors import InvalidParameter

    out = tmp_path / "e2e"
    out.mkdir()
    lock_held_elsewhere(out)
    with pytest.raises(InvalidParameter, match="another training run is writing there now"):
        end_to_end(_config(caption_folder, out))


def test_a_wrong_data_path_leaves_no_run_folder(tmp_path, capsys):
    """The run folder had been made before the data was read: a typo left it, empty."""
    assert main([str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    assert "nope" in capsys.readouterr().err and not (tmp_path / "o").exists()
