"""Train a captioner on cached encoder features: cross-entropy, then optional SCST on CIDEr.

    python -m capsight.training.train ../shared/data/flickr8k --out runs/sat \\
        --architecture show-attend-tell --epochs 12 --flip --scst-epochs 6

    >>> result = train(TrainConfig(data="../shared/data/flickr8k", out="runs/sat"))
    >>> result.best_dir, result.best["CIDEr"]

The photos are encoded once into a feature cache (``capsight.training.features``); every epoch
then runs only the decoder. Each epoch ends with decoding the validation photos and scoring
them (BLEU-4, CIDEr); the best checkpoint by validation CIDEr is kept in ``<out>/best`` and
training stops after ``patience`` epochs without improvement. ``<out>/last`` holds everything
needed to resume (``--resume``): weights, config, vocabulary, optimizer state and the history.
Per-epoch metrics go to ``<out>/metrics.jsonl`` and to the experiment tracker when one is
given. With a GPU the loop uses bf16 autocast, and under ``torchrun`` DistributedDataParallel.
"""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import functools
import json
import math
import numbers
import os
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from capsight.captioning.base import DecodingOptions
from capsight.captioning.checkpoint import (
    VOCAB,
    checkpoint_folder,
    load_checkpoint,
    read_config,
    save_checkpoint,
)
from capsight.captioning.decoding import decode
from capsight.captioning.endings import Endings
from capsight.captioning.model import (
    MAX_RESOLUTION,
    MIN_RESOLUTION,
    CaptionModel,
    build_model,
    check_model_options,
    config_from_dict,
)
from capsight.captioning.options import MAX_BEAM_WIDTH
from capsight.captioning.prefix_gpt2 import PrefixGPT2, hugging_face_model_type, is_gpt2_folder
from capsight.captioning.show_attend_tell import attention_penalty
from capsight.captioning.vocabulary import PAD_ID, SPECIALS, Vocabulary, tokenize
from capsight.errors import CapsightError, DatasetError, InvalidParameter, ModelNotFound
from capsight.training.batches import CaptionBatches
from capsight.training.datasets import (
    DRAWN_SPLIT,
    DRAWN_SPLIT_NOTE,
    CaptionCorpus,
    counted,
    draw_splits,
    drawn_split_note,
    drew_split,
    has_file,
    val_from_train,
)
from capsight.training.distributed import agree_with_rank0, join_process_group, rank_device
from capsight.training.features import (
    FeatureCache,
    build_encoder,
    default_cache_dir,
    refuse_own_encoder,
)
from capsight.training.log_bar import progress_bar
from capsight.training.run_folder import (
    check_run_folder,
    holds_run,
    log_epoch,
    make_run_folder,
    read_trainer_state,
    restore_resume_state,
    rewrite_log,
    run_folder_lock,
    settled_last,
    write_last,
)
from capsight.training.tracking import code_version
from capsight.vision.efficientnet_lite import VARIANTS


def check_regularisers(label_smoothing: float, attention_lambda: float) -> None:
    """Each flag named in its own line (one message named both, and neither value)."""
    if not 0 <= label_smoothing < 1:  # (NaN too)
        raise InvalidParameter(f"--label-smoothing must be in [0, 1), got {label_smoothing}")
    if attention_lambda < 0:
        raise InvalidParameter(f"--attention-lambda must be >= 0, got {attention_lambda}")


@dataclass(frozen=True)
class TrainConfig:
    data: str
    out: str
    images: str = ""  # photo folder, when the caption file does not say where its photos are
    architecture: str = "show-attend-tell"
    model: dict = field(default_factory=dict)  # architecture options, e.g. {"hidden_dim": 512}
    encoder: str = "efficientnet-lite0"
    resolution: int = 0  # 0 = the encoder's native resolution
    flip: bool = False  # mirrored-photo feature augmentation
    cache_dir: str = field(default_factory=lambda: str(default_cache_dir()))
    epochs: int = 12
    batch_images: int = 32
    captions_per_image: int = 5
    lr: float = 5e-4
    min_lr_ratio: float = 0.1  # cosine decay from lr to lr * ratio over `epochs`
    warmup_steps: int = 200
    weight_decay: float = 1e-4
    grad_clip: float = 2.0
    label_smoothing: float = 0.1
    attention_lambda: float = 1.0  # doubly stochastic regulariser (attention models)
    min_count: int = 5
    max_caption_length: int = 22
    patience: int = 3
    seed: int = 42
    val_method: str = "beam"  # decoding used for validation CIDEr: greedy | beam
    val_beam: int = 3
    max_train_images: int = 0  # 0 = all (small values for smoke tests)
    max_val_images: int = 0
    scst_epochs: int = 0
    scst_lr: float = 2e-5
    scst_samples: int = 5
    scst_max_length: int = 16
    scst_top_k: int = 5  # sample among the k likeliest words (0 = the full distribution)
    scst_end_token: bool = False  # score captions with an end word: dangling endings earn nothing
    init_from: str = ""  # start from this checkpoint's weights and vocabulary (e.g. SCST only)
    # > 0: train the encoder's last N blocks (and its head) with the decoder, on cached hidden
    # maps (show-attend-tell; ``captioning.encoder_top``), at ``fine_tune_lr_ratio`` x the lr.
    fine_tune_blocks: int = 0
    fine_tune_lr_ratio: float = 0.5
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        self._check_types()
        for names, least in ((("epochs", "scst_epochs", "warmup_steps", "scst_top_k", "max_train_images",
                               "max_val_images"), 0),
                             (("batch_images", "captions_per_image", "min_count", "max_caption_length", "val_beam",
                               "scst_max_length"), 1), (("scst_samples",), 2)):  # fmt: skip
            for name in names:
                if getattr(self, name) < least:
                    raise InvalidParameter(
                        f"--{name.replace('_', '-')} must be >= {least}, got {getattr(self, name)}"
                    )
        if self.batch_images > 4096 or self.captions_per_image > 100:  # beyond: out of memory
            raise InvalidParameter(
                f"--batch-images must be at most 4096 and --captions-per-image at most 100, got "
                f"{self.batch_images} and {self.captions_per_image}"
            )
        if self.val_method not in ("greedy", "beam"):
            raise InvalidParameter(f"--val-method must be greedy or beam, got {self.val_method!r}")
        for name in ("fine_tune_blocks", "fine_tune_lr_ratio"):
            if getattr(self, name) < 0:
                raise InvalidParameter(
                    f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}"
                )
        if self.fine_tune_blocks and self.architecture != "show-attend-tell":
            raise InvalidParameter("--fine-tune-blocks is built for show-attend-tell only")
        if self.fine_tune_blocks and self.encoder in VARIANTS:  # (before MLflow opens a run)
            from capsight.captioning.encoder_top import check_fine_tune_blocks

            check_fine_tune_blocks(self.encoder, self.fine_tune_blocks)
        for name in ("lr", "scst_lr"):
            if not 0 < getattr(self, name) < math.inf:
                raise InvalidParameter(f"--{name.replace('_', '-')} must be a positive number")
        if not 0 <= self.min_lr_ratio <= 1:
            raise InvalidParameter(f"--min-lr-ratio must be in [0, 1], got {self.min_lr_ratio}")
        for name in ("weight_decay", "grad_clip"):
            if getattr(self, name) < 0:
                raise InvalidParameter(
                    f"--{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}"
                )
        check_regularisers(self.label_smoothing, self.attention_lambda)
        for name in ("weight_decay", "grad_clip", "attention_lambda", "fine_tune_lr_ratio"):
            if not math.isfinite(getattr(self, name)):  # NaN passes every comparison above
                raise InvalidParameter(f"--{name.replace('_', '-')} must be a finite number")
        if self.patience < 1:  # 0 would stop after the first epoch, whatever --epochs says
            raise InvalidParameter(
                f"--patience must be >= 1 (epochs without a gain), got {self.patience}"
            )
        if self.val_beam > MAX_BEAM_WIDTH:  # found here, not when the first epoch is validated
            raise InvalidParameter(
                f"--val-beam must be at most {MAX_BEAM_WIDTH}, got {self.val_beam}"
            )
        if not 0 <= self.seed < 2**31:  # numpy refuses seeds outside 32 bits (seed + rank)
            raise InvalidParameter(f"--seed must be between 0 and {2**31 - 1}, got {self.seed}")
        if self.resolution and not MIN_RESOLUTION <= self.resolution <= MAX_RESOLUTION:
            raise InvalidParameter(
                f"--resolution must be 0 (the encoder's own size) or {MIN_RESOLUTION}-{MAX_RESOLUTION} "
                f"pixels, got {self.resolution}"
            )
        check_model_options(self.architecture, self.model)
        if self.architecture == "prefix-gpt2":
            self._check_positions()
        if self.out:
            check_run_folder(self.out, self.resume)

    def _check_types(self) -> None:
        """Each field of the kind its default is, else InvalidParameter naming the field: from
        Python, epochs="1" had been a TypeError deep in the checks, and flip="no" was true. A
        path (os.PathLike) for a text field is taken as its text."""
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            kind = f.type if f.default is dataclasses.MISSING else type(f.default).__name__
            if f.default_factory is not dataclasses.MISSING:
                kind = type(f.default_factory()).__name__
            if kind == "str" and isinstance(value, os.PathLike):
                object.__setattr__(self, f.name, os.fspath(value))
                continue
            wanted, ok = {
                "bool": ("True or False", isinstance(value, bool)),
                "int": (
                    "a whole number",
                    isinstance(value, numbers.Integral) and not isinstance(value, bool),
                ),
                "float": (
                    "a number",
                    isinstance(value, numbers.Real) and not isinstance(value, bool),
                ),
                "str": ("text (or a path)", isinstance(value, str)),
                "dict": ("a dict", isinstance(value, dict)),
            }.get(kind, ("", True))
            if not ok:
                raise InvalidParameter(f"{f.name} must be {wanted}, got {value!r:.60}", f.name)
            if kind in ("int", "float") and type(value) is not getattr(builtins, kind):
                # numpy's numbers as plain ones: np.int64 epochs had failed later in training,
                # and been written to train_config.json as text
                object.__setattr__(self, f.name, getattr(builtins, kind)(value))

    def _check_positions(self) -> None:
        """A prefix-gpt2's ``n_positions`` must hold the prefix and the longest caption."""
        from capsight.captioning.prefix_gpt2 import PrefixGPT2Config

        c = PrefixGPT2Config(vocab_size=8, **self.model)
        native = VARIANTS[self.encoder].resolution if self.encoder in VARIANTS else 224
        side = -(-(self.resolution or native) // 32)  # the encoder's grid: one cell per 32 px
        prefix = c.prefix_length if c.prefix_from == "pooled" else side * side
        needed = prefix + self.max_caption_length + 2  # <bos> ... <eos>
        if c.n_positions < needed:
            raise InvalidParameter(
                f"--model-option n_positions={c.n_positions}: the prefix ({prefix} positions) and "
                f"captions of up to {self.max_caption_length} words need at least {needed}"
            )


@dataclass
class TrainResult:
    out: Path
    best_dir: Path
    best: dict
    history: list[dict]


# -- set-up -----------------------------------------------------------------------------------
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@functools.cache  # once a run: it asks git twice, and the code that runs is the run's first
def _code_version() -> str:
    """The short git commit of the capsight checkout training runs from, ``+dirty`` when it had
    local changes (a copied best/ keeps what MLflow's tags say), or "unknown"."""
    version = code_version()
    dirty = "+dirty" if version.get("capsight.git_dirty") == "true" else ""
    return version.get("mlflow.source.git.commit", "unknown")[:7] + dirty


# -- losses and evaluation --------------------------------------------------------------------
def caption_loss(
    model: CaptionModel, grid: torch.Tensor, captions: torch.Tensor, config: TrainConfig
) -> torch.Tensor:
    """Teacher-forced cross-entropy (+ attention regulariser) for grid (B, P, D), captions (B*k, T)."""
    logits, extras = model(grid, captions)  # (B*k, T-1, V)
    targets = captions[:, 1:]  # (B*k, T-1)
    loss = F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(),
        targets.reshape(-1),
        ignore_index=PAD_ID,
        label_smoothing=config.label_smoothing,
    )
    if "alphas" in extras and config.attention_lambda > 0:
        loss = loss + config.attention_lambda * attention_penalty(
            extras["alphas"], targets != PAD_ID
        )
    return loss


def caption_grid(
    model: CaptionModel, vocab: Vocabulary, grid: torch.Tensor, options: DecodingOptions,
    batch_size: int = 100,
) -> list[str]:  # fmt: skip
    """Decode grid (N, P, D) in batches to caption strings."""
    device = next(model.parameters()).device
    texts = []
    for start in range(0, grid.shape[0], batch_size):
        chunk = grid[start : start + batch_size].to(device).float()
        texts += [" ".join(vocab.decode(d.tokens)) for d in decode(model, chunk, options)]
    return texts


def score(references: list[list[str]], candidates: list[str], full: bool = False) -> dict:
    """BLEU-4 and CIDEr (all metrics with ``full``) via pycocoevalcap, Python tokenizer."""
    from capsight.training.evaluation import score_captions

    refs = {str(i): r for i, r in enumerate(references)}
    cands = {str(i): c for i, c in enumerate(candidates)}
    metrics = None if full else ["BLEU-1", "BLEU-4", "CIDEr"]
    scores = score_captions(refs, cands, use_java=None if full else False, metrics=metrics)
    return {k: v for k, v in scores.items() if isinstance(v, float) and k != "images"}


def validate(
    model: CaptionModel, vocab: Vocabulary, data: CaptionBatches, config: TrainConfig
) -> dict:
    method = config.val_method
    # Without the phrase rule: a resumed or --init-from model knows its function words and a
    # fresh one does not, and one run's epochs must be scored alike (the model card's figures).
    options = DecodingOptions(
        method=method, beam_width=config.val_beam, max_length=20, no_repeat_phrase=False
    )
    texts = caption_grid(model, vocab, data.grid, options)
    return score(data.references, texts)


# -- the loop ---------------------------------------------------------------------------------
def _param_groups(model: CaptionModel, config: TrainConfig) -> list[dict]:
    """AdamW groups: weight decay on matrices only; fine-tuned encoder blocks at a scaled lr.
    Frozen parameters (the encoder copy's other blocks, its BatchNorm) are left out."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        decays = not (p.ndim < 2 or "embed" in name or "wpe" in name or "wte" in name)
        groups.setdefault((name.startswith("encoder_top."), decays), []).append(p)
    return [
        {"params": params, "weight_decay": config.weight_decay if decays else 0.0,
         "lr_scale": config.fine_tune_lr_ratio if encoder else 1.0}
        for (encoder, decays), params in sorted(groups.items())
    ]  # fmt: skip


def _with_fine_tuning(model: CaptionModel, blocks: int) -> CaptionModel:
    """``model`` with its last ``blocks`` encoder blocks made trainable (a copy of the ImageNet
    encoder's top stage where it had none); unchanged when ``blocks`` is 0 or already so."""
    if not blocks or getattr(model.config, "fine_tune_blocks", 0) == blocks:
        return model
    tuned = build_model(dataclasses.replace(model.config, fine_tune_blocks=blocks))
    missing, unexpected = tuned.load_state_dict(model.state_dict(), strict=False)
    if unexpected or any(not k.startswith("encoder_top.") for k in missing):
        raise InvalidParameter(
            f"cannot add fine-tuned encoder blocks to this model: {missing[:3]} {unexpected[:3]}"
        )
    tuned.endings = model.endings
    return tuned


def warmup_cosine_lr(step: int, total: int, config, base: float) -> float:
    """Linear warm-up over ``config.warmup_steps``, then cosine decay to ``base * config.min_lr_ratio``
    at the last of ``total`` steps (0-based ``step``; on 4 steps the last had run at 0.23 x
    ``base`` rather than the 0.1 asked for)."""
    if step < config.warmup_steps:
        return base * (step + 1) / config.warmup_steps
    progress = min(1.0, (step - config.warmup_steps) / max(1, total - 1 - config.warmup_steps))
    return base * (
        config.min_lr_ratio + (1 - config.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    )


def _reopened(state: dict, config, before: dict | None = None) -> dict:
    """A finished run asked to resume. Its last stage goes on only when given more epochs than
    it was asked for before, or, if it ran them all rather than stopping early, more than it
    ran; otherwise it stays finished (a recipe reruns the same command with --resume), except
    that a cross-entropy stage goes on to SCST when SCST epochs are newly asked for. ``before``:
    the run's last ``train_config.json``, for a run saved before trainer.json kept the count."""
    finished = state.get("finished_stage", "xe")
    key = "epochs" if finished == "xe" else "scst_epochs"
    asked = getattr(config, key)
    stopped_early = state.get("patience_left", 1) <= 0
    asked_before = state.get("stage_epochs", (before or {}).get(key, state["epoch"]))
    if asked > asked_before or (not stopped_early and asked > state["epoch"]):
        return {**state, "stage": finished, "patience_left": config.patience}
    if finished == "xe" and config.scst_epochs > 0:
        return {**state, "stage": "xe", "stage_closed": True}  # straight on to SCST
    return state


def read_json_or_empty(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _book_epoch(record, state, model, vocab, optimizer, out: Path, config, tracker, stage) -> bool:
    """Rank 0 after each epoch: track, keep the best checkpoint, save ``last``; True = stop."""
    stopped = False
    improved = state["best"] is None or record["val_CIDEr"] > state["best"]["val_CIDEr"]
    if improved:
        state["best"] = record
        state["patience_left"] = config.patience
        save_checkpoint(
            model, vocab, out / "best", extra={"best": record, "code_version": _code_version()}
        )
    else:
        state["patience_left"] = state.get("patience_left", config.patience) - 1
    if state["patience_left"] <= 0:
        note(f"early stop: no validation CIDEr gain for {counted(config.patience, 'epoch')}")
        stopped = True
    _save_last(out, model, vocab, optimizer, state, extra={"stage": stage})
    # Logged once last/ holds the epoch: a run stopped before that redoes it, logged once then.
    log_epoch(out, record)
    if tracker is not None:
        # SCST's loss (a policy gradient, near 0) apart from cross-entropy's (6 falling to 2):
        # on one MLflow chart the one flattened the other.
        metrics = {
            ("scst_loss" if k == "loss" and stage == "scst" else k): v
            for k, v in record.items()
            if isinstance(v, float)
        }
        if improved:  # the runs table sorts by what best/ holds, not by the last epoch's
            metrics |= {f"best_{k}": v for k, v in metrics.items() if k.startswith("val_")}
            metrics["best_epoch"] = float(len(state["history"]))
        tracker.log_metrics(metrics, step=len(state["history"]))
    return stopped


def _save_last(
    out: Path, model: CaptionModel, vocab: Vocabulary, optimizer, state: dict, extra: dict
) -> None:
    write_last(
        out, lambda folder: save_checkpoint(model, vocab, folder, extra=extra), optimizer, state
    )


# Options that name a file or folder: train_config.json's ``paths`` holds each as an absolute
# path, which a run resumed from another directory compares and keeps.
PATH_OPTIONS = ("data", "images", "cache_dir", "init_from")


def run_path(params: dict, key: str) -> str | None:
    """A path option as the folder it names (``./x`` is ``x``): as ``paths`` recorded it where
    the run started (a relative path means the folder it named from there, not from here: a run
    resumed from another directory on the same data had been told it had other data), else
    resolved here."""
    recorded = params.get("paths")
    if isinstance(recorded, dict) and recorded.get(key):
        return str(recorded[key])
    return str(Path(params[key]).resolve()) if params.get(key) else None


def unknown_share(images: list, vocab: Vocabulary) -> float:
    """The share of the words of ``images``' captions that ``vocab`` does not hold."""
    words = [word for im in images for c in im.captions for word in tokenize(c)]
    return sum(word not in vocab.stoi for word in words) / len(words) if words else 0.0


def _note_changed_data(before: dict, now: dict, unknown: Callable[[], float | None]) -> None:
    """A resumed run on other data (another file, or photos added or gone) goes on, but its
    best/ was chosen on the old validation photos, and it keeps its vocabulary, whose unknown
    words in the new captions (``unknown()``, a share; None for a tokenizer that has none)
    become <unk>: say so."""
    if not before:
        return

    def where(params: dict) -> tuple:
        return tuple(run_path(params, k) for k in ("data", "images"))

    was = (*where(before), before.get("train_images"), before.get("val_images"))
    if was == (*where(now), now.get("train_images"), now.get("val_images")):
        return
    if was[:2] == where(now) and was[3] == now.get("val_images"):  # --max-train-images, say
        note(f"--resume on other training photos than the run's ({was[2]} until now; "
             f"{now.get('train_images')} from its next epoch on), validated on the same "
             f"{was[3]} photos")  # fmt: skip
        return
    share = unknown()
    words = ("" if share is None else ", and it keeps its vocabulary, which leaves "
             f"{share:.0%} of the new training captions' words unknown (<unk>, never written); "
             "a new run (no --resume) learns their words")  # fmt: skip
    note(f"--resume on other data than the run's ({was[0]}: {was[2]} train, {was[3]} val photos; "
         f"now {now.get('data')}: {now.get('train_images')} train, {now.get('val_images')} val): "
         f"its best/ was chosen on the old validation photos{words}")  # fmt: skip


def _note_changed_schedule(before: dict, config: TrainConfig, state: dict) -> None:
    """Cross-entropy's learning rate decays over the epochs asked for (SCST's is constant): a
    resume asking for another number reshapes the rest of the schedule, a jump in the rate."""
    was = before.get("epochs")
    more_xe = (
        state["stage"] == "xe" and not state.get("stage_closed") and state["epoch"] < config.epochs
    )
    if more_xe and isinstance(was, int) and was != config.epochs:
        note(f"--epochs {config.epochs} where the run had {was} until now: the rest of its "
             f"learning-rate schedule is laid out over {config.epochs} epochs, so the rate jumps to "
             f"where a run of {config.epochs} epochs would have it")  # fmt: skip


# Options a resumed run takes from the command that resumes it, from its next epoch on; the
# rest are the run's own (its vocabulary was built with its --min-count), checked elsewhere
# (the architecture and features are refused, other data and --epochs get their own notes),
# or say where things are.
CHANGEABLE_ON_RESUME = (
    "batch_images",
    "captions_per_image",
    "lr",
    "min_lr_ratio",
    "warmup_steps",
    "weight_decay",
    "grad_clip",
    "label_smoothing",
    "attention_lambda",
    "max_caption_length",
    "patience",
    "seed",
    "val_method",
    "val_beam",
    "max_val_images",
    "flip",
    "scst_lr",
    "scst_samples",
    "scst_max_length",
    "scst_top_k",
    "scst_end_token",
    "fine_tune_lr_ratio",
)


# Options a resume may change that have notes of their own, recorded in changed_on_resume too.
RECORDED_ON_RESUME = ("epochs", "scst_epochs", "max_train_images", "data", "images")


def option_text(name: str, value) -> str:
    """ "--lr 0.01", "--flip", "no --flip": an option as the command line gives it."""
    flag = f"--{name.replace('_', '-')}"
    if isinstance(value, bool):
        return flag if value else f"no {flag}"
    return f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}"


def _note_changed_options(before: dict, run_params: dict, state: dict) -> dict:
    """``run_params`` for train_config.json when a run resumes with other options: changed ones
    are said to apply from now on, and the values they replace kept (``changed_on_resume``);
    --min-count cannot change the run's vocabulary, so it is said to do nothing and not recorded."""
    if not before:
        return run_params
    params = dict(run_params)
    if "min_count" in before and before["min_count"] != params["min_count"]:
        note(f"{option_text('min_count', params['min_count'])} does nothing on a resumed run: its "
             f"vocabulary was built with {option_text('min_count', before['min_count'])}")  # fmt: skip
        params["min_count"] = before["min_count"]
    changed = [k for k in CHANGEABLE_ON_RESUME if k in before and before[k] != params.get(k)]
    # Said by notes of their own (data, schedule), and kept here too: train_config.json had
    # shown --max-train-images 100 for a run whose first epochs trained on 300 photos.
    other = [k for k in RECORDED_ON_RESUME if k in before and (
        run_path(before, k) != run_path(params, k) if k in ("data", "images")
        else before[k] != params.get(k))]  # fmt: skip
    if other and not changed:
        start = f"{state['stage']} epoch {state['epoch'] + 1}"
        record = {"from": start, **{k: before[k] for k in other}}
        params["changed_on_resume"] = [*before.get("changed_on_resume", []), record]
    elif changed:
        now = ", ".join(f"{option_text(k, params[k])} (was {option_text(k, before[k]).split(' ', 1)[-1]})"
                        if not isinstance(params[k], bool) else option_text(k, params[k]) for k in changed)  # fmt: skip
        start = f"{state['stage']} epoch {state['epoch'] + 1}"  # (as metrics.jsonl counts)
        note(f"resuming with {now}: {start} on uses {'them' if len(changed) > 1 else 'it'}; "
             "train_config.json keeps the earlier values under changed_on_resume")  # fmt: skip
        record = {"from": start, **{k: before[k] for k in changed + other}}
        params["changed_on_resume"] = [*before.get("changed_on_resume", []), record]
    elif before.get("changed_on_resume"):
        params["changed_on_resume"] = before["changed_on_resume"]
    return params


def note(message: str) -> None:
    print(f"capsight train: note: {message}", file=sys.stderr, flush=True)


def with_photo_files(corpus: CaptionCorpus, data: str) -> CaptionCorpus:
    """``corpus`` without the photos that have no file (a note says how many), or a one-line
    error when none has one (the photo folder is elsewhere)."""
    missing = [k for k, image in corpus.images.items() if not has_file(image.path)]
    if not missing:
        return corpus
    first = corpus.images[missing[0]].path
    if len(missing) == len(corpus.images):
        parent = first.parent
        where = parent if parent.is_dir() else (f"{parent}, which is a file, not a folder" if parent.exists()
                                                else f"{parent}, which does not exist")  # fmt: skip
        raise DatasetError(f"{data}: none of its {len(missing)} photos is in {where}"
                           f"{_case_twin(first)} (give the photo folder with --images)")  # fmt: skip
    gone = set(missing)
    one = len(missing) == 1
    splits = {name: [k for k in keys if k not in gone] for name, keys in corpus.splits.items()}
    # The drawn split's note counts the photos that are left (it had counted the missing ones).
    notes = [drawn_split_note(sum(map(len, splits.values())), len(splits.get("val", ())),
                              len(splits.get("test", ()))) if n.startswith(DRAWN_SPLIT_NOTE)
             else n for n in corpus.notes]  # fmt: skip
    return CaptionCorpus(
        corpus.name,
        {k: v for k, v in corpus.images.items() if k not in gone},
        splits,
        [
            *notes,
            f"{counted(len(missing), 'photo')} {'has' if one else 'have'} no file and "
            f"{'is' if one else 'are'} left out (first: {first}{_case_twin(first)})",
        ],
    )


def _case_twin(path: Path) -> str:
    """ "; X.JPG is there: names are case-sensitive" where the folder holds ``path`` under
    another case (captions.json says X.jpg), else ""."""
    try:
        twin = next((p for p in path.parent.iterdir() if p.name.lower() == path.name.lower()
                     and p.name != path.name), None)  # fmt: skip
    except OSError:
        return ""
    if twin is None:  # (a folder of that very name is no case twin: it was said to be one)
        return "; it is a folder" if _is_dir(path) else ""
    return f"; {twin.name} is there: file names are case-sensitive"


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # (a name too long for the file system)
        return False


def training_corpus(config: TrainConfig, say=note) -> CaptionCorpus:
    """The corpus to train on, in any format ``read_corpus`` reads, checked before any work:
    photos whose file is missing are left out (and counted), a corpus without splits is split by
    a hash of each photo's name (``draw_splits``), one without a train split (a COCO ``captions_val`` file) trains on its photos
    outside ``test`` (refused when another split's name says test: ``testing``), one without a
    val split gets one from its train photos, and an empty or overlapping train/val split is
    refused. A ``test`` split is never trained on."""
    from capsight.training.readers import read_corpus

    corpus = read_corpus(config.data, config.images or None)
    had_val = "val" in corpus.splits
    if not corpus.splits:
        corpus = draw_splits(corpus)
    elif "train" not in corpus.splits:
        if held := sorted(name for name in set(corpus.splits) - {"test"} if "test" in name.lower()):
            # ("testing", "test2014"): a test split by another name would be trained on
            raise DatasetError(f"{config.data}: {'splits' if len(held) > 1 else 'split'} "
                               f"{', '.join(map(repr, held))} look{'' if len(held) > 1 else 's'} like a test "
                               "split, but training holds out only the one named 'test' and would train on "
                               "it; rename it 'test'")  # fmt: skip
        test = set(corpus.splits.get("test", ()))
        pool = [k for k in corpus.images if k not in test]
        if not pool:
            raise DatasetError(f"{config.data}: only a test split; training on it would leave "
                               "nothing to score the model on")  # fmt: skip
        say(f"{Path(config.data).name} has no train split (only {', '.join(corpus.splits)}): "
            f"its {len(pool)} photos outside a test split are trained on")  # fmt: skip
        others = {"test": corpus.splits["test"]} if test else {}
        corpus = val_from_train(
            CaptionCorpus(corpus.name, corpus.images, {"train": pool, **others}, corpus.notes)
        )
    elif "val" not in corpus.splits:
        corpus = val_from_train(corpus)
    unused = {
        name: len(keys)
        for name, keys in corpus.splits.items()
        if name not in ("train", "val", "test")
    }
    if unused and "train" in corpus.splits:
        listed = ", ".join(
            f"{name!r} ({counted(n, 'photo')})" for name, n in sorted(unused.items())
        )
        val_like = sorted(
            n for n in unused if n.lower() in ("validation", "valid", "dev", "development")
        )
        rename = (
            f"; rename {val_like[0]!r} to 'val' to validate on it"
            if val_like and not had_val
            else ""
        )
        say(f"split{'s' if len(unused) > 1 else ''} {listed} not used: training reads train, "
            f"val and test{rename}")  # fmt: skip
    listed = corpus
    corpus = with_photo_files(corpus, config.data)
    missing = set(listed.images) - set(corpus.images)
    for message in corpus.notes:
        say(message)
    for name in ("train", "val"):
        if not corpus.split(name):  # (split() names the splits there are when one is absent)
            gone = [k for k in listed.splits.get(name) or () if k in missing]
            if gone:
                raise DatasetError(f"{config.data}: none of the {len(gone)} photos of the {name!r} split "
                                   f"has a file (first: {listed.images[gone[0]].path})")  # fmt: skip
            if len(corpus.images) < 3:
                raise DatasetError(f"{config.data}: {len(corpus.images)} photo(s) with captions; training "
                                   "needs at least 3, to hold some out for validation")  # fmt: skip
            raise DatasetError(f"{config.data}: the {name!r} split has no photos with captions")
    test = set(corpus.splits.get("test") or ())
    for name, other, why in (
        ("val", set(corpus.splits["val"]), "validation would score photos the model trained on"),
        ("test", test, "the test scores would count photos the model trained on"),
    ):
        both = set(corpus.splits["train"]) & other
        if both:
            raise DatasetError(
                f"{config.data}: {len(both)} photos are in both the train and the {name} split "
                f"(first: {sorted(both)[0]}); {why}"
            )
    if not config.init_from and not config.resume:  # said now, not after the features are cached
        training_vocabulary(
            corpus.split("train")[: config.max_train_images or None], config.min_count, say
        )
    return corpus


def epoch_loss(losses: list[float]) -> float:
    """An epoch's mean loss as metrics.jsonl logs it: 4 decimals, and 0.0 where an SCST loss
    rounds to zero from below (it had been logged as -0.0)."""
    return round(float(np.mean(losses)), 4) + 0.0


def training_vocabulary(train_images: list, min_count: int, say=None) -> Vocabulary:
    """The vocabulary of the training captions, refused when ``--min-count`` leaves no word, and
    ``say`` told when it leaves over ``UNKNOWN_NOTE_SHARE`` of their words unknown."""
    tokens = [tokenize(c) for im in train_images for c in im.captions]
    vocab = Vocabulary.build(tokens, min_count)
    if len(vocab) == len(SPECIALS):  # every word would be <unk>: nothing could be learned
        raise DatasetError(f"--min-count {min_count}: no word of the training captions occurs "
                           "that often, so the vocabulary would be empty; pass a smaller --min-count")  # fmt: skip
    if say is None:  # (counted only where it is said: the run builds the vocabulary again)
        return vocab
    total = sum(len(words) for words in tokens)
    unknown = total - sum(word in vocab.stoi for words in tokens for word in words)
    if total and unknown > UNKNOWN_NOTE_SHARE * total:
        # (--min-count 150 on 36 photos kept the one word "a": the model trained, and wrote "a")
        kept = len(vocab) - len(SPECIALS)
        say(f"--min-count {min_count} keeps {kept:,} word{'s' * (kept != 1)}, and leaves {unknown / total:.0%} "
            "of the training captions' words unknown (<unk>, never written): its captions can say "
            "little; pass a smaller --min-count")  # fmt: skip
    return vocab


UNKNOWN_NOTE_SHARE = 0.2  # of Flickr8k's training words, --min-count 5 leaves 2.5% unknown, 150 20%


def _prepare(config: TrainConfig, rank: int, world: int, corpus: CaptionCorpus | None):
    if corpus is None:
        corpus = training_corpus(config, note if rank == 0 else (lambda message: None))
    train_images = corpus.split("train")
    val_images = corpus.split("val")
    if config.max_train_images:
        train_images = train_images[: config.max_train_images]
    if config.max_val_images:
        val_images = val_images[: config.max_val_images]
    encoder = build_encoder(config.encoder, config.resolution or None)
    if config.max_train_images or config.max_val_images:
        corpus = _used_part(corpus, train_images + val_images, config, encoder)
    # One writer per cache: rank 0 extracts (or finds) the features, then the others open them.
    if world > 1 and rank != 0:
        torch.distributed.barrier()
    cache = FeatureCache.build(
        corpus, encoder, config.cache_dir, progress=config.progress and rank == 0
    )
    flip_cache = None
    if config.flip:
        flip_cache = FeatureCache.build(
            corpus, encoder, config.cache_dir, flip=True, progress=config.progress and rank == 0
        )
    if world > 1 and rank == 0:
        torch.distributed.barrier()
    gone = [im.key for im in train_images + val_images if im.key in cache.unreadable]
    if gone:
        train_images = [image for image in train_images if image.key not in cache.unreadable]
        val_images = [image for image in val_images if image.key not in cache.unreadable]
        if rank == 0:
            note(f"unreadable photos left out: {len(gone)} (first: {cache.unreadable[gone[0]]})")
        for name, images in (("train", train_images), ("val", val_images)):
            if not images:
                raise DatasetError(f"{config.data}: none of the {name!r} photos could be read")
    return corpus, train_images, val_images, cache, flip_cache, encoder.resolution


def _used_part(corpus: CaptionCorpus, used: list, config: TrainConfig, encoder) -> CaptionCorpus:
    """The corpus whose features a smoke test (--max-train-images) needs: all of it when its
    caches (the mirror images' too, with --flip) are complete already, else only the photos
    used, cached under their own name. (With --flip and the plain cache alone complete, a
    smoke test of 5 photos had mirrored all 7,966 of Flickr8k: 15 minutes.)"""
    try:
        for flip in (False, True) if config.flip else (False,):
            FeatureCache.open(
                FeatureCache.folder_of(
                    config.cache_dir, corpus, encoder.name, encoder.resolution, flip=flip
                )  # fmt: skip
            )
        return corpus
    except (CapsightError, OSError, ValueError):
        pass
    keys = [image.key for image in used]
    name = f"{corpus.name}-part{len(keys)}"
    return CaptionCorpus(name, {k: corpus.images[k] for k in keys}, {}, corpus.notes)


END_WORD = "<eos>"


def _with_end(reference_sets: list[list[str]], add: bool) -> list[list[str]]:
    """References with the end word appended (``--scst-end-token``), else unchanged."""
    if not add:
        return reference_sets
    return [[f"{ref} {END_WORD}" for ref in refs] for refs in reference_sets]


def stage_rate(stage: str, config) -> tuple[str, float]:
    """The learning rate a stage trains at, and the flag that sets it."""
    return ("--lr", config.lr) if stage == "xe" else ("--scst-lr", config.scst_lr)


def check_finite(
    value: float, where: str, out: str | os.PathLike, flag: str, rate: float, what: str = "loss"
) -> None:
    """Stop a run whose training ``what`` (``value``, at ``where``: "xe epoch 1, step 3") is no
    longer a number, in one line and before that epoch is saved: NaN weights became best/ and
    captioned every photo "in", with exit status 0. ``flag`` and ``rate``: the rate to lower."""
    if math.isfinite(value):
        return
    if (Path(out) / "last").is_dir():  # a new run would be refused there: it holds a run
        way = (f"{out}/last holds the last finished epoch: add --resume with a lower {flag} (it "
               f"was {rate:g}), or start again in another --out")  # fmt: skip
    else:
        way = f"start again with a lower {flag} (it was {rate:g})"
    raise CapsightError(f"the training {what} became {value} at {where}: the model diverged; {way}")


def _run_epoch(
    stage, state, model, wrapped, optimizer, autocast, train_data, val_data, vocab, config,
    device, rank, world, steps_per_epoch, total_xe_steps, cider,
) -> dict:  # fmt: skip
    """One pass over the training images, then validation; returns the epoch's record."""
    epoch = state["epoch"]
    model.train()
    started = time.time()
    losses, rewards = [], []
    batches = train_data.epoch(
        config.batch_images,
        config.captions_per_image,
        seed=config.seed * 1000 + epoch + (500 if stage == "scst" else 0),
        shard=(rank, world),
    )
    bar = progress_bar(batches, total=steps_per_epoch, desc=f"{stage} epoch {epoch + 1}",
               disable=not config.progress or rank != 0, mininterval=5.0)  # fmt: skip
    # SCST sampling, on the device
    gen = torch.Generator(device=device).manual_seed(config.seed * 7919 + epoch)
    for grid, captions, rows in bar:
        grid, captions = grid.to(device), captions.to(device)
        extra = ""
        if stage == "xe":
            for group in optimizer.param_groups:
                group["lr"] = (
                    warmup_cosine_lr(state["step"], total_xe_steps, config, config.lr)
                    * group["lr_scale"]
                )
            with autocast:
                loss = caption_loss(wrapped, grid, captions, config)
        else:
            from capsight.training.scst import scst_loss

            refs = _with_end([train_data.references[r] for r in rows.tolist()],
                             config.scst_end_token)  # fmt: skip
            with autocast:
                loss, reward = scst_loss(model, grid, refs, vocab, cider, config.scst_samples,
                                         config.scst_max_length, gen, config.scst_top_k,
                                         end_word=END_WORD if config.scst_end_token else None)  # fmt: skip
            extra = f" reward {reward:.3f}"
            rewards.append(float(reward))
        value = float(loss.detach())  # (read each step anyway, for the bar)
        where = f"{stage} epoch {epoch + 1}, step {len(losses) + 1}"
        if world == 1:
            check_finite(value, where, config.out, *stage_rate(stage, config))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if stage == "scst" and world > 1:  # SCST bypasses DDP's forward hooks: average by hand
            for p in model.parameters():
                if p.grad is not None:
                    torch.distributed.all_reduce(p.grad)
                    p.grad /= world
        if config.grad_clip > 0 or world > 1:
            norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip or math.inf)
            if world > 1:  # under torchrun, checked on the averaged gradients, the same on every
                # rank: all stop together (one rank stopping on its own loss would leave the
                # others waiting in the next all-reduce), with no collective of its own
                check_finite(
                    float(norm), where, config.out, *stage_rate(stage, config), what="gradient norm"
                )
        optimizer.step()
        state["step"] += 1
        losses.append(value)
        bar.set_postfix_str(f"loss {np.mean(losses[-50:]):.3f}{extra}", refresh=False)
    bar.close()
    state["epoch"] = epoch + 1
    record = {"stage": stage, "epoch": epoch + 1, "loss": epoch_loss(losses),
              "lr": float(f"{optimizer.param_groups[0]['lr']:.4g}"), "train_seconds": round(time.time() - started, 1)}  # fmt: skip
    if rewards:  # SCST: the mean CIDEr-D of the sampled captions, which its loss is no measure of
        record["reward"] = round(float(np.mean(rewards)), 4)
    if rank == 0:
        metrics = validate(model, vocab, val_data, config)
        record["val_seconds"] = round(max(0.0, time.time() - started - record["train_seconds"]), 1)
        record.update({f"val_{k}": round(v, 4) for k, v in metrics.items()})
        state["history"].append(record)
        print(json.dumps(record), flush=True)
    return record


def train(config: TrainConfig, tracker=None, corpus: CaptionCorpus | None = None) -> TrainResult:
    """Run cross-entropy training (then SCST if asked); return where the best model is.

    ``corpus``: the data as ``training_corpus(config)`` returned it, when the caller has read and
    checked it already (``train_main`` does, before it opens an MLflow run); read here if None.
    A second run into the same folder while this one writes there stops with ``InvalidParameter``.
    Like ``capsight train``, it prints each epoch's record (as in metrics.jsonl) on stdout and
    its notes on stderr, and seeds Python's, numpy's and torch's global generators with
    ``config.seed``."""
    rank, world = join_process_group()
    if corpus is None:  # before the run's folder is made: a wrong data path had left it empty
        corpus = training_corpus(config, note if rank == 0 else (lambda message: None))
    _refuse_a_split_drawn_otherwise(config, corpus)
    out = make_run_folder(config.out)
    with run_folder_lock(out) if rank == 0 else contextlib.nullcontext():
        try:
            return _train_in(out, rank, world, config, tracker, corpus)
        except KeyboardInterrupt:  # (a second Ctrl-C stops the upload too)
            # A stopped run's model had been in MLflow only once resumed to the end.
            if tracker is not None and rank == 0 and (out / "best").is_dir():
                try:
                    tracker.log_artifact(str(out / "best"))
                except Exception as error:  # the stop stays a stop (--resume said, KILLED)
                    why = (str(error).strip().splitlines() or [type(error).__name__])[0]
                    note(f"could not log {out / 'best'} to MLflow as the run stopped ({why}); "
                         "it is on disk, and is logged when the resumed run ends")  # fmt: skip
            raise


def _refuse_a_split_drawn_otherwise(config: TrainConfig, corpus: CaptionCorpus) -> None:
    """A run resumed on data without a split file must draw the split it started with: a run
    begun before 2026-12-07 drew it at random, and the split by names' hash of today would
    validate it on photos it had trained on."""
    if not (config.resume and drew_split(corpus) and holds_run(config.out)):
        return
    recorded = read_json_or_empty(Path(config.out) / "train_config.json")
    if recorded and recorded.get("drawn_split") != DRAWN_SPLIT:
        raise InvalidParameter(f"--resume: the run in {config.out} drew its train/val split at random "
                               "(capsight before 2026-12-07); splits are now drawn by a hash of each "
                               "photo's name, so it would validate on photos it trained on: start a "
                               "new run in another --out (or give the data a splits.json)")  # fmt: skip


def _train_in(
    out: Path, rank: int, world: int, config: TrainConfig, tracker, corpus
) -> TrainResult:
    device = rank_device(rank)
    seed_everything(config.seed + rank)
    corpus, train_images, val_images, cache, flip_cache, resolution = _prepare(
        config, rank, world, corpus
    )
    seed_everything(config.seed + rank)  # again: encoding photos may have drawn random numbers

    last = settled_last(out)
    resuming = config.resume and (last / "trainer.json").is_file()
    if resuming:
        state = read_trainer_state(last)
        with _said_as_unresumable(out):
            model, vocab, _ = load_checkpoint(last)
            if vocab is None:  # (it had failed later, as a traceback)
                raise ModelNotFound(f"{last / VOCAB}: missing; the checkpoint is incomplete")
        if state["stage"] == "done":
            state = _reopened(state, config, read_json_or_empty(out / "train_config.json"))
            if state["stage"] == "done" and rank == 0:
                note(f"the run in {config.out} is finished (epoch {state['epoch']} of its "
                     f"{state.get('finished_stage', 'xe')} stage); pass more epochs to go on")  # fmt: skip
        if state["stage"] != "done" and rank == 0:
            note(
                f"resuming the run in {config.out} after its {state['stage']} epoch {state['epoch']}"
            )
            _note_changed_schedule(read_json_or_empty(out / "train_config.json"), config, state)
        if rank == 0:  # the epochs last/ holds, and no line of one that was cut short
            rewrite_log(out, state["history"])
    elif config.init_from and is_gpt2_folder(config.init_from):
        _check_gpt2_start(config)  # (train() called from Python skips check_starting_point)
        model, vocab = PrefixGPT2.from_pretrained(
            config.init_from, **config.model, encoder=config.encoder, resolution=resolution
        )
        state = {"epoch": 0, "stage": "xe", "step": 0, "best": None, "history": []}
        if rank == 0:
            for said in _gpt2_start_notes(config, vocab, train_images):
                note(said)
    elif config.init_from:
        model, vocab, raw = load_checkpoint(config.init_from)
        refuse_own_encoder(raw, config.init_from)
        model = _with_fine_tuning(model, config.fine_tune_blocks)
        state = {"epoch": 0, "stage": "xe", "step": 0, "best": None, "history": []}
    else:
        vocab = training_vocabulary(train_images, config.min_count)
        model_config = config_from_dict(
            {
                **config.model,
                "architecture": config.architecture,
                "vocab_size": len(vocab),
                "encoder": config.encoder,
                "resolution": resolution,
                **(
                    {"fine_tune_blocks": config.fine_tune_blocks} if config.fine_tune_blocks else {}
                ),
            }
        )
        model = build_model(model_config)
        state = {"epoch": 0, "stage": "xe", "step": 0, "best": None, "history": []}
    if config.scst_epochs and config.scst_top_k > len(vocab):  # known only now; SCST would fail
        raise InvalidParameter(f"--scst-top-k {config.scst_top_k}: the vocabulary has only {len(vocab)} "
                               "words; pass fewer, or 0 for the full distribution")  # fmt: skip
    if model.endings is None and isinstance(vocab, Vocabulary):
        model.endings = Endings.learn(
            vocab.encode(tokenize(c)) for im in train_images for c in im.captions
        )
    model.to(device)
    kind = model.feature_input  # the grid, or hidden maps for fine-tuned encoder blocks
    train_data = CaptionBatches.from_corpus(
        train_images, cache, vocab, flip_cache, config.max_caption_length, kind
    )
    val_data = CaptionBatches.from_corpus(
        val_images, cache, vocab, None, config.max_caption_length, kind
    )

    run_params = {**dataclasses.asdict(config), "vocab_size": len(vocab), "train_images": len(train_data),
                  "val_images": len(val_data), "parameters": sum(p.numel() for p in model.parameters()),
                  "code_version": _code_version()}  # fmt: skip
    run_params["paths"] = {k: run_path(run_params, k) for k in PATH_OPTIONS if run_params.get(k)}
    if drew_split(corpus):  # how, so that a resume (and eval) can tell a split drawn otherwise
        run_params["drawn_split"] = DRAWN_SPLIT
    if resuming and rank == 0:
        before = read_json_or_empty(out / "train_config.json")
        if state["stage"] == "done" and before:  # nothing trains: the run's record stays as it
            run_params = before  # was (other data had been recorded "from done epoch 8")
        else:
            _note_changed_data(before, run_params, lambda: unknown_share(train_images, vocab)
                               if isinstance(vocab, Vocabulary) else None)  # fmt: skip
            run_params = _note_changed_options(before, run_params, state)
    (out / "train_config.json").write_text(json.dumps(run_params, indent=2, default=str))
    if tracker is not None and rank == 0:  # how a run was started is not a hyperparameter
        where = {
            k: str(Path(run_params[k]).resolve())
            for k in ("data", "out", "cache_dir", "images", "init_from")
            if run_params.get(k)
        }  # absolute: a relative path means nothing in the MLflow UI later
        # The model's whole configuration (hidden size, layers ...), not only the options typed:
        # a run with the defaults had logged "model = {}".
        model_config = getattr(model, "config", None)
        built = (
            dataclasses.asdict(model_config)
            if dataclasses.is_dataclass(model_config)
            else dict(config.model)
        )
        # Where it ran, which changes the result under the same options: the batch is
        # batch_images x world_size photos per step, and a GPU trains under bf16 autocast.
        ran_on = {"world_size": world, "device": device.type, "torch": torch.__version__,
                  "precision": "bf16 autocast" if device.type == "cuda" else "float32"}  # fmt: skip
        tracker.log_params(
            {
                k: v
                for k, v in {**run_params, **where, "model": built, "ran_on": ran_on}.items()
                if k not in ("resume", "progress", "changed_on_resume")
            }
        )  # (its own changed_param tags)
        state["tracker_run_id"] = getattr(tracker, "run_id", None)  # a resumed run continues it

    wrapped = model
    if world > 1:
        wrapped = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.AdamW(_param_groups(model, config), lr=config.lr)
    if resuming:
        restore_resume_state(
            last, optimizer, device, note if rank == 0 else lambda _: None, random_state=world == 1
        )
        # The saved groups carry the old run's settings: --weight-decay and --fine-tune-lr-ratio
        # given now win (as the resume note says), and in SCST --scst-lr.
        for group, fresh in zip(optimizer.param_groups, _param_groups(model, config), strict=True):
            group["weight_decay"], group["lr_scale"] = fresh["weight_decay"], fresh["lr_scale"]
            if state["stage"] == "scst":
                group["lr"] = config.scst_lr * group["lr_scale"]
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if device.type == "cuda"
        else torch.autocast("cpu", enabled=False)
    )

    steps_per_epoch = math.ceil(len(train_data) / world / config.batch_images)
    total_xe_steps = steps_per_epoch * config.epochs
    trains_xe = state["stage"] == "xe" and not state.get("stage_closed")
    fewer = max(1, total_xe_steps // 10)  # (one warm-up step is none: step 0 runs at --lr)
    if (
        rank == 0
        and trains_xe
        and 0 < total_xe_steps <= 2 * config.warmup_steps
        and fewer < config.warmup_steps
    ):
        w = config.warmup_steps
        share = (
            "longer than"
            if w > total_xe_steps
            else "as long as"
            if w == total_xe_steps
            else "at least half of"
        )
        note(f"--warmup-steps {w} is {share} the run's {total_xe_steps} steps "
             f"({counted(config.epochs, 'epoch')} of {steps_per_epoch}): the learning rate stays far below "
             f"--lr {config.lr:g} for much of the run; pass fewer (e.g. --warmup-steps {fewer})")  # fmt: skip
    most = max((len(im.captions) for im in train_images), default=0)
    if rank == 0 and trains_xe and config.captions_per_image > most > 0:
        note(f"--captions-per-image {config.captions_per_image}: the training photos have at most "
             f"{counted(most, 'caption')}, so each step draws them again; an epoch takes longer "
             f"and sees nothing more (pass --captions-per-image {most})")  # fmt: skip
    cider = None
    while state["stage"] in ("xe", "scst"):
        stage = state["stage"]
        stage_epochs = config.epochs if stage == "xe" else config.scst_epochs
        if stage == "scst" and cider is None:
            from capsight.training.cider import CiderD

            cider = CiderD(_with_end(train_data.references, config.scst_end_token))
        stopped = state.pop("stage_closed", False)  # a finished stage that stays finished
        while state["epoch"] < stage_epochs and not stopped:
            record = _run_epoch(
                stage,
                state,
                model,
                wrapped,
                optimizer,
                autocast,
                train_data,
                val_data,
                vocab,
                config,
                device,
                rank,
                world,
                steps_per_epoch,
                total_xe_steps,
                cider,
            )
            if rank == 0:
                stopped = _book_epoch(
                    record, state, model, vocab, optimizer, out, config, tracker, stage
                )
            # every rank stops together (and syncs)
            stopped = agree_with_rank0(stopped, world, device)
        if stage == "xe" and config.scst_epochs > 0:
            # SCST starts from the best cross-entropy model, with a fresh, small learning rate.
            if (out / "best").is_dir():
                best_model, _, _ = load_checkpoint(out / "best", device)
                model.load_state_dict(best_model.state_dict())
            state.update(stage="scst", epoch=0, patience_left=config.patience)
            optimizer.state.clear()
            for group in optimizer.param_groups:
                group["lr"] = config.scst_lr * group["lr_scale"]
        else:
            state.update(stage="done", finished_stage=stage, stage_epochs=stage_epochs)
        if rank == 0:
            _save_last(out, model, vocab, optimizer, state, extra={"stage": state["stage"]})
    if tracker is not None and rank == 0 and (out / "best").is_dir():
        tracker.log_artifact(str(out / "best"))
    best = state["best"] or {}
    return TrainResult(out, out / "best", best, state["history"])


def check_starting_point(config: TrainConfig, note=None) -> None:
    """Refuse a run with no epochs, and ``--init-from`` a checkpoint (or ``--resume`` a run) whose
    architecture, encoder or input size differ from the run's (it would be fed the wrong features,
    or the flags would be silently ignored); ``note`` that ``--resume`` found nothing to resume
    (the run then starts, so recipes can always pass it), and that a run folder given to
    ``--init-from`` stands for its ``best`` (``load_checkpoint`` takes one so)."""
    if config.epochs == 0 and config.scst_epochs == 0:
        raise InvalidParameter("nothing to train: --epochs and --scst-epochs are both 0")
    if (
        config.epochs == 0
        and not config.init_from
        and not (config.resume and holds_run(config.out))
    ):
        raise InvalidParameter("--epochs 0: the self-critical stage refines a trained captioner; "
                               "pass --init-from CHECKPOINT, or some cross-entropy --epochs first")  # fmt: skip
    from capsight.training.evaluation import check_scorers

    check_scorers()  # every epoch is scored on the validation photos
    last = settled_last(config.out)
    if config.resume and (last / "trainer.json").is_file():
        # A run resumes from its own last/: another --init-from would be ignored without a word.
        # {} if unreadable: said
        recorded = read_json_or_empty(Path(config.out) / "train_config.json")
        started = recorded.get("init_from") or ""
        # where the run started it from (its own path from here had named another folder)
        where = run_path(recorded, "init_from") or ""
        if recorded and config.init_from and not _same_checkpoint(where, config.init_from):
            began = f"started from {started}" if started else "started from scratch"
            raise InvalidParameter(f"--init-from {config.init_from}: the run in {config.out} resumes "
                                   f"from its own last epoch ({began}); drop --init-from, or start a "
                                   "new run in another --out")  # fmt: skip
        with _said_as_unresumable(Path(config.out)):
            _refuse_other_features(config, last, f"--resume: the run in {config.out}")
        return  # (the checkpoint it started from was checked when it started)
    if config.resume and note is not None:
        note(f"--resume: nothing to resume in {config.out}; starting a new run")
    if not config.init_from:
        return
    if is_gpt2_folder(config.init_from):  # GPT-2 weights and tokenizer: a prefix-gpt2 starts
        _check_gpt2_start(config)
        return
    if other := hugging_face_model_type(config.init_from):
        raise InvalidParameter(f"--init-from {config.init_from}: a Hugging Face {other} model; "
                               "a prefix-gpt2 starts from GPT-2 weights only (model_type gpt2), "
                               "other captioners from a capsight checkpoint")  # fmt: skip
    if Path(config.init_from).is_file():
        raise InvalidParameter(f"--init-from {config.init_from}: is a file; name the checkpoint folder "
                               f"({Path(config.init_from).parent})")  # fmt: skip
    if not Path(config.init_from).is_dir():
        raise InvalidParameter(f"--init-from {config.init_from}: no such checkpoint folder")
    start = checkpoint_folder(config.init_from)
    if start != Path(config.init_from) and note is not None:
        note(f"--init-from {config.init_from}: a run folder; starting from its best model, {start}")
    _refuse_other_features(config, start, f"--init-from {start}")


# The model options a prefix-gpt2 started from GPT-2 weights may take: the rest are GPT-2's.
GPT2_START_OPTIONS = ("prefix_from", "prefix_length")


def _check_gpt2_start(config: TrainConfig) -> None:
    if config.architecture != "prefix-gpt2":
        raise InvalidParameter(f"--init-from {config.init_from}: GPT-2 weights start a prefix-gpt2 "
                               "captioner; pass --architecture prefix-gpt2")  # fmt: skip
    if other := sorted(set(config.model) - set(GPT2_START_OPTIONS)):
        raise InvalidParameter(f"--model-option {other[0]}: set by the GPT-2 weights in "
                               f"{config.init_from}; a start from them takes only "
                               f"{', '.join(GPT2_START_OPTIONS)}")  # fmt: skip


def _gpt2_start_notes(config: TrainConfig, vocab, train_images) -> list[str]:
    """What a start from GPT-2 weights leaves undone that the options ask for."""
    from capsight.training.batches import left_right_swap

    notes = []
    if config.min_count != TrainConfig.min_count:
        notes.append(f"--min-count {config.min_count} does nothing here: the GPT-2 tokenizer is the "
                     "vocabulary, and every word has tokens in it")  # fmt: skip
    if config.flip and left_right_swap(vocab) is None:
        sides = sum(w in ("left", "right") for im in train_images for c in im.captions
                    for w in tokenize(c))  # fmt: skip
        if sides:
            notes.append(f"--flip: 'left' and 'right' are no single tokens of this tokenizer, so "
                         f"the {sides:,} times the captions say them stay as they are under "
                         "mirrored photos")  # fmt: skip
    return notes


def _same_checkpoint(a: str, b: str) -> bool:
    """Whether two --init-from values name one checkpoint ("runs/xe" and "runs/xe/best" do)."""
    if not a or not b:
        return a == b
    try:
        return checkpoint_folder(a).resolve() == checkpoint_folder(b).resolve()
    except CapsightError:  # a run whose best/ is gone since: the paths as given
        return Path(a).resolve() == Path(b).resolve()


@contextlib.contextmanager
def _said_as_unresumable(out: Path) -> Iterator[None]:
    """A damaged ``last/`` checkpoint said as a run that cannot be resumed, and where its best
    model is: the checkpoint's own advice, "retrain or reinstall it", says nothing of a run."""
    try:
        yield
    except ModelNotFound as damaged:
        reason = str(damaged).split("; the checkpoint")[0]
        raise InvalidParameter(f"{reason}; so the run cannot be resumed: start it again in another "
                               f"--out (its best model so far is in {out / 'best'})") from None  # fmt: skip


def _refuse_other_features(config: TrainConfig, checkpoint: Path, what: str) -> None:
    raw = read_config(checkpoint)
    refuse_own_encoder(raw, checkpoint)  # before the photos are encoded for nothing
    native = VARIANTS[config.encoder].resolution if config.encoder in VARIANTS else 0
    wanted = {"architecture": config.architecture, "encoder": config.encoder,
              "resolution": config.resolution or native}  # fmt: skip
    for key, value in wanted.items():
        theirs = raw.get(key)
        if theirs is not None and value and theirs != value:
            raise InvalidParameter(
                f"{what} is a {raw.get('architecture')} on {raw.get('encoder')} features at "
                f"{raw.get('resolution')} px, not {key} {value}: pass --{key} {theirs}"
            )
    for key, value in (config.model or {}).items():  # the checkpoint's own model is what trains on
        if key in raw and raw[key] != value:
            raise InvalidParameter(
                f"{what} was built with {key}={raw[key]}; --model-option {key}={value} cannot "
                "change it (drop the option, or train a new run)"
            )


if __name__ == "__main__":
    from capsight._cli.train_command import train_main

    raise SystemExit(train_main())
