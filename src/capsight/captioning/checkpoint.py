"""Caption-model checkpoints: ``model.safetensors`` + ``config.json`` + ``vocab.json`` (+
``endings.json``, which words may end a caption: ``captioning.endings``).

    >>> save_checkpoint(model, vocab, "runs/sat/best", fp16=True)
    >>> model, vocab, config = load_checkpoint("runs/sat/best")

No pickled modules: weights are safetensors, the architecture is rebuilt from the JSON config
(``build_model``), the vocabulary is JSON. ``fp16`` halves the file for shipping; loading always
returns a float32 model.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from capsight.captioning.endings import Endings
from capsight.captioning.model import CaptionModel, build_model, config_from_dict
from capsight.captioning.rules import function_word_ids, not_first_word_ids
from capsight.captioning.vocabulary import Vocabulary
from capsight.errors import ModelNotFound
from capsight.io.new_files import write_whole
from capsight.io.tensor_files import save_tensors

WEIGHTS, CONFIG, VOCAB = "model.safetensors", "config.json", "vocab.json"


def save_checkpoint(
    model: CaptionModel,
    vocab: Vocabulary | None,
    folder: str | os.PathLike,
    fp16: bool = False,
    extra: dict | None = None,
) -> Path:
    """Write weights, config (plus ``extra`` facts such as metrics), vocabulary and the model's
    ``endings`` (when it has them) to ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous()
        state[name] = tensor.half() if fp16 and tensor.is_floating_point() else tensor
    save_tensors(_untie(state), folder / WEIGHTS, metadata={"format": "pt"})
    config = dataclasses.asdict(model.config)
    if extra:
        config["training"] = extra
    config_text = json.dumps(config, indent=2) + "\n"
    write_whole(folder / CONFIG, lambda file: file.write(config_text.encode()))
    if vocab is not None:
        vocab.save(folder / VOCAB)
    if model.endings is not None:
        model.endings.save(folder)
    return folder


def _untie(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """safetensors refuses shared storage; tied weights are saved once per name (clones)."""
    seen: dict[int, str] = {}
    out = {}
    for name, tensor in state.items():
        ptr = tensor.data_ptr()
        out[name] = tensor.clone() if ptr in seen and tensor.numel() else tensor
        seen.setdefault(ptr, name)
    return out


# What `capsight train` writes in a run folder besides best/ (capsight.training.run_folder
# knows a run by them too).
RUN_MARKERS = ("train_config.json", "run_config.json", "metrics.jsonl", "last", "last.new")


def holds_checkpoint(folder: Path) -> bool:
    """Whether ``folder`` holds a saved model: its ``config.json`` (written last), or its
    members' (an ensemble SCST run's best/: m0/, m1/)."""
    if (folder / CONFIG).is_file():
        return True
    return folder.is_dir() and any((p / CONFIG).is_file() for p in folder.iterdir())


def checkpoint_folder(folder: str | os.PathLike) -> Path:
    """The checkpoint ``folder`` names: itself, or the ``best`` of a ``capsight train`` run
    folder (which has no ``config.json`` of its own)."""
    folder = Path(folder)
    if (folder / CONFIG).is_file():
        return folder
    best = folder / "best"
    if holds_checkpoint(best):  # (an ensemble SCST run's best/ holds its members: m0/, m1/)
        return best
    if any((folder / name).exists() for name in RUN_MARKERS):
        # A run folder stands for its best/ only: its last/ is another epoch's model.
        state = "has no config.json (damaged)" if best.is_dir() else "is missing"
        last = folder / "last"
        other = (f"name another checkpoint, e.g. {last} (the last finished epoch)"
                 if (last / CONFIG).is_file() else "no epoch of it has finished")  # fmt: skip
        raise ModelNotFound(f"{folder}: a training run whose best/ checkpoint {state}; {other}")
    return folder


def read_config(folder: str | os.PathLike) -> dict:
    """The checkpoint's ``config.json``; a missing, unreadable or damaged one is one clear line.
    A run folder stands for its ``best``, as everywhere (``checkpoint_folder``)."""
    folder = checkpoint_folder(folder)
    path = folder / CONFIG
    if not path.is_file():
        raise ModelNotFound(f"{folder}: no {CONFIG}; not a capsight captioner checkpoint")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ModelNotFound(f"{path}: not valid JSON; the checkpoint is damaged, retrain or "
                            "reinstall it") from None  # fmt: skip
    if not isinstance(raw, dict) or "architecture" not in raw:
        raise ModelNotFound(f"{path}: not a captioner's config (a JSON object naming its "
                            "architecture); the checkpoint is damaged, retrain or reinstall it")  # fmt: skip
    return raw


def load_checkpoint(
    folder: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[CaptionModel, Vocabulary | None, dict]:
    """Rebuild the model from ``config.json`` and load its weights (float32, eval mode); a run
    folder stands for its ``best``."""
    folder = checkpoint_folder(folder)
    raw = read_config(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise ModelNotFound(f"{folder}: no {WEIGHTS}; the checkpoint is incomplete")
    try:
        config = config_from_dict(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelNotFound(f"{folder / CONFIG}: does not describe a captioner ({exc!s:.80}); the "
                            "checkpoint is damaged, retrain or reinstall it") from None  # fmt: skip
    try:
        model = build_model(config)
    # sizes the layers refuse ("vocab_size": 0)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ModelNotFound(f"{folder / CONFIG}: does not describe a captioner ({exc!s:.80}); the "
                            "checkpoint is damaged, retrain or reinstall it") from None  # fmt: skip
    try:
        stored = load_file(str(weights))
    except (SafetensorError, OSError):
        raise ModelNotFound(f"{weights}: not a readable safetensors file (cut short, or overwritten); "
                            "the checkpoint is damaged, retrain or reinstall it") from None  # fmt: skip
    _check_weights(stored, model.state_dict(), weights)
    state = {k: v.float() if v.is_floating_point() else v for k, v in stored.items()}
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a page of "size mismatch for ..." lines: the first says enough
        first = next(
            (line.strip() for line in str(exc).splitlines() if "size mismatch" in line), ""
        )
        raise ModelNotFound(f"{folder}: weights do not match {CONFIG} ({first[:160]}); the "
                            "checkpoint is damaged") from None  # fmt: skip
    if missing or unexpected:
        raise ModelNotFound(
            f"{folder}: weights do not match config (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    model.endings = Endings.load(folder)
    vocab = load_vocabulary(folder)
    if hasattr(vocab, "itos"):  # the no-repeated-phrase rule, whole alternatives (captioning.rules)
        model.function_ids = function_word_ids(vocab.itos)
        model.not_first_ids = not_first_word_ids(vocab.itos)
    size = raw.get("vocab_size")
    if isinstance(vocab, Vocabulary) and isinstance(size, int) and len(vocab) != size:
        raise ModelNotFound(
            f"{folder}: {VOCAB} has {len(vocab)} words but the model was trained with {size}; "
            "the checkpoint is damaged, retrain or reinstall it"
        )
    return model.to(device).eval(), vocab, raw


def _check_weights(
    stored: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], path: Path
) -> None:
    """ModelNotFound for weights that are not numbers, or not of the kind the model holds:
    overwritten with NaN, or saved as integers, they loaded without a word and captioned every
    photo "the"."""
    for key, value in stored.items():
        wanted = expected.get(key)
        if wanted is None:  # (named by load_state_dict's own check)
            continue
        if value.is_floating_point() != wanted.is_floating_point():
            raise ModelNotFound(f"{path}: {key} is stored as {str(value.dtype).removeprefix('torch.')}, "
                                f"not as {str(wanted.dtype).removeprefix('torch.')}; the checkpoint is "
                                "damaged, retrain or reinstall it")  # fmt: skip
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ModelNotFound(f"{path}: {key} holds values that are not numbers (NaN or "
                                "infinite); the checkpoint is damaged, retrain or reinstall it")  # fmt: skip


def load_vocabulary(folder: str | os.PathLike):
    """The checkpoint's word vocabulary, or its Hugging Face tokenizer for pretrained GPT-2."""
    path = Path(folder) / VOCAB
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        hf = isinstance(data, dict) and str(data.get("format", "")).startswith("hf-tokenizer")
    except (ValueError, UnicodeDecodeError):
        raise ModelNotFound(f"{path}: not valid JSON; the checkpoint is damaged, retrain or "
                            "reinstall it") from None  # fmt: skip
    if hf:
        from capsight.captioning.prefix_gpt2 import TokenizerVocabulary

        return TokenizerVocabulary.load(path)
    return Vocabulary.load(path)
