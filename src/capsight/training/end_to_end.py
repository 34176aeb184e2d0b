"""Train Show, Attend and Tell together with its whole encoder, on photos (a GPU job).

    python -m capsight.training.end_to_end ../shared/data/flickr8k --out runs/e2e-lite2 \\
        --encoder efficientnet-lite2 --vocab-from src/capsight/models/show-attend-tell-pair/m0 \\
        --epochs 7 --scst-epochs 40 --patience 3 --max-val-images 250 --seed 42

``capsight train`` runs the decoder on cached encoder features (and at most the encoder's top
stage, ``--fine-tune-blocks``), which is what 2 CPU cores allow. This trains every layer of the
EfficientNet-Lite encoder with the decoder, end to end from the photos:

- the photos are decoded once, resized whole to the encoder's square input (as the captioner
  sees them, ``vision.pixels``), and kept in memory as bytes (on the GPU when there is one);
- each step augments them there: a random crop of 80-100% of the photo, and in the
  cross-entropy stage a mirror image for half of them, whose captions swap "left" and "right";
- the encoder trains at ``--encoder-lr-ratio`` x the decoder's learning rate, its BatchNorm
  statistics frozen (what inference folds into the convolutions);
- cross-entropy with a cosine schedule, then self-critical training on CIDEr-D with the end word
  in the reward (``training.scst``), encoder still training;
- after every epoch the validation photos are captioned (beam 3) and scored with CIDEr-D
  (``training.cider``, document frequencies from the validation captions, as pycocoevalcap
  computes them); a stage stops ``--patience`` epochs without a gain, and no epoch starts that
  would end after ``--time-limit`` (cross-entropy cut this way moves on to SCST).

``<out>/best`` is a captioner checkpoint in float16, the precision capsight ships: the decoder in
``model.safetensors`` and the encoder in ``encoder.safetensors``, named by ``encoder_weights`` in
``config.json``; captioning encodes photos with it (``captioning.trained``). ``<out>/last``
(float32, with the optimizer and torch's random state; ``training.run_folder``) resumes a run
(``--resume``) as if it had never stopped; SCST starts from ``best``'s float16 weights either
way. ``--vocab-from`` takes the vocabulary and endings of another checkpoint, so the two can
decode as an ensemble.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from capsight.captioning.base import DecodingOptions
from capsight.captioning.checkpoint import (
    load_checkpoint,
    load_vocabulary,
    read_config,
    save_checkpoint,
)
from capsight.captioning.endings import Endings
from capsight.captioning.model import CaptionModel, build_model, config_from_dict
from capsight.captioning.vocabulary import Vocabulary, tokenize
from capsight.errors import InvalidParameter, ModelNotFound
from capsight.io.images import load_image
from capsight.io.tensor_files import save_tensors
from capsight.training import run_folder
from capsight.training.batches import caption_targets, left_right_swap, pick_captions
from capsight.training.cider import CiderD
from capsight.training.log_bar import progress_bar
from capsight.training.scst import scst_loss
from capsight.training.train import (
    END_WORD,
    TrainConfig,
    caption_grid,
    caption_loss,
    check_finite,
    check_regularisers,
    stage_rate,
    training_corpus,
    warmup_cosine_lr,
)
from capsight.vision.efficientnet_lite import VARIANTS, EfficientNetLite
from capsight.vision.encoder import read_encoder_weights
from capsight.vision.pixels import PIXEL_MEAN, PIXEL_STD
from capsight.vision.weights import efficientnet_weights_path

ENCODER_FILE = "encoder.safetensors"
# The decoder of the shipped captioners (``show-attend-tell-pair``): 512 wide throughout.
DECODER = {"architecture": "show-attend-tell", "projected_dim": 512, "embed_dim": 512,
           "hidden_dim": 512, "attention_dim": 512, "dropout": 0.5, "embed_dropout": 0.1}  # fmt: skip


@dataclass(frozen=True)
class EndToEndConfig:
    data: str
    out: str
    encoder: str = "efficientnet-lite2"
    encoder_weights: str = ""  # start from this state dict; "" = the installed ImageNet weights
    init_from: str = ""  # decoder, vocabulary and endings from this checkpoint
    vocab_from: str = ""  # vocabulary and endings only from this checkpoint
    epochs: int = 8
    scst_epochs: int = 12
    batch_images: int = 32
    captions_per_image: int = 5
    lr: float = 5e-4
    encoder_lr_ratio: float = 0.1
    scst_lr: float = 2e-5
    min_lr_ratio: float = 0.1
    warmup_steps: int = 200
    weight_decay: float = 1e-4
    grad_clip: float = 2.0
    label_smoothing: float = 0.1
    attention_lambda: float = 1.0
    min_count: int = 5
    max_caption_length: int = 22
    crop: float = 0.8  # smallest random crop, as a fraction of the photo's side; 1 = none
    flip: bool = True  # mirror half the photos in the cross-entropy stage
    scst_samples: int = 5
    scst_top_k: int = 5
    scst_max_length: int = 16
    val_beam: int = 3
    patience: int = 3
    seed: int = 42
    time_limit: float = 0.0  # seconds for the whole run; 0 = none
    xe_time_share: float = 0.4  # of the time limit, at most this much for cross-entropy
    max_train_images: int = 0
    max_val_images: int = 0
    workers: int = 8  # photo-decoding threads
    resume: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.encoder not in VARIANTS:
            raise InvalidParameter(
                f"--encoder {self.encoder!r}: choose one of {', '.join(VARIANTS)}"
            )
        if min(self.epochs, self.scst_epochs, self.warmup_steps, self.max_train_images,
               self.max_val_images, self.scst_top_k) < 0:  # fmt: skip
            raise InvalidParameter(
                "epochs, warm-up steps, --scst-top-k and image limits must be >= 0"
            )
        if min(self.batch_images, self.captions_per_image, self.min_count, self.max_caption_length,
               self.val_beam, self.patience, self.scst_max_length, self.workers) < 1 or self.scst_samples < 2:  # fmt: skip
            raise InvalidParameter("batch sizes, counts, lengths, --val-beam, --patience and --workers must be "
                                   ">= 1, --scst-samples >= 2")  # fmt: skip
        for name in ("lr", "scst_lr", "encoder_lr_ratio"):
            if not 0 < getattr(self, name) < math.inf:
                raise InvalidParameter(f"--{name.replace('_', '-')} must be a positive number")
        if not (0 <= self.min_lr_ratio <= 1 and 0 < self.crop <= 1 and 0 < self.xe_time_share <= 1):
            raise InvalidParameter(
                "--min-lr-ratio must be in [0, 1], --crop and --xe-time-share in (0, 1]"
            )
        if self.weight_decay < 0 or self.grad_clip < 0 or self.time_limit < 0:
            raise InvalidParameter("--weight-decay, --grad-clip and --time-limit must be >= 0")
        check_regularisers(self.label_smoothing, self.attention_lambda)
        if self.init_from and self.vocab_from:
            raise InvalidParameter("--init-from brings its own vocabulary: leave out --vocab-from")
        if self.out:
            run_folder.check_run_folder(self.out, self.resume)
        if (
            self.epochs == 0
            and not self.init_from
            and not (self.resume and run_folder.holds_run(self.out))
        ):
            raise InvalidParameter("--epochs 0: the self-critical stage refines a trained captioner; "
                                   "pass --init-from CHECKPOINT, or some cross-entropy --epochs first")  # fmt: skip


# -- photos -------------------------------------------------------------------------------------
def photo_bytes(
    paths: list[Path], side: int, workers: int = 8, progress: bool = True
) -> torch.Tensor:
    """Photos -> (N, 3, side, side) uint8, each resized whole as ``vision.pixels`` does."""

    def read(path: Path) -> np.ndarray:
        image = (
            load_image(path).convert("RGB").resize((side, side), Image.BILINEAR, reducing_gap=2.0)
        )
        return np.asarray(image).transpose(2, 0, 1)  # (3, side, side)

    with ThreadPoolExecutor(workers) as pool:
        arrays = list(progress_bar(pool.map(read, paths), total=len(paths), desc="photos", disable=not progress,
                           mininterval=5.0))  # fmt: skip
    return (
        torch.from_numpy(np.stack(arrays))
        if arrays
        else torch.zeros(0, 3, side, side, dtype=torch.uint8)
    )


def augment(
    pixels: torch.Tensor, crop: float, mirrored: torch.Tensor, gen: torch.Generator
) -> torch.Tensor:
    """Normalised photos (B, 3, S, S) -> each a random square crop of ``crop``..1 of its side,
    moved anywhere inside it, mirrored where ``mirrored``, resized back to S x S."""
    b = pixels.shape[0]
    scale = 1 - (1 - crop) * torch.rand(b, generator=gen)  # (B,) crop side / photo side
    shift = (1 - scale)[:, None] * (2 * torch.rand(b, 2, generator=gen) - 1)  # (B, 2) crop centre
    theta = torch.zeros(b, 2, 3)
    theta[:, 0, 0] = torch.where(mirrored, -scale, scale)
    theta[:, 1, 1] = scale
    theta[:, :, 2] = shift
    sampling = F.affine_grid(theta.to(pixels.device), list(pixels.shape), align_corners=False)
    return F.grid_sample(
        pixels, sampling, mode="bilinear", padding_mode="border", align_corners=False
    )


def normalise(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 (B, 3, S, S) -> float32 as the encoder was trained ((x - 127) / 128)."""
    return (pixels.float() - PIXEL_MEAN) / PIXEL_STD


# -- the encoder ----------------------------------------------------------------------------------
def load_encoder(name: str, weights: str = "") -> EfficientNetLite:
    """EfficientNet-Lite with ``weights`` (a state-dict file), else the installed ImageNet ones."""
    net = EfficientNetLite.build(name)
    try:
        path = weights or efficientnet_weights_path(name)
    except ModelNotFound as exc:
        raise ModelNotFound(f"{exc}, or pass a weights file with --encoder-weights") from None
    if not Path(path).is_file():
        raise ModelNotFound(f"{path}: no such encoder weights file")
    try:
        net.load_state_dict(read_encoder_weights(path))
    except Exception as exc:  # a damaged file, or another variant's weights
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelNotFound(f"{path}: not {name} weights ({first[:160]})") from None
    net._fc.requires_grad_(False)  # the ImageNet classifier plays no part in captioning
    set_training(net, False)
    return net


def set_training(net: EfficientNetLite, mode: bool) -> None:
    """Train or evaluate the encoder; its BatchNorm layers always use (and keep) their running
    statistics, with their scale and shift frozen."""
    net.train(mode)
    for module in net.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.eval()
            module.requires_grad_(False)


def encode(net: EfficientNetLite, pixels: torch.Tensor) -> torch.Tensor:
    """Normalised photos (B, 3, S, S) -> the decoder's grid (B, P, 1280), float32."""
    if pixels.is_cuda:
        pixels = pixels.contiguous(memory_format=torch.channels_last)
    return net.features(pixels).flatten(2).transpose(1, 2).float()


def save_encoder(net: EfficientNetLite, folder: Path, fp16: bool) -> None:
    # BatchNorm stays float32 (a small share of the bytes): it is frozen, so rounding it would
    # only move it away from the statistics it was trained with.
    batch_norms = {
        name for name, module in net.named_modules() if isinstance(module, nn.BatchNorm2d)
    }
    state = {}
    for key, tensor in net.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        halve = fp16 and tensor.is_floating_point() and key.rpartition(".")[0] not in batch_norms
        state[key] = tensor.half() if halve else tensor
    save_tensors(state, folder / ENCODER_FILE, metadata={"format": "pt"})


def save_captioner(decoder: CaptionModel, net: EfficientNetLite, vocab: Vocabulary, folder: Path,
                   fp16: bool, extra: dict) -> None:  # fmt: skip
    """A checkpoint ``captioning.trained`` loads: the decoder, its vocabulary and endings, and
    the encoder it was trained with, named in config.json."""
    save_checkpoint(decoder, vocab, folder, fp16=fp16, extra=extra)
    save_encoder(net, folder, fp16)


# -- one run --------------------------------------------------------------------------------------
@dataclass
class _Data:
    pixels: torch.Tensor  # (N, 3, S, S) uint8, on the training device
    captions: list[torch.Tensor]  # per photo (n_i, T_i) ids
    references: list[list[str]]  # per photo, normalised captions


def _data(images, vocab: Vocabulary, config: EndToEndConfig, device: torch.device) -> _Data:
    side = VARIANTS[config.encoder].resolution
    pixels = photo_bytes([im.path for im in images], side, config.workers, config.progress).to(
        device
    )
    captions, references = caption_targets(images, vocab, config.max_caption_length)
    return _Data(pixels, captions, references)


def _decoder_and_vocab(config: EndToEndConfig, train_images) -> tuple[CaptionModel, Vocabulary]:
    if config.init_from:
        decoder, vocab, _ = load_checkpoint(config.init_from)
        if decoder.config.architecture != "show-attend-tell" or decoder.feature_input != "grid":
            raise InvalidParameter(f"--init-from {config.init_from}: needs a show-attend-tell checkpoint "
                                   "that reads the encoder's grid")  # fmt: skip
        if getattr(decoder.config, "encoder", config.encoder) != config.encoder:
            raise InvalidParameter(f"--init-from {config.init_from}: trained on {decoder.config.encoder}, "
                                   f"not {config.encoder}")  # fmt: skip
        return _with_own_encoder(decoder), vocab
    if config.vocab_from:
        vocab = load_vocabulary(config.vocab_from)
        if not isinstance(vocab, Vocabulary):
            raise ModelNotFound(
                f"--vocab-from {config.vocab_from}: no word vocabulary (vocab.json) there"
            )
        endings = Endings.load(config.vocab_from)
    else:
        vocab = Vocabulary.build(
            (tokenize(c) for im in train_images for c in im.captions), config.min_count
        )
        endings = None
    decoder = build_model(config_from_dict({
        **DECODER, "vocab_size": len(vocab), "encoder": config.encoder,
        "resolution": VARIANTS[config.encoder].resolution, "encoder_weights": ENCODER_FILE,
    }))  # fmt: skip
    decoder.endings = endings or Endings.learn(
        vocab.encode(tokenize(c)) for im in train_images for c in im.captions
    )
    return decoder, vocab


def _own_encoder(checkpoint: str) -> str:
    """The encoder file a checkpoint was trained with, "" for the shared ImageNet one."""
    if not checkpoint:
        return ""
    own = read_config(checkpoint).get("encoder_weights")
    return str(Path(checkpoint) / own) if own else ""


def _with_own_encoder(decoder: CaptionModel) -> CaptionModel:
    """The decoder with ``encoder_weights`` set in its config (it reads its own encoder now)."""
    if decoder.config.encoder_weights == ENCODER_FILE:
        return decoder
    own = build_model(dataclasses.replace(decoder.config, encoder_weights=ENCODER_FILE))
    own.load_state_dict(decoder.state_dict())
    own.endings = decoder.endings
    return own


def _optimizer(
    decoder: CaptionModel, net: EfficientNetLite, config: EndToEndConfig
) -> torch.optim.AdamW:
    """AdamW: weight decay on matrices and kernels only; the encoder at a scaled learning rate."""
    groups: dict[tuple[bool, bool], list] = {}
    for encoder, module in ((False, decoder), (True, net)):
        for name, p in module.named_parameters():
            if p.requires_grad:
                decays = p.ndim >= 2 and "embed" not in name
                groups.setdefault((encoder, decays), []).append(p)
    return torch.optim.AdamW(
        [
            {
                "params": params,
                "weight_decay": config.weight_decay if decays else 0.0,
                "lr_scale": config.encoder_lr_ratio if encoder else 1.0,
            }
            for (encoder, decays), params in sorted(groups.items())
        ],
        lr=config.lr,
    )


def validate(decoder: CaptionModel, net: EfficientNetLite, vocab: Vocabulary, data: _Data,
             cider: CiderD, config: EndToEndConfig, autocast) -> dict:  # fmt: skip
    """Caption the validation photos (beam search) and score them: CIDEr-D and mean length."""
    decoder.eval()
    set_training(net, False)
    grids = []
    with torch.no_grad(), autocast:
        for start in range(0, len(data.pixels), 100):
            grids.append(encode(net, normalise(data.pixels[start : start + 100])))
        grid = torch.cat(grids)
        options = DecodingOptions(
            method="beam", beam_width=config.val_beam, max_length=20, no_repeat_phrase=False
        )  # as train.validate scores epochs
        texts = caption_grid(decoder, vocab, grid, options)
    scores = cider.scores(texts, data.references)
    return {"val_CIDEr_D": round(float(np.mean(scores)), 4),
            "val_words": round(float(np.mean([len(t.split()) for t in texts])), 2)}  # fmt: skip


def _step_loss(stage, decoder, net, data: _Data, rows, vocab, cider, config, gen, sample_gen, swap):
    device = data.pixels.device
    flip = config.flip and stage == "xe"
    mirrored = (
        torch.rand(len(rows), generator=gen) < 0.5
        if flip
        else torch.zeros(len(rows), dtype=torch.bool)
    )
    pixels = normalise(data.pixels[rows.to(device)])
    if config.crop < 1 or flip:
        pixels = augment(pixels, config.crop, mirrored, gen)
    grid = encode(net, pixels)  # (B, P, 1280)
    if stage == "xe":
        captions = pick_captions(
            data.captions, rows, mirrored, config.captions_per_image, gen, swap
        )
        return caption_loss(decoder, grid, captions.to(device), config), None
    refs = [[f"{r} {END_WORD}" for r in data.references[i]] for i in rows.tolist()]
    return scst_loss(decoder, grid, refs, vocab, cider, config.scst_samples, config.scst_max_length,
                     sample_gen, config.scst_top_k, end_word=END_WORD)  # fmt: skip


def end_to_end(config: EndToEndConfig) -> dict:
    """Run the training; return the best epoch's record (empty when no epoch ran)."""
    started = time.time()
    # The data before the run's folder: a wrong path had left the folder made, and empty.
    corpus = training_corpus(TrainConfig(data=config.data, out=config.out, resume=True))
    out = run_folder.make_run_folder(config.out)
    with run_folder.run_folder_lock(out):  # (a second run into the folder: one line, at once)
        return _end_to_end_in(config, out, started, corpus)


def _end_to_end_in(config: EndToEndConfig, out: Path, started: float, corpus) -> dict:
    deadline = started + config.time_limit if config.time_limit else math.inf
    torch.manual_seed(config.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its kernels once
    train_images, val_images = corpus.split("train"), corpus.split("val")
    if config.max_train_images:
        train_images = train_images[: config.max_train_images]
    if config.max_val_images:
        val_images = val_images[: config.max_val_images]

    last = run_folder.settled_last(out)
    resuming = config.resume and (last / "trainer.json").is_file()
    if resuming:
        state = run_folder.read_trainer_state(last)
        decoder, vocab, raw = load_checkpoint(last)
        if raw.get("encoder") != config.encoder:
            raise InvalidParameter(
                f"--resume: {out} trains {raw.get('encoder')}; pass --encoder {raw.get('encoder')}"
            )
        net = load_encoder(config.encoder, str(last / ENCODER_FILE))
        if state["stage"] == "done":  # asked for more epochs than the finished run had
            state["stage"] = state.get("finished_stage", "scst")
            state["patience_left"] = config.patience
        # the epochs last/ holds, and none that was cut short before it held them
        run_folder.rewrite_log(out, state["history"])
    else:
        decoder, vocab = _decoder_and_vocab(config, train_images)
        net = load_encoder(config.encoder, config.encoder_weights or _own_encoder(config.init_from))
        state = {"stage": "xe" if config.epochs else "scst", "epoch": 0, "step": 0, "best": None,
                 "history": [], "patience_left": config.patience}  # fmt: skip
    decoder.to(device)
    net.to(device)
    if device.type == "cuda":
        net.to(memory_format=torch.channels_last)
    train = _data(train_images, vocab, config, device)
    val = _data(val_images, vocab, config, device)
    swap = left_right_swap(vocab)
    val_cider = CiderD(val.references)
    train_cider = CiderD([[f"{r} {END_WORD}" for r in refs] for refs in train.references])
    optimizer = _optimizer(decoder, net, config)
    if resuming:
        run_folder.restore_resume_state(last, optimizer, device,
                                        lambda message: print(f"end_to_end: note: {message}", file=sys.stderr))  # fmt: skip
    autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")
    steps_per_epoch = math.ceil(len(train.pixels) / config.batch_images)
    (out / "run_config.json").write_text(json.dumps({**dataclasses.asdict(config), "device": str(device),
        "train_images": len(train.pixels), "val_images": len(val.pixels), "vocab": len(vocab)}, indent=1))  # fmt: skip
    print(f"end_to_end: {len(train.pixels)} training and {len(val.pixels)} validation photos on {device}, "
          f"ready after {time.time() - started:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
    epoch_seconds: dict[str, float] = {}  # the last epoch's duration, per stage

    def time_left_for(stage: str) -> bool:
        """Whether another epoch of ``stage`` fits before its deadline, judged by the stage's last
        epoch (before its first: the other stage's, +50%; the very first epoch always runs)."""
        end = (
            started + config.xe_time_share * config.time_limit
            if stage == "xe" and config.time_limit
            else deadline
        )
        guess = epoch_seconds.get(stage) or 1.5 * max(epoch_seconds.values(), default=0.0)
        return time.time() + guess < end

    while state["stage"] in ("xe", "scst"):
        stage = state["stage"]
        stage_epochs = config.epochs if stage == "xe" else config.scst_epochs
        while state["epoch"] < stage_epochs and state["patience_left"] > 0 and time_left_for(stage):
            epoch_started = time.time()
            record = _epoch(stage, state, decoder, net, train, vocab, train_cider, config, optimizer, autocast,
                            steps_per_epoch, swap)  # fmt: skip
            record["train_seconds"] = round(time.time() - epoch_started, 1)
            record.update(validate(decoder, net, vocab, val, val_cider, config, autocast))
            epoch_seconds[stage] = time.time() - epoch_started
            record["seconds"] = round(epoch_seconds[stage], 1)
            state["history"].append(record)
            if state["best"] is None or record["val_CIDEr_D"] > state["best"]["val_CIDEr_D"]:
                state["best"], state["patience_left"] = record, config.patience
                save_captioner(decoder, net, vocab, out / "best", fp16=True, extra={"best": record})
            else:
                state["patience_left"] -= 1
            print(json.dumps(record), flush=True)
            _save_last(out, decoder, net, vocab, optimizer, state)
            # once last/ holds the epoch, as train logs it
            run_folder.log_epoch(out, record)
        if stage == "xe" and config.scst_epochs:
            # SCST starts from the best cross-entropy epoch as saved (float16), so a resumed run
            # starts it from the same weights as one that never stopped.
            if (out / "best" / ENCODER_FILE).is_file():
                decoder.load_state_dict(load_checkpoint(out / "best")[0].state_dict())
                net.load_state_dict(read_encoder_weights(str(out / "best" / ENCODER_FILE)))
            optimizer.state.clear()
            state.update(stage="scst", epoch=0, patience_left=config.patience)
        else:
            state.update(stage="done", finished_stage=stage)
        _save_last(out, decoder, net, vocab, optimizer, state)
    return state["best"] or {}


def _epoch(stage, state, decoder, net, data: _Data, vocab, cider, config, optimizer, autocast,
           steps_per_epoch, swap) -> dict:  # fmt: skip
    decoder.train()
    set_training(net, True)
    epoch = state["epoch"]
    gen = torch.Generator().manual_seed(
        config.seed * 1000 + epoch + (500 if stage == "scst" else 0)
    )
    sample_gen = torch.Generator(device=data.pixels.device).manual_seed(config.seed * 7919 + epoch)
    order = torch.randperm(len(data.pixels), generator=gen)
    total_xe_steps = steps_per_epoch * config.epochs
    losses, rewards = [], []
    bar = progress_bar(range(0, len(order), config.batch_images), desc=f"{stage} epoch {epoch + 1}",
               disable=not config.progress, mininterval=5.0)  # fmt: skip
    for start in bar:
        rows = order[start : start + config.batch_images]
        for group in optimizer.param_groups:
            base = (
                warmup_cosine_lr(state["step"], total_xe_steps, config, config.lr)
                if stage == "xe"
                else config.scst_lr
            )
            group["lr"] = base * group["lr_scale"]
        with autocast:
            loss, reward = _step_loss(
                stage, decoder, net, data, rows, vocab, cider, config, gen, sample_gen, swap
            )
        check_finite(value := float(loss.detach()), f"{stage} epoch {epoch + 1}, step {len(losses) + 1}",
                     config.out, *stage_rate(stage, config))  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(
                [p for g in optimizer.param_groups for p in g["params"]], config.grad_clip
            )
        optimizer.step()
        state["step"] += 1
        losses.append(value)
        if reward is not None:
            rewards.append(reward)
        bar.set_postfix_str(
            f"loss {np.mean(losses[-50:]):.3f}"
            + (f" reward {np.mean(rewards[-50:]):.3f}" if rewards else ""),
            refresh=False,
        )
    state["epoch"] = epoch + 1
    record = {"stage": stage, "epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4),
              "lr": optimizer.param_groups[0]["lr"]}  # fmt: skip
    if rewards:
        record["reward"] = round(float(np.mean(rewards)), 4)
    return record


def _save_last(out: Path, decoder, net, vocab, optimizer, state: dict) -> None:
    def write(folder: Path) -> None:
        save_captioner(decoder, net, vocab, folder, fp16=False, extra={"stage": state["stage"]})

    run_folder.write_last(out, write, optimizer, state)


# -- command line ---------------------------------------------------------------------------------
OPTION_HELP = {
    "encoder": "EfficientNet-Lite variant to train with the decoder",
    "encoder_weights": "start the encoder from this state-dict file (.safetensors or .pth); default: "
    "the installed ImageNet weights",
    "init_from": "start the decoder (and take the vocabulary and endings) from this checkpoint",
    "vocab_from": "take the vocabulary and endings of this checkpoint (to ensemble with it)",
    "epochs": "cross-entropy epochs",
    "scst_epochs": "self-critical (CIDEr-D reward, end word included) epochs after cross-entropy",
    "batch_images": "photos per step",
    "captions_per_image": "reference captions per photo and cross-entropy step",
    "lr": "peak decoder learning rate of the cross-entropy stage (AdamW)",
    "encoder_lr_ratio": "the encoder's learning rate as a multiple of the decoder's",
    "scst_lr": "decoder learning rate of the self-critical stage",
    "min_lr_ratio": "cosine decay from lr down to lr x this over the cross-entropy epochs",
    "warmup_steps": "linear learning-rate warm-up steps",
    "weight_decay": "AdamW weight decay (matrices and kernels only)",
    "grad_clip": "gradient norm clipping; 0 = none",
    "label_smoothing": "cross-entropy label smoothing",
    "attention_lambda": "weight of the doubly stochastic attention regulariser",
    "min_count": "words seen fewer times become <unk> (a vocabulary built here)",
    "max_caption_length": "training captions are cut to this many words",
    "crop": "smallest random crop, as a fraction of the photo's side; 1 = no cropping",
    "flip": "mirror half the photos in the cross-entropy stage (left/right swapped in captions)",
    "scst_samples": "sampled captions per photo in the self-critical stage",
    "scst_top_k": "sample among the k likeliest words; 0 = the full distribution",
    "scst_max_length": "longest sampled caption in the self-critical stage",
    "val_beam": "beam width for validation",
    "patience": "stop a stage after this many epochs without a better validation CIDEr-D",
    "seed": "random seed for batch order, augmentation and sampling",
    "time_limit": "seconds for the whole run (no epoch starts that would not end in time); 0 = none",
    "xe_time_share": "at most this share of --time-limit goes to cross-entropy",
    "max_train_images": "use at most this many training photos; 0 = all (smoke tests)",
    "max_val_images": "use at most this many validation photos; 0 = all",
    "workers": "threads decoding photos",
}


if __name__ == "__main__":  # the tool itself lives in capsight._cli.tools.end_to_end
    from capsight._cli.tools.end_to_end import main

    raise SystemExit(main())
