import json
import re
import shutil
from pathlib import Path

import pytest
import torch

from capsight._cli.train_command import build_parser, config_from_args
from capsight.captioning.base import DecodingOptions, create_captioner
from capsight.errors import InvalidParameter
from capsight.training.run_folder import make_run_folder
from capsight.training.train import TrainConfig, check_starting_point, train

TINY_SAT = {
    "projected_dim": 32,
    "embed_dim": 32,
    "hidden_dim": 32,
    "attention_dim": 32,
    "dropout": 0.1,
}


def _config(data, out, cache, **overrides) -> TrainConfig:
    values = dict(
        data=str(data),
        out=str(out),
        cache_dir=str(cache),
        model=TINY_SAT,
        epochs=2,
        batch_images=4,
        captions_per_image=2,
        lr=3e-3,
        warmup_steps=2,
        min_count=1,
        val_method="greedy",
        patience=5,
        progress=False,
    )
    return TrainConfig(**{**values, **overrides})


@pytest.mark.slow
def test_train_two_epochs_checkpoint_and_resume(caption_folder, tmp_path, capsys, monkeypatch):
    out, cache = tmp_path / "run", tmp_path / "cache"
    result = train(_config(caption_folder, out, cache))
    assert [r["epoch"] for r in result.history] == [1, 2]
    assert result.history[-1]["loss"] < result.history[0]["loss"] + 1.0
    for name in ("model.safetensors", "config.json", "vocab.json"):
        assert (out / "best" / name).is_file()
    assert (out / "last" / "optimizer.pt").is_file()
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2 and "val_CIDEr" in json.loads(lines[0])

    # Resume for two more epochs: the history continues where it stopped.
    capsys.readouterr()
    resumed = train(_config(caption_folder, out, cache, epochs=4, resume=True))
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert (
        "--epochs 4 where the run had 2 until now: the rest of its learning-rate schedule"
        in capsys.readouterr().err
    )
    # A run stopped part-way goes on exactly as one that never stopped (the optimizer and the
    # random state of dropout are in last/).
    import capsight.training.train as training

    whole = train(_config(caption_folder, tmp_path / "whole", cache, epochs=4))
    book = training._book_epoch

    def stop_after_two(record, state, *args):
        stopped = book(record, state, *args)
        if state["epoch"] == 2:
            raise KeyboardInterrupt
        return stopped

    monkeypatch.setattr(training, "_book_epoch", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        train(_config(caption_folder, tmp_path / "cut", cache, epochs=4))
    monkeypatch.setattr(training, "_book_epoch", book)
    capsys.readouterr()
    cut = train(_config(caption_folder, tmp_path / "cut", cache, epochs=4, resume=True))
    assert [r["loss"] for r in cut.history] == [r["loss"] for r in whole.history]
    err = capsys.readouterr().err
    assert f"resuming the run in {tmp_path / 'cut'} after its xe epoch 2" in err
    assert "--resume on other data" not in err and "learning-rate schedule" not in err
    assert "resuming with" not in err
    # The same command again: the run is finished, nothing more is trained.
    capsys.readouterr()
    recorded = (out / "train_config.json").read_text()
    again = train(_config(caption_folder, out, cache, epochs=4, resume=True, lr=1e-3, min_count=3))
    assert len(again.history) == 4 and "is finished (epoch 4" in capsys.readouterr().err
    # (options that never applied are not recorded: "changed from xe epoch 5" had been written)
    assert (out / "train_config.json").read_text() == recorded
    # Without the optimizer's state a resume still runs, and says it will not be exact.
    (out / "last" / "optimizer.pt").write_bytes(b"\x80\x02garbage")
    (out / "last" / "random_state.safetensors").unlink()
    # Other options apply from now on, and are said to; --min-count cannot touch the vocabulary.
    train(
        _config(caption_folder, out, cache, epochs=5, resume=True, lr=1e-3, min_count=3, flip=True)
    )
    err = capsys.readouterr().err
    assert (
        "resuming with --lr 0.001 (was 0.003), --flip: xe epoch 5 on uses them; "
        "train_config.json keeps the earlier values under changed_on_resume"
    ) in err
    assert (
        "--min-count 3 does nothing on a resumed run: its vocabulary was built with --min-count 1"
        in err
    )
    recorded = json.loads((out / "train_config.json").read_text())
    assert recorded["lr"] == 1e-3 and recorded["min_count"] == 1
    assert recorded["changed_on_resume"] == [
        {"from": "xe epoch 3", "epochs": 2},  # (the run was asked for 2 epochs first)
        {"from": "xe epoch 5", "lr": 3e-3, "flip": False, "epochs": 4},
    ]
    assert "optimizer.pt is damaged: resuming with a fresh optimizer" in err
    assert "random_state.safetensors is missing or damaged" in err
    # A damaged trainer.json (never written half now, but a disk can fail) is one clear line.
    (out / "last" / "trainer.json").write_text('{"epoch": 5, "sta')
    with pytest.raises(
        InvalidParameter, match="trainer.json: damaged, so the run cannot be resumed"
    ) as caught:
        train(_config(caption_folder, out, cache, epochs=6, resume=True))
    assert str(caught.value).endswith(
        f"start it again in another --out (its best model so far is in {out / 'best'})"
    )
    (out / "last" / "trainer.json").unlink()  # gone: it had said there was no last/ at all
    with pytest.raises(InvalidParameter, match=r"its last/ has no trainer.json \(where the run "
                                               r"stands in its schedule\), so the run cannot be "
                                               r"resumed: start it again"):  # fmt: skip
        train(_config(caption_folder, out, cache, epochs=6, resume=True))
    # which the message once advised: a best/ alone is never written over
    shutil.rmtree(out / "last")
    with pytest.raises(InvalidParameter, match="holds an earlier run's best/ but no last/"):
        train(_config(caption_folder, out, cache, epochs=6, resume=True))

    captioner = create_captioner("checkpoint", path=str(out / "best"))
    grid = torch.randn(2, 49, 1280)
    from capsight.vision.encoder import EncodedImages

    encoded = EncodedImages(grid.mean(1), grid, torch.zeros(2, 1000), (7, 7))
    results = captioner.caption(encoded, DecodingOptions(method="beam", beam_width=2, max_length=6))
    assert len(results) == 2 and all(
        r.attention is None or r.attention.shape[1] == 49 for r in results
    )
    words = set(captioner.vocab.itos)
    assert all(set(r.tokens) <= words for r in results)


@pytest.mark.slow
def test_a_resumed_scst_stage_runs_at_the_scst_lr_given_now(caption_folder, tmp_path, monkeypatch):
    """The optimizer's saved groups carry the first invocation's rate; the one passed with
    --resume is what MLflow records as changed, so it must be what trains."""
    import capsight.training.train as training

    cache, book = tmp_path / "cache", training._book_epoch

    def stop_in_scst(record, state, *args):
        stopped = book(record, state, *args)
        if record["stage"] == "scst":
            raise KeyboardInterrupt
        return stopped

    monkeypatch.setattr(training, "_book_epoch", stop_in_scst)
    with pytest.raises(KeyboardInterrupt):
        train(_config(caption_folder, tmp_path / "r", cache, epochs=1, scst_epochs=2, scst_lr=2e-5))
    monkeypatch.setattr(training, "_book_epoch", book)
    resumed = train(_config(caption_folder, tmp_path / "r", cache, epochs=1, scst_epochs=2,
                            scst_lr=3e-5, resume=True))  # fmt: skip
    assert [(r["stage"], r["lr"]) for r in resumed.history[1:]] == [("scst", 2e-5), ("scst", 3e-5)]


@pytest.mark.slow
def test_a_run_resumed_from_another_directory_on_the_same_data_is_not_told_otherwise(
    caption_folder, tmp_path, monkeypatch, capsys
):
    """A relative --data means the folder it named where the run started: resumed from another
    directory (`../shapes` for `shapes`), the run had been told it had other data."""
    cache = tmp_path / "cache"
    monkeypatch.chdir(caption_folder.parent)
    train(_config(caption_folder.name, tmp_path / "r", cache, epochs=1))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    capsys.readouterr()
    train(_config(f"../{caption_folder.name}", tmp_path / "r", cache, epochs=2, resume=True))
    assert "other data" not in capsys.readouterr().err
    recorded = json.loads((tmp_path / "r" / "train_config.json").read_text())
    assert recorded["paths"]["data"] == str(caption_folder.resolve())


@pytest.mark.slow
def test_an_epoch_cut_short_before_its_save_is_logged_once(
    caption_folder, tmp_path, monkeypatch, capsys
):
    """Stopped after validation but before last/ was saved, the epoch is trained again on
    --resume: metrics.jsonl (and MLflow) must not count it twice."""
    import capsight.training.train as training

    cache, book = tmp_path / "cache", training._book_epoch

    def stop_before_saving_two(record, state, *args):
        if state["epoch"] == 2:
            raise KeyboardInterrupt
        return book(record, state, *args)

    monkeypatch.setattr(training, "_book_epoch", stop_before_saving_two)
    with pytest.raises(KeyboardInterrupt):
        train(_config(caption_folder, tmp_path / "r", cache, epochs=3))
    monkeypatch.setattr(training, "_book_epoch", book)
    train(_config(caption_folder, tmp_path / "r", cache, epochs=3, resume=True))
    lines = (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3]
    capsys.readouterr()  # resumed on fewer validation photos: best/ is not comparable, said
    train(_config(caption_folder, tmp_path / "r", cache, epochs=4, resume=True, max_val_images=1))
    assert "--resume on other data than the run's" in capsys.readouterr().err
    # Fewer training photos alone: said as such (validation is the same), and recorded.
    before = json.loads((tmp_path / "r" / "train_config.json").read_text())
    train(_config(caption_folder, tmp_path / "r", cache, epochs=5, resume=True, max_val_images=1,
                  max_train_images=2))  # fmt: skip
    err = capsys.readouterr().err
    assert (
        f"--resume on other training photos than the run's ({before['train_images']} until now; 2 from"
        in err
    )
    assert "--resume on other data" not in err
    recorded = json.loads((tmp_path / "r" / "train_config.json").read_text())
    assert recorded["changed_on_resume"][-1] == {
        "from": "xe epoch 5",
        "epochs": 4,
        "max_train_images": before["max_train_images"],
    }
    # The same folder spelled another way is the same data: neither said nor recorded.
    same = caption_folder / ".." / caption_folder.name
    train(_config(same, tmp_path / "r", cache, epochs=6, resume=True, max_val_images=1,
                  max_train_images=2))  # fmt: skip
    assert "other data" not in capsys.readouterr().err
    recorded = json.loads((tmp_path / "r" / "train_config.json").read_text())
    assert recorded["changed_on_resume"][-1] == {"from": "xe epoch 6", "epochs": 5}


@pytest.mark.parametrize(
    "finished, epochs, scst_epochs, goes_on",
    [
        ({"finished_stage": "xe", "epoch": 5, "patience_left": 0, "stage_epochs": 5}, 5, 0, "done"),
        ({"finished_stage": "xe", "epoch": 4, "patience_left": 0, "stage_epochs": 5}, 5, 0, "done"),
        ({"finished_stage": "xe", "epoch": 4, "patience_left": 0, "stage_epochs": 5}, 8, 0, "xe"),
        ({"finished_stage": "xe", "epoch": 5, "patience_left": 2, "stage_epochs": 5}, 6, 0, "xe"),
        (
            {"finished_stage": "xe", "epoch": 4, "patience_left": 0, "stage_epochs": 5},
            5,
            3,
            "to scst",
        ),
        (
            {"finished_stage": "scst", "epoch": 3, "patience_left": 0, "stage_epochs": 6},
            5,
            6,
            "done",
        ),
        ({"finished_stage": "scst", "epoch": 6, "patience_left": 1}, 5, 8, "scst"),  # saved before
        (
            {"finished_stage": "scst", "epoch": 3, "patience_left": 0},
            5,
            6,
            "done",
        ),  # ... stopped early
        ({"finished_stage": "scst", "epoch": 3, "patience_left": 0}, 5, 7, "scst"),
    ],
)
def test_a_finished_run_goes_on_only_when_given_more_epochs(finished, epochs, scst_epochs, goes_on):
    """The recipes pass --resume every time: rerunning one must not train a stage that stopped
    early on its own again (it would replace best/)."""
    from capsight.training.train import _reopened

    config = TrainConfig(data="d", out="o", epochs=epochs, scst_epochs=scst_epochs, patience=3)
    before = {"epochs": 5, "scst_epochs": 6}  # train_config.json of the run's last invocation
    state = _reopened({"stage": "done", **finished}, config, before)
    if goes_on == "done":
        assert state["stage"] == "done"
    elif goes_on == "to scst":
        assert state["stage"] == "xe" and state["stage_closed"]
    else:
        assert state["stage"] == goes_on and state["patience_left"] == 3


def test_a_save_of_last_cut_short_resumes_from_one_epochs_files(tmp_path):
    """write_last writes last.new whole, then swaps it in; a kill at any point leaves either
    the old epoch's files or the new epoch's, never a mix."""
    from capsight.training.run_folder import settled_last

    def folder(name, epoch, trainer=True):
        (tmp_path / name).mkdir()
        (tmp_path / name / "model.safetensors").write_text(f"epoch {epoch}")
        if trainer:
            (tmp_path / name / "trainer.json").write_text(f'{{"epoch": {epoch}}}')

    def epoch_of_last():
        last = settled_last(tmp_path)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["last"]  # leftovers gone
        return (last / "model.safetensors").read_text()

    folder("last", 3)
    folder("last.new", 4, trainer=False)  # killed while writing the new epoch
    assert epoch_of_last() == "epoch 3"
    (tmp_path / "last").rename(tmp_path / "last.old")
    folder("last.new", 4)  # killed between the two renames
    assert epoch_of_last() == "epoch 4"
    (tmp_path / "last").rename(tmp_path / "last.old")
    folder("last.new", 5, trainer=False)  # no complete new epoch: the old one comes back
    assert epoch_of_last() == "epoch 4"
    folder("last.old", 4)  # killed before the old copy was removed
    assert epoch_of_last() == "epoch 4"


@pytest.mark.parametrize("trainer", ['{"stage": "xe", "epoch": "x"}', '{"stage": 3, "epoch": 1}',
                                     '{"stage": "xe", "epoch": -1}', '{"stage": "xe", "epoch": true}',
                                     '{"stage": "xe", "epoch": 1, "history": {}}', '[1, 2]'])  # fmt: skip
def test_a_trainer_file_with_values_of_the_wrong_kind_is_damaged(tmp_path, trainer):
    """ "epoch": "x" was a TypeError traceback on --resume."""
    from capsight.training.run_folder import read_trainer_state

    (tmp_path / "last").mkdir()
    (tmp_path / "last" / "trainer.json").write_text(trainer)
    with pytest.raises(
        InvalidParameter, match="trainer.json: damaged, so the run cannot be resumed"
    ):
        read_trainer_state(tmp_path / "last")
    (tmp_path / "last" / "trainer.json").write_text('{"stage": "xe", "epoch": 1, "best": null}')
    assert read_trainer_state(tmp_path / "last")["epoch"] == 1


def test_a_vocabulary_of_nothing_is_refused_and_a_long_warm_up_is_noted(
    caption_folder, tmp_path, capsys
):
    from capsight.errors import DatasetError

    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match="--min-count 100000: no word of the training captions"):
        train(_config(caption_folder, tmp_path / "a", cache, min_count=100_000))
    capsys.readouterr()
    from capsight.training.readers import read_corpus
    from capsight.training.train import training_vocabulary

    photos = read_corpus(caption_folder).split("train")
    said = []
    training_vocabulary(photos, 1, said.append)
    assert said == []
    # A --min-count that keeps a word or two (the run had trained, and written "a"): said.
    counts = {}
    for words in (c.lower().split() for p in photos for c in p.captions):
        for word in words:
            counts[word] = counts.get(word, 0) + 1
    top = max(counts.values())
    vocab = training_vocabulary(photos, top, said.append)
    assert len(vocab) <= 6 and len(said) == 1
    assert re.fullmatch(rf"--min-count {top} keeps 1 word, and leaves \d+% of the training captions' words "
                        r"unknown \(<unk>, never written\): its captions can say little; pass a smaller "
                        r"--min-count", said[0]), said  # fmt: skip
    train(_config(caption_folder, tmp_path / "b", cache, epochs=1, warmup_steps=200))
    assert (
        "--warmup-steps 200 is longer than the run's 2 steps (1 epoch of 2)"
        in capsys.readouterr().err
    )
    train(
        _config(
            caption_folder, tmp_path / "c", cache, epochs=1, warmup_steps=1, captions_per_image=2
        )
    )
    err = capsys.readouterr().err
    assert "--warmup-steps" not in err  # one step is no warm-up at all
    assert "--captions-per-image" not in err  # as many as the photos have
    # 99 against Flickr8k's 5 had made an epoch 9x slower without a word.
    train(
        _config(
            caption_folder, tmp_path / "d", cache, epochs=1, warmup_steps=1, captions_per_image=9
        )
    )
    assert (
        "--captions-per-image 9: the training photos have at most 2 captions, so each step draws "
        "them again; an epoch takes longer and sees nothing more (pass --captions-per-image 2)"
    ) in capsys.readouterr().err


def test_a_loss_that_is_no_longer_a_number_stops_the_run_before_it_saves(caption_folder, tmp_path):
    """At --lr 1e30 the loss went NaN, the run ended with status 0 and best/ held NaN weights
    that captioned every photo "in"."""
    from capsight.errors import CapsightError

    out = tmp_path / "nan"
    with pytest.raises(CapsightError, match=r"the training loss became nan at xe epoch 1, step \d+: "
                                            r"the model diverged; start again with a lower --lr "
                                            r"\(it was 1e\+30\)"):  # fmt: skip
        train(_config(caption_folder, out, tmp_path / "cache", lr=1e30, warmup_steps=1))
    assert not (out / "best").exists() and not (out / "last").exists()


def test_a_resumed_run_trains_with_the_weight_decay_given_now(
    caption_folder, tmp_path, monkeypatch
):
    """The saved optimizer's groups came back with the old run's weight decay, while the resume
    note said the new one applied."""
    import capsight.training.train as training

    out, cache = tmp_path / "r", tmp_path / "cache"
    train(_config(caption_folder, out, cache, epochs=1, weight_decay=1e-4))
    optimizers, restore = [], training.restore_resume_state

    def kept(last, optimizer, *args, **kwargs):
        optimizers.append(optimizer)
        return restore(last, optimizer, *args, **kwargs)

    monkeypatch.setattr(training, "restore_resume_state", kept)
    train(_config(caption_folder, out, cache, epochs=2, weight_decay=0.5, resume=True))
    assert {g["weight_decay"] for g in optimizers[0].param_groups} == {0.0, 0.5}  # (none on biases)


def test_the_divergence_check_shared_by_every_training_loop(tmp_path):
    """capsight train, the end-to-end job and ensemble SCST stop alike on a loss that is no number."""
    from capsight.errors import CapsightError
    from capsight.training.train import check_finite

    check_finite(2.5, "xe epoch 1, step 1", tmp_path, "--lr", 1e-3)  # a number: nothing to say
    (tmp_path / "last").mkdir()
    for value in (float("nan"), float("inf")):
        with pytest.raises(CapsightError, match=rf"became {value} at epoch 3, step 7: the model "
                                                rf"diverged; {tmp_path}/last holds the last finished "
                                                r"epoch: add --resume with a lower --lr \(it was 0.01\), "
                                                r"or start again in another --out"):  # fmt: skip
            check_finite(value, "epoch 3, step 7", tmp_path, "--lr", 1e-2)


@pytest.mark.slow
def test_scst_logs_its_loss_apart_and_its_reward(caption_folder, tmp_path):
    """SCST's policy-gradient loss went to MLflow as "loss", on cross-entropy's chart, and its
    reward not at all."""
    logged, params_logged = [], {}

    class Tracker:
        def log_params(self, params):
            params_logged.update(params)

        def log_metrics(self, metrics, step):
            logged.append((step, metrics))

        def log_artifact(self, path):
            pass

    result = train(_config(caption_folder, tmp_path / "r", tmp_path / "cache", epochs=1, scst_epochs=1),
                   tracker=Tracker())  # fmt: skip
    (xe_step, xe), (scst_step, scst) = logged
    assert (xe_step, scst_step) == (1, 2)
    assert "loss" in xe and "scst_loss" not in xe and "reward" not in xe
    assert "scst_loss" in scst and "loss" not in scst and 0 <= scst["reward"] <= 10
    assert result.history[1]["reward"] == scst["reward"]  # metrics.jsonl has it too
    # The best epoch's validation scores as best_*, logged when it is reached: the runs table
    # had shown the last epoch's, not those of the model in best/.
    best_step = int(max(m.get("best_epoch", 0) for _, m in logged))
    best = next(m for step, m in logged if step == best_step)
    assert best["best_val_CIDEr"] == best["val_CIDEr"] == result.best["val_CIDEr"]
    assert all("best_val_CIDEr" not in m for step, m in logged if step > best_step)
    # Where it ran: the same options give another batch under torchrun, and bf16 on a GPU.
    assert params_logged["ran_on"]["world_size"] == 1 and params_logged["ran_on"]["device"] == "cpu"
    assert params_logged["ran_on"]["precision"] == "float32" and params_logged["ran_on"]["torch"]


@pytest.mark.slow
def test_same_seed_gives_same_weights_and_scst_runs(caption_folder, tmp_path):
    cache = tmp_path / "cache"
    a = train(_config(caption_folder, tmp_path / "a", cache, epochs=1, architecture="show-and-tell",
                      model={"embed_dim": 16, "hidden_dim": 16}))  # fmt: skip
    b = train(_config(caption_folder, tmp_path / "b", cache, epochs=1, architecture="show-and-tell",
                      model={"embed_dim": 16, "hidden_dim": 16}))  # fmt: skip
    assert a.history[0]["loss"] == b.history[0]["loss"]
    scst = train(_config(caption_folder, tmp_path / "c", cache, epochs=1, scst_epochs=1, flip=True))
    assert [r["stage"] for r in scst.history] == ["xe", "scst"]


def test_command_line_parses_into_a_config():
    args = build_parser().parse_args(
        [
            "data",
            "--out",
            "runs/x",
            "--epochs",
            "3",
            "--flip",
            "--model-option",
            "cell=gru",
            "--model-option",
            "num_layers=2",
            "--scst-epochs",
            "2",
            "--architecture",
            "show-and-tell",
        ]
    )
    config = config_from_args(args)
    assert config.epochs == 3 and config.flip and config.scst_epochs == 2
    assert config.model == {"cell": "gru", "num_layers": 2}
    with pytest.raises(SystemExit):  # `python -m capsight.training.train` too: no abbreviations
        build_parser().parse_args(["data", "--out", "runs/x", "--captions", "3"])
    with pytest.raises(InvalidParameter):
        TrainConfig(data="d", out="o", val_method="sample")


@pytest.mark.parametrize(
    "argv,fragment",
    [
        (["--lr", "-1"], "--lr must be a positive"),
        (["--scst-lr", "nan"], "--scst-lr must be a positive"),
        (["--label-smoothing", "1"], "--label-smoothing"),
        (["--val-beam", "0"], "--val-beam must be >= 1, got 0"),
        (["--epochs", "-1"], "--epochs must be >= 0, got -1"),
        (["--batch-images", "0"], "--batch-images must be >= 1, got 0"),
        (["--model-option", "hiden_dim=1024"], "hiden_dim: is not an option of show-attend-tell"),
        (["--model-option", "hidden_dim=abc"], "expected int"),
        (["--model-option", "vocab_size=9"], "is set by training"),
        (["--model-option", "dropout=1"], "dropout rate"),
        (["--model-option", "hidden_dim=0"], "hidden_dim=0: must be between 1 and 65536"),
        (["--architecture", "prefix-gpt2", "--model-option", "n_embd=90"], "multiple of n_head"),
        (
            ["--architecture", "prefix-gpt2", "--model-option", "n_positions=60"],
            "the prefix (49 positions) and captions of up to 22 words need at least 73",
        ),
        (
            ["--architecture", "prefix-gpt2", "--resolution", "384"],
            "n_positions=128: the prefix (144 positions)",
        ),
        (["--captions-per-image", "1000000"], "--captions-per-image at most 100"),
        (["--model-option", "nokey"], "expected KEY=VALUE"),
        (["--architecture", "show-and-tell", "--model-option", "cell=rnn"], "lstm or gru"),
        (["--resolution", "-5"], "--resolution must be 0 (the encoder's own size) or 32-1024"),
        (["--resolution", "100000"], "got 100000"),
    ],
)
def test_bad_training_options_are_refused_before_any_work(argv, fragment, tmp_path):
    with pytest.raises(InvalidParameter, match=re.escape(fragment)):
        config_from_args(build_parser().parse_args(["data", "--out", str(tmp_path / "r"), *argv]))
    assert not (tmp_path / "r").exists()


def test_a_file_as_the_run_folder_is_refused(tmp_path):
    (tmp_path / "taken").write_text("x")
    with pytest.raises(InvalidParameter, match="is a file"):
        TrainConfig(data="d", out=str(tmp_path / "taken"))
    with pytest.raises(InvalidParameter, match="taken: is a file; name a folder"):
        make_run_folder(str(tmp_path / "taken"))  # end_to_end's run folder too


def test_a_run_folder_that_cannot_be_written_is_one_clear_error(tmp_path):
    (tmp_path / "photo.jpg").write_text("x")
    with pytest.raises(InvalidParameter, match="photo.jpg/run: cannot write the run there"):
        make_run_folder(str(tmp_path / "photo.jpg" / "run"))
    assert make_run_folder(str(tmp_path / "a" / "b")).is_dir()


def test_a_run_with_no_epochs_is_refused(tmp_path):
    with pytest.raises(InvalidParameter, match="nothing to train"):
        check_starting_point(TrainConfig(data="d", out=str(tmp_path / "r"), epochs=0))
    # Self-critical training of random weights ran, and scored CIDEr 0.008.
    for resume in (False, True):  # --resume with nothing to resume is no way round it
        with pytest.raises(InvalidParameter, match="refines a trained captioner; pass --init-from"):
            check_starting_point(TrainConfig(data="d", out=str(tmp_path / "r"), epochs=0, scst_epochs=2,
                                             resume=resume))  # fmt: skip
    from capsight.training.end_to_end import EndToEndConfig

    with pytest.raises(InvalidParameter, match="refines a trained captioner; pass --init-from"):
        EndToEndConfig(data="d", out=str(tmp_path / "e"), epochs=0, scst_epochs=2, resume=True)


@pytest.mark.parametrize("option, value, message", [
    ("scst_samples", 1, "--scst-samples must be >= 2, got 1"),  # no one else to be the baseline
    ("weight_decay", -1.0, "--weight-decay must be >= 0, got -1"),
    ("grad_clip", -1.0, "--grad-clip must be >= 0, got -1"),
    ("min_lr_ratio", 2.0, r"--min-lr-ratio must be in \[0, 1\], got 2"),
    ("label_smoothing", 2.0, r"--label-smoothing must be in \[0, 1\), got 2.0"),  # (one message
    ("attention_lambda", -1.0, "--attention-lambda must be >= 0, got -1.0"),         # named both)
    ("fine_tune_lr_ratio", -1.0, "--fine-tune-lr-ratio must be >= 0, got -1.0"),
])  # fmt: skip
def test_each_bad_training_number_is_named_by_its_own_flag(tmp_path, option, value, message):
    with pytest.raises(InvalidParameter, match=message):
        TrainConfig(data="d", out=str(tmp_path / "r"), **{option: value})


def test_a_run_without_pycocoevalcap_is_refused_before_any_epoch(tmp_path, monkeypatch):
    import sys

    from capsight.errors import MissingDependency

    monkeypatch.setitem(sys.modules, "pycocoevalcap.bleu.bleu", None)  # as if not installed
    with pytest.raises(MissingDependency, match=r"pip install 'capsight\[train\]'"):
        check_starting_point(TrainConfig(data="d", out=str(tmp_path / "r")))


def test_resume_with_nothing_to_resume_says_so_and_starts(tmp_path):
    notes = []
    check_starting_point(TrainConfig(data="d", out=str(tmp_path / "r"), resume=True), notes.append)
    assert notes == [f"--resume: nothing to resume in {tmp_path / 'r'}; starting a new run"]


@pytest.mark.parametrize(
    "flags,fragment",
    [
        ({}, "not encoder efficientnet-lite0: pass --encoder efficientnet-lite2"),
        (
            {"encoder": "efficientnet-lite2", "architecture": "show-and-tell"},
            "not architecture show-and-tell: pass --architecture show-attend-tell",
        ),
        (
            {"encoder": "efficientnet-lite2", "resolution": 300},
            "not resolution 300: pass --resolution 260",
        ),
        (
            {"encoder": "efficientnet-lite2", "model": {"hidden_dim": 256}},
            "was built with hidden_dim=512; --model-option hidden_dim=256 cannot change it",
        ),
    ],
)
def test_init_from_a_checkpoint_on_other_features_is_refused(tmp_path, flags, fragment):
    start = tmp_path / "lite2"
    start.mkdir()
    (start / "config.json").write_text(
        json.dumps(
            {
                "architecture": "show-attend-tell",
                "encoder": "efficientnet-lite2",
                "resolution": 260,
                "hidden_dim": 512,
            }
        )
    )
    with pytest.raises(InvalidParameter, match=re.escape(fragment)):
        check_starting_point(
            TrainConfig(data="d", out=str(tmp_path / "r"), init_from=str(start), **flags)
        )
    check_starting_point(TrainConfig(data="d", out=str(tmp_path / "r"), init_from=str(start),
                                     encoder="efficientnet-lite2"))  # fmt: skip


def test_init_from_a_run_folder_starts_from_its_best_model(tmp_path):
    run = tmp_path / "run"
    (run / "best").mkdir(parents=True)
    (run / "best" / "config.json").write_text(json.dumps({"architecture": "show-attend-tell"}))
    notes = []
    check_starting_point(
        TrainConfig(data="d", out=str(tmp_path / "r"), init_from=str(run)), notes.append
    )
    assert notes == [
        f"--init-from {run}: a run folder; starting from its best model, {run / 'best'}"
    ]
    from capsight.captioning.checkpoint import checkpoint_folder, read_config

    assert checkpoint_folder(run) == run / "best" and read_config(run) == {
        "architecture": "show-attend-tell"
    }
    assert checkpoint_folder(run / "best") == run / "best"  # (what load_checkpoint loads)


def test_every_option_of_the_command_line_says_what_it_does():
    silent = [a.dest for a in build_parser()._actions if not a.help]
    assert silent == []


@pytest.mark.slow
def test_fine_tuning_the_encoders_top_blocks_from_a_trained_decoder(
    caption_folder, tmp_path, encoder
):
    from PIL import Image

    from capsight.captioning.checkpoint import load_checkpoint
    from capsight.captioning.encoder_top import EncoderTop

    cache = tmp_path / "cache"
    plain = train(_config(caption_folder, tmp_path / "plain", cache, epochs=1))
    tuned = train(_config(caption_folder, tmp_path / "tuned", cache, epochs=1, scst_epochs=1,
                          init_from=str(plain.best_dir), fine_tune_blocks=1, lr=1e-2))  # fmt: skip
    assert [r["stage"] for r in tuned.history] == ["xe", "scst"]
    model, _, config = load_checkpoint(tuned.best_dir)
    assert config["fine_tune_blocks"] == 1 and model.feature_input == "hidden"
    imagenet = EncoderTop("efficientnet-lite0", trainable_blocks=1).state_dict()
    changed = {
        k for k, v in model.encoder_top.state_dict().items() if not torch.equal(v, imagenet[k])
    }
    assert changed and all(k.startswith(("blocks.3.", "head_conv.")) for k in changed)

    # At run time it captions from the shared encoder's hidden maps.
    captioner = create_captioner(str(tuned.best_dir))  # a folder is a captioner name too
    photos = sorted((caption_folder / "images").glob("*.jpg"))[:2]
    results = captioner.caption(encoder.encode([Image.open(p).convert("RGB") for p in photos]))
    assert len(results) == 2 and all(r.tokens for r in results)


def test_fine_tuning_is_refused_where_it_is_not_built():
    with pytest.raises(InvalidParameter, match="show-attend-tell only"):
        TrainConfig(data="d", out="o", architecture="show-and-tell", fine_tune_blocks=2)
    with pytest.raises(InvalidParameter, match=">= 0"):
        TrainConfig(data="d", out="o", fine_tune_blocks=-1)


@pytest.mark.slow
def test_torchrun_with_two_processes_trains_and_reports_once(caption_folder, tmp_path):
    """DistributedDataParallel on CPU (gloo): two ranks share one fresh feature cache (rank 0
    extracts, rank 1 waits), and only rank 0 writes metrics and prints the result."""
    import subprocess
    import sys

    out, cache = tmp_path / "run", tmp_path / "cache"
    options = [f"--model-option={k}={v}" for k, v in TINY_SAT.items()]
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "capsight", "train", str(caption_folder), "--out", str(out), "--cache-dir", str(cache),
        "--epochs", "2", "--scst-epochs", "1", "--flip", "--batch-images", "2", "--min-count", "1",
        "--val-method", "greedy", "--no-track", *options,
    ]  # fmt: skip
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    results = [line for line in done.stdout.splitlines() if line.startswith('{"best_dir"')]
    assert len(results) == 1 and json.loads(results[0])["best_dir"] == str(out / "best")
    stages = [
        json.loads(line)["stage"] for line in (out / "metrics.jsonl").read_text().splitlines()
    ]
    assert stages == ["xe", "xe", "scst"]
    captioner = create_captioner(str(out / "best"))
    assert captioner.vocab.itos


@pytest.mark.slow
def test_torchrun_ranks_stop_together_on_a_diverged_run(caption_folder, tmp_path):
    """Each rank stopping on its own loss would leave the other waiting in the next all-reduce:
    the ranks check the averaged gradients, the same on both, and both end at once."""
    import subprocess
    import sys

    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
        "-m", "capsight", "train", str(caption_folder), "--out", str(out), "--cache-dir",
        str(tmp_path / "cache"), "--epochs", "2", "--batch-images", "2", "--min-count", "1",
        "--lr", "1e30", "--warmup-steps", "1", "--val-method", "greedy", "--no-track",
        *[f"--model-option={k}={v}" for k, v in TINY_SAT.items()],
    ]  # fmt: skip
    env = {**__import__("os").environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode != 0
    assert "the model diverged; start again with a lower --lr (it was 1e+30)" in done.stderr
    assert not (out / "best").exists()


def _karpathy_file(caption_folder, path):
    """The tiny shapes corpus as a Karpathy dataset_*.json (photos stay in their folder)."""
    captions = json.loads((caption_folder / "captions.json").read_text())
    splits = json.loads((caption_folder / "splits.json").read_text())
    split_of = {key: name for name, keys in splits.items() for key in keys}
    images = [{"filename": key, "split": split_of[key], "sentences": [{"raw": c} for c in caps]}
              for key, caps in captions.items()]  # fmt: skip
    path.write_text(json.dumps({"dataset": "shapes", "images": images}))
    return path


@pytest.mark.slow
def test_training_reads_a_karpathy_file_with_its_photo_folder(caption_folder, tmp_path):
    from capsight._cli.train_command import train_main

    karpathy = _karpathy_file(caption_folder, tmp_path / "dataset_shapes.json")
    argv = [str(karpathy), "--images", str(caption_folder / "images"), "--out", str(tmp_path / "run"),
            "--cache-dir", str(tmp_path / "cache"), "--epochs", "1", "--batch-images", "4",
            "--min-count", "1", "--val-method", "greedy", "--quiet", "--no-track",
            *[f"--model-option={k}={v}" for k, v in TINY_SAT.items()]]  # fmt: skip
    assert train_main(argv) == 0
    params = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert (params["train_images"], params["val_images"]) == (8, 2)
    # The run folder now holds a run: training into it again needs --resume.
    with pytest.raises(InvalidParameter, match="holds a run already"):
        train_main(argv)
    # Without its last/ (deleted to save room), the run's best/ is a model to keep, not to replace.
    shutil.rmtree(tmp_path / "run" / "last")
    before = (tmp_path / "run" / "best" / "model.safetensors").read_bytes()
    for extra in ([], ["--resume"]):
        with pytest.raises(
            InvalidParameter, match="an earlier run's best/ but no last/ it could be"
        ):
            train_main([*argv, *extra])
    assert (tmp_path / "run" / "best" / "model.safetensors").read_bytes() == before


def test_a_run_folder_must_be_new_empty_or_a_run_cut_short(tmp_path):
    from capsight.training.run_folder import check_run_folder, make_run_folder

    check_run_folder(tmp_path / "new", resume=False)
    (tmp_path / "empty").mkdir()
    check_run_folder(tmp_path / "empty", resume=False)
    cut_short = tmp_path / "cut"  # stopped before its first epoch was saved: starts again
    cut_short.mkdir()
    (cut_short / "train_config.json").write_text("{}")
    (cut_short / ".DS_Store").write_text("")
    (cut_short / "train.log").write_text("a log the shell writes into the run's folder")
    check_run_folder(cut_short, resume=True)
    check_run_folder(cut_short, resume=False)
    (cut_short / "best" / "m0").mkdir(parents=True)  # ensemble SCST saves its members at
    (cut_short / "best" / "m0" / "config.json").write_text("{}")  # epoch 0, before any last/
    (cut_short / "metrics.jsonl").write_text(json.dumps({"epoch": 0, "val_CIDEr": 0.5}) + "\n")
    check_run_folder(cut_short, resume=True)
    only_best = tmp_path / "only-best"  # its last/ and its log deleted: still a model to keep
    (only_best / "best").mkdir(parents=True)
    check_run_folder(only_best, resume=False)  # an empty best/ is no model: a first save that
    (only_best / "best" / "config.json").write_text("{}")  # failed, as on a full disk
    with pytest.raises(InvalidParameter, match="best/ but no last/"):
        check_run_folder(only_best, resume=False)
    with open(cut_short / "metrics.jsonl", "a") as f:  # an epoch logged: that run's best/ is kept
        f.write(json.dumps({"epoch": 1, "val_CIDEr": 0.6}) + "\n")
    with pytest.raises(InvalidParameter, match="best/ but no last/ it could be resumed from"):
        check_run_folder(cut_short, resume=True)
    old_log = tmp_path / "old-log"  # an earlier run's log, its best/ and last/ deleted, or a
    old_log.mkdir()  # file of the user's own: a new run had added its lines to it
    for text in (json.dumps({"epoch": 6, "val_CIDEr": 0.6}), '{"mine": 1}'):
        (old_log / "metrics.jsonl").write_text(text + "\n")
        with pytest.raises(InvalidParameter, match=r"old-log: its metrics.jsonl logs epochs "
                                                   r"whose checkpoints are not there .*; name "
                                                   r"another folder \(or move metrics.jsonl away\)$"):  # fmt: skip
            check_run_folder(old_log, resume=False)
    (old_log / "metrics.jsonl").write_text("")  # cut short before anything was logged: fine
    check_run_folder(old_log, resume=False)
    run = tmp_path / "sat"  # its best/ named where the run belongs
    (run / "best").mkdir(parents=True)
    (run / "last").mkdir()
    (run / "last" / "trainer.json").write_text("{}")
    (run / "best" / "config.json").write_text("{}")
    for inner in ("best", "last"):
        with pytest.raises(InvalidParameter, match=f"is the {inner}/ checkpoint of the run in {run}; "
                                                    f"name the run's folder: --out {run}$"):  # fmt: skip
            check_run_folder(run / inner, resume=True)
    (cut_short / "last.new").mkdir()  # a later save that failed, and last/ deleted: still kept
    with pytest.raises(InvalidParameter, match="best/ but no last/ it could be resumed from"):
        check_run_folder(cut_short, resume=False)
    failed_first = tmp_path / "failed-first"  # ... but a first last/ never saved (a full disk):
    (failed_first / "best").mkdir(parents=True)  # that best/ is the first epoch's, trained again
    (failed_first / "last.new").mkdir()
    (failed_first / "last.new" / "model.safetensors").write_bytes(b"cut off")
    check_run_folder(failed_first, resume=False)
    check_run_folder(failed_first, resume=True)
    data = tmp_path / "data"  # the dataset, its photo folder, a checkpoint: not run folders
    (data / "images").mkdir(parents=True)
    for name in ("captions.json", "splits.json", "images/a.jpg"):
        (data / name).write_text("x")
    for folder, shown in ((data, "captions.json, images, splits.json"), (data / "images", "a.jpg")):
        for resume in (False, True):
            with pytest.raises(InvalidParameter, match=f"not a training run's \\({shown}\\)"):
                check_run_folder(folder, resume)
    (data / "x.csv").write_text("")
    with pytest.raises(InvalidParameter, match=r"\(captions.json, images, splits.json, ...\)"):
        check_run_folder(data, False)
    with pytest.raises(InvalidParameter, match="is a file"):
        check_run_folder(data / "x.csv", False)
    with pytest.raises(InvalidParameter, match="--out is empty"):
        make_run_folder("")


def test_a_second_run_into_a_folder_a_run_is_writing_stops_at_once(
    caption_folder, tmp_path, lock_held_elsewhere
):
    """Two `capsight train --out runs/x` at once had both run: their epochs interleaved in
    metrics.jsonl, and best/ was one run's model, train_config.json the other's."""
    from capsight._cli.train_command import train_main

    out = tmp_path / "run"
    out.mkdir()
    pid = lock_held_elsewhere(out)
    busy = f"another training run is writing there now \\(process {pid}\\)"
    with pytest.raises(InvalidParameter, match=busy):
        train(_config(caption_folder, out, tmp_path / "cache", epochs=1))
    # nothing written, not even its config
    assert sorted(p.name for p in out.iterdir()) == [".lock"]
    # The command line is refused before it settles the folder's last/: the other run's half-
    # written last.new (a save under way) was deleted, and that run failed.
    (out / "last").mkdir()
    (out / "last" / "trainer.json").write_text(json.dumps({"epoch": 1, "stage": "xe"}))
    (out / "last.new").mkdir()
    (out / "last.new" / "model.safetensors").write_bytes(b"being written")
    with pytest.raises(InvalidParameter, match=busy):
        train_main([str(caption_folder), "--out", str(out), "--resume", "--quiet", "--no-track"])
    assert (out / "last.new" / "model.safetensors").read_bytes() == b"being written"


def test_a_run_folder_lock_is_free_once_its_run_ends(caption_folder, tmp_path):
    from capsight.training.run_folder import run_folder_lock

    out = tmp_path / "run"
    train(_config(caption_folder, out, tmp_path / "cache", epochs=1))
    result = train(_config(caption_folder, out, tmp_path / "cache", epochs=2, resume=True))
    assert [r["epoch"] for r in result.history] == [1, 2]
    with run_folder_lock(out), run_folder_lock(out):  # this process holds it: taken again, held on
        pass


def test_a_split_left_empty_says_why(caption_folder, tmp_path):
    from capsight.errors import DatasetError
    from capsight.training.train import training_corpus

    splits = json.loads((caption_folder / "splits.json").read_text())
    for name in splits["val"]:
        (caption_folder / "images" / name).unlink()
    with pytest.raises(
        DatasetError, match=f"none of the {len(splits['val'])} photos of the 'val' split has a file"
    ):
        training_corpus(TrainConfig(data=str(caption_folder), out=str(tmp_path / "o")))
    two = tmp_path / "two"
    (two / "images").mkdir(parents=True)
    for name in ("a.jpg", "b.jpg"):
        (two / "images" / name).write_bytes(
            (caption_folder / "images" / splits["train"][0]).read_bytes()
        )
    (two / "captions.json").write_text(json.dumps({"a.jpg": ["a shape"], "b.jpg": ["a shape"]}))
    with pytest.raises(
        DatasetError, match=r"2 photo\(s\) with captions; training needs at least 3"
    ):
        training_corpus(TrainConfig(data=str(two), out=str(tmp_path / "o")))
    with pytest.raises(
        InvalidParameter, match="model.safetensors: is a file; name the checkpoint folder"
    ):
        (tmp_path / "model.safetensors").write_text("")
        check_starting_point(
            TrainConfig(
                data="d", out=str(tmp_path / "r"), init_from=str(tmp_path / "model.safetensors")
            )
        )


def test_the_training_corpus_is_checked_before_any_work(caption_folder, tmp_path):
    from capsight.errors import DatasetError
    from capsight.training.train import training_corpus

    notes = []
    (caption_folder / "images" / "red-square-0.jpg").unlink()
    corpus = training_corpus(
        TrainConfig(data=str(caption_folder), out=str(tmp_path / "o")), notes.append
    )
    assert (
        "red-square-0.jpg" not in corpus.images
        and "1 photo has no file and is left out" in notes[-1]
    )
    last = json.loads((caption_folder / "splits.json").read_text())["train"][-1]  # "x.jpg"
    upper = (caption_folder / "images" / last).rename(
        caption_folder / "images" / last.replace(".jpg", ".JPG")
    )
    training_corpus(TrainConfig(data=str(caption_folder), out=str(tmp_path / "o")), notes.append)
    assert notes[-1].endswith(f"{last}; {upper.name} is there: file names are case-sensitive)")
    upper.rename(caption_folder / "images" / last)
    (caption_folder / "images" / "red-square-0.jpg").mkdir()  # a folder of the very name: no twin
    training_corpus(TrainConfig(data=str(caption_folder), out=str(tmp_path / "o")), notes.append)
    assert (
        notes[-1].endswith("red-square-0.jpg; it is a folder)")
        and "case-sensitive" not in notes[-1]
    )
    (caption_folder / "images" / "red-square-0.jpg").rmdir()
    with pytest.raises(
        DatasetError, match=r"is in .*nowhere, which does not exist \(give the photo folder"
    ):
        training_corpus(
            TrainConfig(data=str(caption_folder), images=str(tmp_path / "nowhere"), out="o")
        )
    with pytest.raises(
        DatasetError, match=r"captions.json, which is a file, not a folder \(give the photo"
    ):
        training_corpus(
            TrainConfig(
                data=str(caption_folder), images=str(caption_folder / "captions.json"), out="o"
            )
        )
    # before any photo is encoded
    with pytest.raises(DatasetError, match="--min-count 100000: no word"):
        training_corpus(
            TrainConfig(data=str(caption_folder), out=str(tmp_path / "o"), min_count=100_000)
        )

    splits = json.loads((caption_folder / "splits.json").read_text())
    (caption_folder / "splits.json").write_text(json.dumps({**splits, "val": splits["train"][:2]}))
    with pytest.raises(DatasetError, match="2 photos are in both the train and the val split"):
        training_corpus(TrainConfig(data=str(caption_folder), out=str(tmp_path / "o")))
    (caption_folder / "splits.json").write_text(json.dumps({**splits, "test": splits["train"][:3]}))
    with pytest.raises(DatasetError, match="3 photos are in both the train and the test split"):
        training_corpus(TrainConfig(data=str(caption_folder), out=str(tmp_path / "o")))
    notes.clear()
    (caption_folder / "splits.json").write_text(json.dumps({**splits, "dev": splits["train"][:2]}))
    training_corpus(TrainConfig(data=str(caption_folder), out=str(tmp_path / "o")), notes.append)
    assert "split 'dev' (2 photos) not used: training reads train, val and test" in notes
    (caption_folder / "splits.json").write_text(json.dumps({**splits, "dev": splits["train"][:1]}))
    training_corpus(TrainConfig(data=str(caption_folder), out=str(tmp_path / "o")), notes.append)
    assert "split 'dev' (1 photo) not used: training reads train, val and test" in notes
    (caption_folder / "splits.json").write_text(json.dumps(
        {"train": splits["train"], "validation": splits["val"]}))  # fmt: skip
    training_corpus(TrainConfig(data=str(caption_folder), out=str(tmp_path / "o")), notes.append)
    assert any(n.endswith("not used: training reads train, val and test; rename 'validation' to 'val' "
                          "to validate on it") for n in notes)  # fmt: skip
    (caption_folder / "splits.json").write_text(json.dumps({**splits, "val": ["gone.jpg"]}))
    with pytest.raises(DatasetError, match="the 'val' split has no photos"):
        training_corpus(TrainConfig(data=str(caption_folder), out=str(tmp_path / "o")))
    (caption_folder / "splits.json").unlink()  # no splits at all: drawn, and said so
    corpus = training_corpus(
        TrainConfig(data=str(caption_folder), out=str(tmp_path / "o")), notes.append
    )
    assert (
        corpus.split("train")
        and corpus.split("val")
        and "split by a hash of each name" in " ".join(notes)
    )


@pytest.mark.slow
def test_a_run_that_drew_its_split_at_random_is_not_resumed_on_the_names_split(
    caption_folder, tmp_path
):
    """A run begun before splits were drawn by names' hash (2026-12-07), on data without a
    split file, would have gone on validating on photos it trained on."""
    import json as json_

    from capsight.training.evaluate import _drawn_otherwise_note
    from capsight.training.train import training_corpus

    (caption_folder / "splits.json").unlink()
    out, cache = tmp_path / "run", tmp_path / "cache"
    train(_config(caption_folder, out, cache, epochs=1))
    recorded = json_.loads((out / "train_config.json").read_text())
    assert recorded["drawn_split"] == "name-hash"
    corpus = training_corpus(_config(caption_folder, out, cache, resume=True), lambda _: None)
    assert _drawn_otherwise_note(str(out / "best"), corpus, "test") == []
    del recorded["drawn_split"]  # as a run of an earlier capsight recorded it
    (out / "train_config.json").write_text(json_.dumps(recorded))
    with pytest.raises(InvalidParameter, match=r"--resume: the run in .* drew its train/val split "
                                               r"at random .*start a new run in another --out"):  # fmt: skip
        train(_config(caption_folder, out, cache, epochs=2, resume=True))
    (note,) = _drawn_otherwise_note(str(out / "best"), corpus, "test")
    assert note.endswith("most of these test photos were in its training photos, so the scores "
                         "flatter it")  # fmt: skip
    assert _drawn_otherwise_note(str(out / "best"), corpus, None) == []  # no split: said apart


def test_a_corpus_of_one_split_is_split_to_train_on(tmp_path):
    """A COCO captions file holds one split: a train file gets a val split from its photos, a
    val file is split by a hash of each name, and each says so."""
    from capsight.training.train import training_corpus

    images = tmp_path / "photos"
    images.mkdir()
    rows = [{"id": i, "file_name": f"{i}.jpg"} for i in range(20)]
    for row in rows:
        (images / row["file_name"]).write_bytes(b"x")
    captions = [{"id": 100 + i, "image_id": i, "caption": f"a photo number {i}"} for i in range(20)]
    for part in ("train", "val"):
        path = tmp_path / f"captions_{part}2017.json"
        path.write_text(json.dumps({"images": rows, "annotations": captions}))
        notes = []
        config = TrainConfig(data=str(path), images=str(images), out=str(tmp_path / "o"))
        corpus = training_corpus(config, notes.append)
        train, val = corpus.split("train"), corpus.split("val")
        assert train and val and not {r.key for r in train} & {r.key for r in val}
        assert len(train) + len(val) == 20 and any(  # about a tenth, placed by name
            f"no val split: {len(val)} of its 20 train photos held out (by a hash" in n
            for n in notes
        )
        if part == "val":
            assert "has no train split (only val): its 20 photos outside a test split" in notes[0]


def test_a_test_split_is_never_trained_on(caption_folder, tmp_path):
    from capsight.errors import DatasetError
    from capsight.training.train import training_corpus

    splits = json.loads((caption_folder / "splits.json").read_text())
    config = TrainConfig(data=str(caption_folder), out=str(tmp_path / "o"))
    (caption_folder / "splits.json").write_text(
        json.dumps({"test": splits["test"], "val": splits["val"]})
    )
    corpus = training_corpus(config, lambda _: None)
    assert corpus.splits["test"] == splits["test"]
    assert not {*corpus.splits["train"], *corpus.splits["val"]} & set(splits["test"])
    # the photos in no list are trained on, and the reader's note says so (it had said "not used")
    assert set(splits["train"]) <= {*corpus.splits["train"], *corpus.splits["val"]}
    assert any("in no split list, capsight train trains on them" in n for n in corpus.notes)
    (caption_folder / "splits.json").write_text(json.dumps({"test": sorted(json.loads(
        (caption_folder / "captions.json").read_text()))}))  # fmt: skip
    with pytest.raises(DatasetError, match="only a test split"):
        training_corpus(config)
    # A test split by another name would be trained on, with the rest outside 'test'.
    renamed = {"training": splits["train"], "validation": splits["val"], "testing": splits["test"]}
    (caption_folder / "splits.json").write_text(json.dumps(renamed))
    with pytest.raises(DatasetError, match="split 'testing' looks like a test split, but training "
                                           "holds out only the one named 'test'"):  # fmt: skip
        training_corpus(config)
    # Other names (a COCO file's 'minival') are trained on, as a file without splits is.
    (caption_folder / "splits.json").write_text(
        json.dumps({"minival": splits["val"] + splits["test"]})
    )
    assert training_corpus(config, lambda _: None).split("train")


@pytest.mark.slow
def test_a_smoke_test_encodes_only_the_photos_it_uses(caption_folder, tmp_path):
    cache = tmp_path / "cache"
    small = dict(epochs=1, max_train_images=2, max_val_images=1)
    train(_config(caption_folder, tmp_path / "small", cache, **small))
    (folder,) = cache.iterdir()
    assert folder.name == "shapes-part3-efficientnet-lite0-224"
    assert len(json.loads((folder / "meta.json").read_text())["keys"]) == 3
    # Once the whole corpus is cached, a smoke test reads that cache instead of its own.
    import shutil

    train(_config(caption_folder, tmp_path / "full", cache, epochs=1))
    shutil.rmtree(folder)
    train(_config(caption_folder, tmp_path / "small2", cache, **small))
    assert [p.name for p in cache.iterdir()] == ["shapes-efficientnet-lite0-224"]
    # With --flip too, the whole corpus is read only when its mirror images are cached as
    # well: a smoke test had mirrored every photo of the dataset.
    train(_config(caption_folder, tmp_path / "small3", cache, flip=True, **small))
    assert sorted(p.name for p in cache.iterdir()) == [
        "shapes-efficientnet-lite0-224",
        "shapes-part3-efficientnet-lite0-224",
        "shapes-part3-efficientnet-lite0-224-flip",
    ]


def test_a_corrupt_photo_is_left_out_of_training_with_a_note(caption_folder, tmp_path, capsys):
    splits = json.loads((caption_folder / "splits.json").read_text())
    bad = splits["train"][0]
    (caption_folder / "images" / bad).write_bytes(b"\xff\xd8\xff\xe0 truncated")
    train(_config(caption_folder, tmp_path / "run", tmp_path / "cache", epochs=1))
    err = capsys.readouterr().err
    assert "unreadable photos left out: 1 (first: " in err and bad in err
    assert (tmp_path / "run" / "best" / "config.json").is_file()
    (folder,) = (tmp_path / "cache").iterdir()
    assert list(json.loads((folder / "meta.json").read_text())["unreadable"]) == [bad]


def test_a_run_that_fails_before_writing_anything_leaves_no_folder(caption_folder, tmp_path):
    from capsight._cli.train_command import train_main
    from capsight.errors import DatasetError

    for key in json.loads((caption_folder / "splits.json").read_text())["val"]:
        (caption_folder / "images" / key).write_bytes(b"not a photo at all")
    argv = [
        str(caption_folder),
        "--out",
        str(tmp_path / "runs" / "r"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--epochs",
        "1",
        "--min-count",
        "1",
        "--quiet",
        "--no-track",
    ]
    with pytest.raises(DatasetError, match="none of the 'val' photos could be read"):
        train_main(argv)
    assert not (tmp_path / "runs" / "r").exists()


def test_a_tracking_store_that_cannot_be_opened_leaves_no_folder(
    caption_folder, tmp_path, monkeypatch
):
    from capsight._cli import train_command as training

    def unopenable(args, config):
        raise InvalidParameter("MLFLOW_TRACKING_URI: cannot open sqlite:////proc/nope/mlflow.db")

    monkeypatch.setattr(training, "_tracker", unopenable)
    argv = [str(caption_folder), "--out", str(tmp_path / "r"), "--cache-dir", str(tmp_path / "c"),
            "--epochs", "1", "--min-count", "1", "--quiet"]  # fmt: skip
    with pytest.raises(InvalidParameter, match="cannot open"):
        training.train_main(argv)
    assert not (tmp_path / "r").exists()


def test_a_stopped_run_logs_its_best_model_as_it_stops(caption_folder, tmp_path, monkeypatch):
    """Ctrl-C after an epoch: best/ had reached MLflow only when a resumed run finished."""
    import capsight.training.train as training
    from capsight.training.tracking import NullTracker

    book = training._book_epoch

    def stop_after_one(record, state, *args):
        book(record, state, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "_book_epoch", stop_after_one)
    tracker = NullTracker()
    with pytest.raises(KeyboardInterrupt):
        train(_config(caption_folder, tmp_path / "run", tmp_path / "cache", epochs=3), tracker)
    assert tracker.artifacts == [tmp_path / "run" / "best"]

    class Unreachable(NullTracker):  # a tracking server gone away: the stop is still a stop
        def log_artifact(self, path):
            raise ConnectionError("server went away\nretries exhausted")

    with pytest.raises(KeyboardInterrupt):
        train(_config(caption_folder, tmp_path / "run2", tmp_path / "cache", epochs=3),
              Unreachable())  # fmt: skip


def test_the_tracker_gets_absolute_paths(caption_folder, tmp_path, monkeypatch):
    """A run's data, out and cache folders as typed ("runs/a") mean nothing in the MLflow UI later."""
    from capsight.training.tracking import NullTracker

    monkeypatch.chdir(tmp_path)
    tracker = NullTracker()
    train(_config(caption_folder, "runs/a", "cache", epochs=1), tracker)
    assert tracker.params["out"] == str(tmp_path / "runs" / "a")
    assert tracker.params["cache_dir"] == str(tmp_path / "cache")
    assert tracker.params["data"] == str(caption_folder.resolve())
    # the model's whole configuration, the settings not typed too (a run with the defaults
    # had logged "model = {}")
    assert tracker.params["model.hidden_dim"] == "32" and tracker.params["model.gate"] == "True"


@pytest.mark.slow
def test_a_resume_keeps_the_runs_own_options_where_the_command_leaves_them_out(
    caption_folder, tmp_path, capsys
):
    """`capsight train DATA --out runs/x --resume` had gone on with --batch-images 32 where the
    run had 4 (the defaults of every flag left out), and been refused without --architecture."""
    from capsight._cli.train_command import train_main

    out, cache = tmp_path / "run", tmp_path / "cache"
    started = [str(caption_folder), "--out", str(out), "--cache-dir", str(cache), "--architecture", "show-and-tell",
               "--batch-images", "4", "--min-count", "1", "--warmup-steps", "2", "--val-method", "greedy",
               "--flip", "--epochs", "1", "--quiet", "--no-track", "--model-option", "hidden_dim=32"]  # fmt: skip
    assert train_main(started) == 0
    capsys.readouterr()
    assert train_main([str(caption_folder), "--out", str(out), "--cache-dir", str(cache), "--resume",
                       "--epochs", "2", "--lr", "0.001", "--no-flip", "--quiet", "--no-track"]) == 0  # fmt: skip
    err = capsys.readouterr().err
    (kept,) = [line for line in err.splitlines() if "resuming with the run's own" in line]
    for flag in ("--batch-images 4", "--warmup-steps 2", "--architecture show-and-tell", "--min-count 1",
                 "--model-option hidden_dim=32"):  # fmt: skip
        assert flag in kept
    assert "flip" not in kept and "--lr" not in kept and "--epochs" not in kept  # given now
    config = json.loads((out / "train_config.json").read_text())
    assert (config["architecture"], config["batch_images"], config["min_count"], config["epochs"], config["model"]) == (
        "show-and-tell", 4, 1, 2, {"hidden_dim": 32})  # fmt: skip
    assert config["changed_on_resume"] == [
        {"from": "xe epoch 2", "lr": 0.0005, "flip": True, "epochs": 1}
    ]
    # Another --init-from on resume: the run goes on from its own last/, which had been taken
    # without a word about the checkpoint named.
    again = [
        str(caption_folder),
        "--out",
        str(out),
        "--cache-dir",
        str(cache),
        "--resume",
        "--quiet",
        "--no-track",
    ]
    with pytest.raises(InvalidParameter, match=r"^--init-from .*best: the run in .* resumes from its own last "
                                               r"epoch \(started from scratch\); drop --init-from"):  # fmt: skip
        train_main([*again, "--init-from", str(out / "best")])
    from capsight.training.train import _same_checkpoint

    assert _same_checkpoint(str(out), str(out / "best"))  # a run folder stands for its best/
    assert not _same_checkpoint("", str(out)) and _same_checkpoint("", "")
    from capsight._cli.train_command import with_the_runs_options

    # Another --architecture: the run's model options are its architecture's, not carried over
    # (a show-and-tell's cell=gru had been blamed: "--model-option cell: is not an option of ...").
    (out / "train_config.json").write_text(json.dumps({**config, "model": {"cell": "gru"}}))
    other = config_from_args(
        build_parser().parse_args([*again, "--architecture", "show-attend-tell"])
    )
    assert with_the_runs_options(other, {"architecture"}, lambda _: None).model == {}
    (out / "train_config.json").write_text('{"architecture": "show-and')  # a damaged file: said

    notes = []
    with_the_runs_options(config_from_args(build_parser().parse_args([str(caption_folder), "--out", str(out), "--resume"])),
                          set(), notes.append)  # fmt: skip
    assert notes == [f"{out / 'train_config.json'}: damaged, so options left out take their defaults and "
                     "changed ones go unnoted; give the run's options again"]  # fmt: skip


@pytest.mark.slow
def test_damaged_weights_in_last_say_the_run_cannot_be_resumed(caption_folder, tmp_path):
    """It said "the checkpoint is damaged, retrain or reinstall it", which says nothing of the run."""
    out, cache = tmp_path / "run", tmp_path / "cache"
    train(_config(caption_folder, out, cache, epochs=1))
    (out / "last" / "model.safetensors").write_bytes(b"cut off")
    with pytest.raises(InvalidParameter) as caught:
        train(_config(caption_folder, out, cache, epochs=2, resume=True))
    message = str(caught.value)
    assert message.startswith(str(out / "last")) and "retrain or reinstall" not in message
    assert message.endswith(f"so the run cannot be resumed: start it again in another --out (its best model "
                            f"so far is in {out / 'best'})")  # fmt: skip
    train(_config(caption_folder, tmp_path / "run2", cache, epochs=1))  # vocab.json gone:
    (tmp_path / "run2" / "last" / "vocab.json").unlink()  # it had been a traceback
    with pytest.raises(InvalidParameter, match=r"last/vocab.json: missing; so the run cannot be "
                                               r"resumed: start it again in another --out"):  # fmt: skip
        train(_config(caption_folder, tmp_path / "run2", cache, epochs=2, resume=True))
    (out / "last" / "config.json").write_text('{"architecture": 5')  # read earlier, by the checks
    with pytest.raises(
        InvalidParameter, match="so the run cannot be resumed: start it again"
    ) as caught:
        check_starting_point(_config(caption_folder, out, cache, epochs=2, resume=True))
    assert "retrain or reinstall" not in str(caught.value)


def test_an_epoch_loss_that_rounds_to_zero_from_below_is_logged_as_zero():
    import json as json_

    from capsight.training.train import epoch_loss

    assert json_.dumps(epoch_loss([-2e-5, 1e-5])) == "0.0"  # not "-0.0"
    # 4 decimals, as before
    assert epoch_loss([0.5, 0.25]) == 0.375 and epoch_loss([1 / 3]) == 0.3333


def test_a_wrong_data_path_leaves_no_run_folder(tmp_path):
    """train() made its run folder before it read the data: a typo left an empty folder."""
    from capsight.errors import CapsightError

    with pytest.raises(CapsightError, match="nope"):
        train(_config(tmp_path / "nope", tmp_path / "run", tmp_path / "cache"))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("field, value, message", [
    ("epochs", "1", "epochs must be a whole number, got '1'"),
    ("flip", "no", "flip must be True or False, got 'no'"),  # (it had been true)
    ("max_train_images", 2.5, "max_train_images must be a whole number, got 2.5"),
    ("lr", "0.01", "lr must be a number, got '0.01'"),
    ("model", [1], "model must be a dict, got [1]"),
    ("data", 7, "data must be text (or a path), got 7"),
])  # fmt: skip
def test_a_python_caller_gets_the_field_named_for_a_value_of_the_wrong_kind(
    tmp_path, field, value, message
):
    """From Python, epochs="1" had been a TypeError from a comparison deep in the checks."""
    values = {"data": str(tmp_path), "out": str(tmp_path / "run"), field: value}
    with pytest.raises(InvalidParameter, match=f"^{re.escape(message)}$") as caught:
        TrainConfig(**values)
    assert caught.value.parameter == field


def test_paths_and_numpy_numbers_are_taken(tmp_path):
    import numpy as np

    config = TrainConfig(
        data=tmp_path, out=tmp_path / "run", epochs=np.int64(2), lr=np.float32(1e-3)
    )
    assert config.data == str(tmp_path) and config.out == str(tmp_path / "run")
    assert type(config.epochs) is int and type(config.lr) is float  # plain, as JSON writes them
    assert config.epochs == 2 and config.lr == pytest.approx(1e-3)


def test_too_many_fine_tune_blocks_are_refused_before_anything_opens(tmp_path):
    """Found when the model was built, after MLflow had opened a run: an empty FAILED run."""
    with pytest.raises(InvalidParameter, match="^--fine-tune-blocks must be between 1 and 4 for "
                                               "efficientnet-lite0"):  # fmt: skip
        TrainConfig(data=str(tmp_path), out=str(tmp_path / "run"), fine_tune_blocks=9)
    assert not (tmp_path / "run").exists()


def test_a_resumed_run_keeps_its_relative_folders_as_they_were_where_it_started(tmp_path):
    """--images photos, given where the run started, is that folder: resumed from elsewhere
    with it left out, the run had looked for ./photos from there."""
    from capsight._cli.train_command import with_the_runs_options

    out = tmp_path / "run"
    out.mkdir()
    started = tmp_path / "project"
    recorded = {"images": "photos", "cache_dir": "feat", "init_from": "",
                "paths": {"data": str(started / "caps.json"), "images": str(started / "photos"),
                          "cache_dir": str(started / "feat")}}  # fmt: skip
    (out / "train_config.json").write_text(json.dumps(recorded))
    config = config_from_args(
        build_parser().parse_args(["caps.json", "--out", str(out), "--resume"])
    )
    notes = []
    kept = with_the_runs_options(config, {"data", "out", "resume"}, notes.append)
    assert (kept.images, kept.cache_dir) == (str(started / "photos"), str(started / "feat"))
    assert notes == [f"resuming with the run's own --images {started / 'photos'}, --cache-dir "
                     f"{started / 'feat'} (options left out keep the run's values)"]  # fmt: skip
    # A train_config.json written before it kept `paths`: the recorded path, from here.
    (out / "train_config.json").write_text(json.dumps({"images": "photos"}))
    kept = with_the_runs_options(config, {"data", "out", "resume"}, notes.append)
    assert kept.images == str(Path("photos").resolve())


@pytest.mark.slow
def test_a_run_started_from_a_relative_init_from_resumes_from_another_directory(
    caption_folder, tmp_path, monkeypatch
):
    """Its recorded --init-from runs/a, kept as the folder it named, had been compared with
    runs/a from here: "--init-from /proj/runs/a: the run ... resumes from its own last epoch"
    for a --resume that named no --init-from."""
    from capsight._cli.train_command import train_main

    common = ["--cache-dir", str(tmp_path / "cache"), "--architecture", "show-and-tell",
              "--batch-images", "4", "--min-count", "1", "--warmup-steps", "2", "--val-method",
              "greedy", "--quiet", "--no-track", "--model-option", "hidden_dim=32"]  # fmt: skip
    monkeypatch.chdir(tmp_path)
    assert train_main([str(caption_folder), "--out", "runs/a", "--epochs", "1", *common]) == 0
    first = [str(caption_folder), "--out", "runs/b", "--init-from", "runs/a", "--epochs", "1"]
    assert train_main([*first, *common]) == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    again = [
        str(caption_folder),
        "--out",
        str(tmp_path / "runs" / "b"),
        "--resume",
        "--epochs",
        "2",
    ]
    assert train_main([*again, "--quiet", "--no-track"]) == 0


def test_the_learning_rate_reaches_its_minimum_on_the_last_step():
    """Steps count from 0: the last of a short run's steps had stopped well above the minimum."""
    from types import SimpleNamespace

    from capsight.training.train import warmup_cosine_lr

    config = SimpleNamespace(warmup_steps=0, min_lr_ratio=0.1)
    rates = [warmup_cosine_lr(step, 4, config, 1.0) for step in range(4)]
    assert rates[0] == pytest.approx(1.0) and rates[-1] == pytest.approx(0.1)
    assert rates == sorted(rates, reverse=True)
    warm = SimpleNamespace(warmup_steps=2, min_lr_ratio=0.1)
    rates = [warmup_cosine_lr(step, 6, warm, 1.0) for step in range(6)]
    assert rates[:3] == pytest.approx([0.5, 1.0, 1.0]) and rates[-1] == pytest.approx(0.1)
    assert warmup_cosine_lr(1, 1, config, 1.0) == pytest.approx(0.1)  # past the end: the minimum


def test_a_resume_on_other_data_says_how_many_of_its_words_the_vocabulary_lacks(capsys):
    """A run resumed on other photos keeps its vocabulary; the new captions' words it lacks
    become <unk> and had done so without a word."""
    from capsight.captioning.vocabulary import Vocabulary
    from capsight.training.datasets import CaptionedImage
    from capsight.training.train import _note_changed_data, unknown_share

    vocab = Vocabulary.build([["a", "dog", "runs"]], min_count=1)
    new = [CaptionedImage("1.jpg", Path("1.jpg"), ("A dog sleeps.", "a cat sleeps"))]
    assert unknown_share(new, vocab) == pytest.approx(3 / 6)  # "sleeps" twice, "cat"
    before = {"data": "/old", "train_images": 40, "val_images": 5}
    now = {"data": "/new", "train_images": 30, "val_images": 4}
    _note_changed_data(before, now, lambda: unknown_share(new, vocab))
    err = capsys.readouterr().err
    assert "--resume on other data than the run's" in err and "leaves 50% of the new" in err
    _note_changed_data(before, now, lambda: None)  # (a tokenizer with no unknown words)
    assert "vocabulary" not in capsys.readouterr().err
