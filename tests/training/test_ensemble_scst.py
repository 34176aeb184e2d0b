import dataclasses
import json

import pytest
import torch

from capsight._cli.tools.ensemble_scst import main
from capsight.captioning.checkpoint import load_checkpoint
from capsight.errors import InvalidParameter
from capsight.training.ensemble_scst import EnsembleScstConfig, train_ensemble
from capsight.training.train import train

from .test_train import _config


@pytest.mark.slow
def test_two_members_learn_as_one_policy_and_resume(caption_folder, tmp_path):
    cache = tmp_path / "cache"
    plain = train(_config(caption_folder, tmp_path / "plain", cache, epochs=1))
    tuned = train(_config(caption_folder, tmp_path / "tuned", cache, epochs=1, seed=1,
                          init_from=str(plain.best_dir), fine_tune_blocks=1))  # fmt: skip
    out = tmp_path / "pair"
    config = EnsembleScstConfig(data=str(caption_folder), members=[str(tuned.best_dir), str(plain.best_dir)],
                                out=str(out), epochs=1, lr=1e-2, batch_images=4, cache_dir=str(cache),
                                progress=False)  # fmt: skip
    best = train_ensemble(config)
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1] and "reward" in records[1]
    assert best["epoch"] in (0, 1) and (out / "best" / "m0" / "model.safetensors").is_file()
    for i, source in enumerate((tuned.best_dir, plain.best_dir)):
        before, _, _ = load_checkpoint(source)
        after, _, raw = load_checkpoint(out / "last" / f"m{i}")
        assert raw["training"]["ensemble_scst"]["epoch"] == 1 and "best" in raw["training"]  # kept
        moved = [
            k for k, v in after.state_dict().items() if not torch.equal(v, before.state_dict()[k])
        ]
        assert moved, f"member {i} did not learn"
        assert after.feature_input == before.feature_input
    # The fine-tuned member's encoder blocks learn too (at the scaled learning rate).
    assert any(k.startswith("encoder_top.") for k, v in load_checkpoint(out / "last" / "m0")[0].state_dict().items()
               if not torch.equal(v, load_checkpoint(tuned.best_dir)[0].state_dict()[k]))  # fmt: skip

    assert (out / "last" / "random_state.safetensors").is_file()  # dropout resumes exactly
    assert main([str(caption_folder), str(tuned.best_dir), str(plain.best_dir), "--out", str(out),
                 "--epochs", "2", "--batch-images", "4", "--cache-dir", str(cache), "--resume",
                 "--no-progress"]) == 0  # fmt: skip
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2]
    # A run from before trainer.json kept the history, whose log holds a line of an epoch cut
    # short (it logged before saving last/): resumed twice, its log keeps every epoch once.
    trainer = json.loads((out / "last" / "trainer.json").read_text())
    (out / "last" / "trainer.json").write_text(
        json.dumps({k: v for k, v in trainer.items() if k != "history"})
    )
    with open(out / "metrics.jsonl", "a") as f:
        f.write(json.dumps({**records[2], "epoch": 3}) + "\n")
    for epochs in (3, 4):
        train_ensemble(dataclasses.replace(config, epochs=epochs, resume=True))
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [0, 1, 2, 3, 4]
    (out / "last" / "trainer.json").write_text('{"epoch": 2, "be')  # a disk that failed
    with pytest.raises(
        InvalidParameter, match="trainer.json: damaged, so the run cannot be resumed"
    ):
        train_ensemble(dataclasses.replace(config, epochs=3, resume=True))


@pytest.mark.slow
def test_a_frozen_member_decodes_with_the_others_but_keeps_its_weights(caption_folder, tmp_path):
    cache = tmp_path / "cache"
    a = train(_config(caption_folder, tmp_path / "a", cache, epochs=1))
    b = train(_config(caption_folder, tmp_path / "b", cache, epochs=1, seed=1))
    out = tmp_path / "pair"
    assert main([str(caption_folder), str(a.best_dir), str(b.best_dir), "--out", str(out), "--frozen", "1",
                 "--lr", "1e-2", "--batch-images", "4", "--cache-dir", str(cache), "--no-progress"]) == 0  # fmt: skip
    for i, source in enumerate((a.best_dir, b.best_dir)):
        before = load_checkpoint(source)[0].state_dict()
        after = load_checkpoint(out / "last" / f"m{i}")[0].state_dict()
        moved = [k for k, v in after.items() if not torch.equal(v, before[k])]
        assert (moved == []) == (i == 1), f"member {i}: {len(moved)} tensors moved"


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ([], "two or more"),
        (["b", "--samples", "1"], "--samples >= 2"),
        (["b", "--batch-images", "0"], "--batch-images >= 1"),
        (["b", "--frozen", "0", "1"], "leaves one to train"),
        (["b", "--frozen", "2"], "positions 0-1"),
    ],
)
def test_bad_options_are_refused_before_any_work(extra, fragment, capsys):
    with pytest.raises(SystemExit):
        main(["data", "a", *extra, "--out", "o"])
    assert fragment in capsys.readouterr().err


def test_a_missing_checkpoint_is_one_line(tmp_path, capsys):
    assert (
        main(
            [str(tmp_path), str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(tmp_path / "o")]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("ensemble_scst: ") and err.count("\n") == 1


def test_every_option_says_what_it_does(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for name in ("--epochs", "--lr", "--top-k", "--cache-dir", "--resume", "--no-end-token"):
        assert name in text
    assert "(default: 1)" in text and "(default: 2.5e-05)" in text


def test_a_second_run_into_a_folder_a_run_is_writing_stops_at_once(tmp_path, lock_held_elsewhere):
    out = tmp_path / "pair"
    out.mkdir()
    lock_held_elsewhere(out)
    config = EnsembleScstConfig(data="d", members=["a", "b"], out=str(out), progress=False)
    with pytest.raises(InvalidParameter, match="another training run is writing there now"):
        train_ensemble(config)
