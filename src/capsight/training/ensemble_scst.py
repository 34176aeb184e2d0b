"""Self-critical training of an ensemble as one policy: captions are sampled from the members'
averaged word distribution, and every member learns from the reward of what they said together.

    python -m capsight.training.ensemble_scst ../shared/data/flickr8k \\
        runs/sat-ftce-eos2/best runs/sat-lite2-eos/best --out runs/pair-scst

Members trained one by one each learn to caption alone; decoded together (``CaptionEnsemble``)
their averaged distribution is a different policy, which their separate SCST runs never
sampled. Here the loss is ``scst_loss`` on the ensemble itself, so the gradient reaches each
member through the mean of the probabilities. Members may read different encoders (the grid of
each is read from its encoder's feature cache, written by ``capsight train`` or
``python -m capsight.training.features``); a member with fine-tuned encoder blocks keeps
training them at ``--fine-tune-lr-ratio`` x the learning rate, on the cached hidden maps. A
member with its own fine-tuned encoder (``training.end_to_end``) reads that encoder's cache
(``features --encoder-weights``); its encoder stays frozen and is copied with it.

After each epoch the ensemble decodes the validation photos (beam 3, Python tokenizer, as
``capsight train`` validates) and each member is saved under ``OUT/last/m<i>``; the epoch with
the best validation CIDEr under ``OUT/best/m<i>`` (the members as they came when no epoch beats
them), ready for ``capsight.training.export``. The defaults (one epoch, lr 2.5e-5) are what made
the shipped m0 (with its former Lite2 partner); a second epoch overfitted that pair
(docs/MODEL_CARD.md).
``--frozen I`` keeps member I as it is: it decodes with the others, but only they learn to
complement it. ``metrics.jsonl`` has one line per epoch. ``--resume`` continues from ``OUT/last``.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from capsight.captioning.base import DecodingOptions
from capsight.captioning.checkpoint import load_checkpoint, save_checkpoint
from capsight.captioning.ensemble import CaptionEnsemble
from capsight.captioning.trained import member_encoder_weights, member_encoders
from capsight.errors import InvalidParameter
from capsight.training import run_folder
from capsight.training.batches import CaptionBatches
from capsight.training.features import default_cache_dir, member_cache
from capsight.training.log_bar import progress_bar
from capsight.training.readers import read_corpus
from capsight.training.scst import scst_loss
from capsight.training.train import (
    END_WORD,
    TrainConfig,
    _param_groups,
    _with_end,
    caption_grid,
    check_finite,
    score,
)


@dataclass
class EnsembleScstConfig:
    data: str
    members: list[str]
    out: str
    epochs: int = 1
    lr: float = 2.5e-5
    fine_tune_lr_ratio: float = 0.2
    batch_images: int = 32
    samples: int = 5
    top_k: int = 5
    max_length: int = 16
    end_token: bool = True
    grad_clip: float = 2.0
    seed: int = 42
    # members (by position) that decode with the others but do not learn
    frozen: tuple[int, ...] = ()
    val_beam: int = 3
    max_train_images: int = 0
    max_val_images: int = 0
    cache_dir: str = field(default_factory=lambda: str(default_cache_dir()))
    resume: bool = False
    progress: bool = True


def _member_data(
    config: EnsembleScstConfig, corpus, models, sources, raw_configs, vocab, split: str, limit: int
):
    """Per member, its CaptionBatches on ``split`` (what it reads: grid or hidden maps; a member
    with its own fine-tuned encoder reads that encoder's cache)."""
    images = corpus.split(split)[: limit or None]
    data = []
    weights = member_encoder_weights([Path(s) for s in sources], raw_configs)
    for model, (name, resolution), own in zip(
        models, member_encoders(raw_configs), weights, strict=True
    ):
        cache = member_cache(config.cache_dir, corpus, config.data, name, resolution, own)
        data.append(CaptionBatches.from_corpus(images, cache, vocab, None, 22, model.feature_input))
    return data


def _member_grids(models, data: list[CaptionBatches], rows) -> torch.Tensor:
    """The grids the ensemble reads for ``rows``, side by side: each member's cached grid, or the
    grid a fine-tuned member's own top blocks make of the cached hidden maps."""
    features = [part.grid[rows].float() for part in data]
    return torch.cat(
        [CaptionEnsemble.member_grid(m, f, f) for m, f in zip(models, features, strict=True)], dim=1
    )


def _validate(
    ensemble: CaptionEnsemble, models, vocab, data: list[CaptionBatches], beam: int
) -> dict:
    ensemble.eval()
    with torch.inference_mode():
        grid = torch.cat(
            [
                _member_grids(models, data, slice(start, start + 64))
                for start in range(0, len(data[0]), 64)
            ]
        )
        # as train.validate
        options = DecodingOptions(method="beam", beam_width=beam, no_repeat_phrase=False)
        texts = caption_grid(ensemble, vocab, grid, options)
    return score(data[0].references, texts)


def _save(
    models, vocab, folder: Path, record: dict, earlier: list[dict], sources: list[str]
) -> None:
    """Each member's checkpoint; its config keeps what it was trained as alone (``best``, the
    source) beside this run's record."""
    for i, model in enumerate(models):
        extra = {**earlier[i], "ensemble_scst": record, "ensemble_scst_from": sources[i]}
        save_checkpoint(model, vocab, folder / f"m{i}", extra=extra)
        # its own encoder: frozen here, copied
        if own := getattr(model.config, "encoder_weights", ""):
            if (Path(sources[i]) / own).resolve() != (folder / f"m{i}" / own).resolve():
                shutil.copyfile(Path(sources[i]) / own, folder / f"m{i}" / own)


def train_ensemble(config: EnsembleScstConfig) -> dict:
    """Run the epochs; returns the best epoch's record."""
    run_folder.check_run_folder(config.out, config.resume)  # before anything there is touched
    out = run_folder.make_run_folder(config.out)
    with run_folder.run_folder_lock(out):  # (a second run into the folder: one line, at once)
        return _train_ensemble_in(config, out)


def _train_ensemble_in(config: EnsembleScstConfig, out: Path) -> dict:
    torch.manual_seed(config.seed)
    last = run_folder.settled_last(out)
    resuming = config.resume and (last / "trainer.json").is_file()
    sources = [last / f"m{i}" for i in range(len(config.members))] if resuming else config.members
    loaded = [load_checkpoint(folder) for folder in sources]
    models = [m for m, _, _ in loaded]
    vocab = loaded[0][1]
    if len({tuple(v.itos) for _, v, _ in loaded}) != 1:
        raise InvalidParameter("the members need one shared vocabulary")
    state = (
        run_folder.read_trainer_state(last, ("epoch", "best"))
        if resuming
        else {"epoch": 0, "best": None}
    )
    if resuming:
        # a run from before 2026-12-06: its log, up to the epoch last/ holds
        if "history" not in state:
            by_epoch = {r["epoch"]: r for r in run_folder.logged_epochs(out / "metrics.jsonl")}
            state["history"] = [by_epoch[e] for e in sorted(by_epoch) if e <= state["epoch"]]
        run_folder.rewrite_log(out, state["history"])
    corpus = read_corpus(config.data)
    raw = [r for _, _, r in loaded]
    earlier = [
        {k: v for k, v in r.get("training", {}).items() if not k.startswith("ensemble_scst")}
        for r in raw
    ]
    train_data = _member_data(
        config, corpus, models, sources, raw, vocab, "train", config.max_train_images
    )
    val_data = _member_data(
        config, corpus, models, sources, raw, vocab, "val", config.max_val_images
    )
    ensemble = CaptionEnsemble(models, [part.grid.shape[1] if part.grid.dim() == 3 else
                                        part.grid.shape[2] * part.grid.shape[3] for part in val_data])  # fmt: skip
    from capsight.training.cider import CiderD

    references = _with_end(train_data[0].references, config.end_token)
    cider = CiderD(references)
    groups_config = SimpleNamespace(
        weight_decay=TrainConfig.weight_decay, fine_tune_lr_ratio=config.fine_tune_lr_ratio
    )
    learners = [m for i, m in enumerate(models) if i not in config.frozen]
    for i in config.frozen:
        models[i].requires_grad_(False)
    groups = [g for m in learners for g in _param_groups(m, groups_config)]
    for group in groups:
        group["lr"] = config.lr * group.pop("lr_scale")
    optimizer = torch.optim.AdamW(groups, lr=config.lr)
    if resuming:
        run_folder.restore_resume_state(last, optimizer, "cpu",
                                        lambda message: print(f"note: {message}", file=sys.stderr))  # fmt: skip
    if state["epoch"] == 0 and not resuming:
        record = {"epoch": 0, **{f"val_{k}": round(v, 4) for k, v in
                                 _validate(ensemble, models, vocab, val_data, config.val_beam).items()}}  # fmt: skip
        print(json.dumps(record), flush=True)
        # a new run's log starts here (a run cut short before its first epoch left its epoch 0)
        run_folder.rewrite_log(out, [record])
        state["best"], state["history"] = record, [record]
        # until an epoch beats them
        _save(models, vocab, out / "best", record, earlier, config.members)
    steps = -(-len(train_data[0]) // config.batch_images)
    while state["epoch"] < config.epochs:
        epoch = state["epoch"]
        ensemble.train()
        for i in config.frozen:  # as it decodes at run time: no dropout
            models[i].eval()
        gen = torch.Generator().manual_seed(config.seed * 7919 + epoch)
        started, losses, rewards = time.time(), [], []
        batches = train_data[0].epoch(config.batch_images, 1, seed=config.seed * 1000 + 500 + epoch)
        bar = progress_bar(batches, total=steps, desc=f"ensemble scst epoch {epoch + 1}",
                   disable=not config.progress, mininterval=5.0)  # fmt: skip
        for _, _, rows in bar:
            grid = _member_grids(models, train_data, rows)
            refs = [references[r] for r in rows.tolist()]
            loss, reward = scst_loss(ensemble, grid, refs, vocab, cider, config.samples, config.max_length,
                                     gen, config.top_k, end_word=END_WORD if config.end_token else None)  # fmt: skip
            check_finite(value := float(loss.detach()), f"epoch {epoch + 1}, step {len(losses) + 1}",
                         config.out, "--lr", config.lr)  # fmt: skip
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(
                [p for g in groups for p in g["params"]], config.grad_clip
            )
            optimizer.step()
            losses.append(value)
            rewards.append(reward)
            bar.set_postfix_str(f"reward {np.mean(rewards[-50:]):.3f}", refresh=False)
        bar.close()
        state["epoch"] = epoch + 1
        metrics = _validate(ensemble, models, vocab, val_data, config.val_beam)
        record = {"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4),
                  "reward": round(float(np.mean(rewards)), 4), "train_seconds": round(time.time() - started, 1),
                  **{f"val_{k}": round(v, 4) for k, v in metrics.items()}}  # fmt: skip
        print(json.dumps(record), flush=True)
        if record["val_CIDEr"] > state["best"]["val_CIDEr"]:
            state["best"] = record
            _save(models, vocab, out / "best", record, earlier, config.members)
        state["history"] = [*state.get("history", []), record]
        save = partial(_save, models, vocab, record=record, earlier=earlier, sources=config.members)
        run_folder.write_last(out, save, optimizer, state)
        run_folder.log_epoch(out, record)  # once last/ holds the epoch
    return state["best"]


OPTION_HELP = {
    "epochs": "epochs of ensemble SCST",
    "lr": "learning rate (AdamW) of the decoders",
    "fine_tune_lr_ratio": "fine-tuned encoder blocks' learning rate, as a multiple of lr",
    "batch_images": "photos per step",
    "samples": "sampled captions per photo",
    "top_k": "sample among the k likeliest words of the averaged distribution; 0 = all",
    "max_length": "longest sampled caption",
    "grad_clip": "gradient norm clipping",
    "seed": "random seed for batch order and sampling",
    "val_beam": "beam width of the validation decoding",
    "max_train_images": "use at most this many training photos; 0 = all (smoke tests)",
    "max_val_images": "use at most this many validation photos; 0 = all",
    "cache_dir": "where the encoder features are cached",
}


if __name__ == "__main__":  # the tool itself lives in capsight._cli.tools.ensemble_scst
    from capsight._cli.tools.ensemble_scst import main

    raise SystemExit(main())
