"""Package trained checkpoints for shipping: fp16 weights, config with the measured decoding.

    python -m capsight.training.export runs/sat/best --to src/capsight/models/show-attend-tell \\
        --decoding beam:3

One checkpoint becomes ``model.safetensors`` + ``config.json`` + ``vocab.json``; several become
an ensemble: sub-folders ``m0``, ``m1``, ... and an ``ensemble.json`` with the decoding. The
``"decoding"`` entry is what ``TrainedCaptioner`` uses when a caller passes no options.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

from capsight.captioning.base import DecodingOptions
from capsight.captioning.checkpoint import CONFIG, load_checkpoint, save_checkpoint


def export_model(
    sources: list[str | Path], dest: str | Path, decoding: DecodingOptions, note: dict | None = None
) -> Path:
    dest = Path(dest)
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    decoding_json = {k: v for k, v in dataclasses.asdict(decoding).items() if k != "seed"}
    folders = [dest] if len(sources) == 1 else [dest / f"m{i}" for i in range(len(sources))]
    for source, folder in zip(sources, folders, strict=True):
        model, vocab, raw = load_checkpoint(source)
        extra = {**raw.get("training", {}), **(note or {}), "source": str(source)}
        save_checkpoint(model, vocab, folder, fp16=True, extra=extra)
        if len(sources) == 1:
            config = json.loads((folder / CONFIG).read_text())
            config["decoding"] = decoding_json
            (folder / CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    if len(sources) > 1:
        (dest / "ensemble.json").write_text(
            json.dumps({"members": [f.name for f in folders], "decoding": decoding_json}, indent=2) + "\n"
        )
    return dest


def main(argv: list[str] | None = None) -> None:
    from capsight.training.cached_eval import parse_decoding

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+")
    parser.add_argument("--to", required=True)
    parser.add_argument("--decoding", default="beam:3")
    args = parser.parse_args(argv)
    print(export_model(args.checkpoints, args.to, parse_decoding(args.decoding)))


if __name__ == "__main__":
    main()
