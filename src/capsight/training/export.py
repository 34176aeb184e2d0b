"""Package trained checkpoints for shipping: fp16 weights, config with the measured decoding.

    python -m capsight.training.export runs/sat/best --to src/capsight/models/show-attend-tell \\
        --decoding beam:3

One checkpoint becomes ``model.safetensors`` + ``config.json`` + ``vocab.json``; several become
an ensemble: sub-folders ``m0``, ``m1``, ... and an ``ensemble.json`` with the decoding. The
``"decoding"`` entry is what ``TrainedCaptioner`` uses when a caller passes no options.
``--also FOLDER`` (relative to ``--to``) puts an already exported model first in the ensemble
without copying it (the pair shipped until 2026-12-03 was built that way). The shipped pair:

    python -m capsight.training.export runs/pair-scst/best/m0 runs/e2e-lite2/best \
        --to src/capsight/models/show-attend-tell-pair --decoding beam:4
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from capsight.captioning.base import DecodingOptions
from capsight.captioning.checkpoint import (
    CONFIG,
    checkpoint_folder,
    load_checkpoint,
    save_checkpoint,
)
from capsight.errors import InvalidParameter, ModelNotFound


def export_model(
    sources: list[str | Path], dest: str | Path, decoding: DecodingOptions, note: dict | None = None,
    also: list[str] = (),
) -> Path:  # fmt: skip
    dest = Path(dest)
    single = len(sources) == 1 and not also
    # Every source is loaded and checked before ``dest`` (perhaps a shipped model) is replaced;
    # a run folder stands for its best/, where its own encoder lies too.
    folders_in = [checkpoint_folder(source) for source in sources]
    loaded = [load_checkpoint(source) for source in folders_in]
    for source, (_, _, raw) in zip(folders_in, loaded, strict=True):
        if (own := raw.get("encoder_weights")) and not (source / own).is_file():
            raise ModelNotFound(f"{source / own}: the checkpoint's own encoder is missing; "
                                "the checkpoint is incomplete")  # fmt: skip
    if not single:
        check_shared_vocabulary(sources, [v for _, v, _ in loaded], dest, also)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    decoding_json = {k: v for k, v in dataclasses.asdict(decoding).items() if k != "seed"}
    folders = [dest] if single else [dest / f"m{i}" for i in range(len(sources))]
    for source, within, folder, (model, vocab, raw) in zip(
        sources, folders_in, folders, loaded, strict=True
    ):
        extra = {**raw.get("training", {}), **(note or {}), "source": str(source)}
        save_checkpoint(model, vocab, folder, fp16=True, extra=extra)
        if own := raw.get("encoder_weights"):  # its own fine-tuned encoder, in float16 too
            from capsight.training.end_to_end import load_encoder, save_encoder

            save_encoder(load_encoder(raw["encoder"], str(within / own)), folder, fp16=True)
        if single:
            config = json.loads((folder / CONFIG).read_text())
            config["decoding"] = decoding_json
            (folder / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    if not single:
        members = [*also, *(f.name for f in folders)]
        (dest / "ensemble.json").write_text(
            json.dumps({"members": members, "decoding": decoding_json}, indent=2) + "\n"
        )
    return dest


def check_shared_vocabulary(sources, vocabularies, dest: Path, also) -> None:
    """Ensemble members average their word distributions, so they must share one vocabulary."""
    from capsight.captioning.checkpoint import load_vocabulary

    named = [(str(dest / a), load_vocabulary(dest / a)) for a in also]
    named += [(str(s), v) for s, v in zip(sources, vocabularies, strict=True)]
    first_name, first = named[0]
    for name, vocab in named:
        if vocab is None:
            raise InvalidParameter(f"{name}: no vocab.json; the checkpoint is incomplete")
        if tuple(vocab.itos) != tuple(first.itos):
            raise InvalidParameter(
                f"{name}: its vocabulary differs from {first_name}'s, and ensemble members must "
                f"share one; retrain it on that one (end_to_end: --vocab-from {first_name})"
            )


if __name__ == "__main__":  # the tool itself lives in capsight._cli.tools.export
    from capsight._cli.tools.export import main

    raise SystemExit(main())
