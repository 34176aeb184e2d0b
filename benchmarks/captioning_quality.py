"""Caption quality and speed: every registered captioner x decoding, on photos never trained on.

    nice -n 15 .venv/bin/python benchmarks/captioning_quality.py                 # print the tables
    nice -n 15 .venv/bin/python benchmarks/captioning_quality.py --output docs/captioning_benchmarks.md
    .venv/bin/python benchmarks/captioning_quality.py --captioners labels --limit 50   # quick look

Data (``../shared/data``): the Flickr8k test split (875 photos, squashed to 224x224 like the
training photos; ``flickr8k/splits.json``) and 80 COCO val2017 photos (``captioned/``),
5 human captions each. Scores are pycocoevalcap's BLEU-1/4, METEOR, ROUGE-L and CIDEr with its
Java PTB tokenizer (a note says so when the Python fallback had to be used).

Each dataset's photos are decoded and encoded once per encoder, and those EncodedImages are
shared by every captioner and decoding. Speed is measured separately, end to end from decoded
photos: resize + EfficientNet encoder + captioner, batches of 32, after one warm-up batch, best
of three passes.
"images/s" is wall-clock on ``--threads`` torch threads (2 = the target machine); other work on
the machine lowers it, so the 1-minute load average is printed beside it. "images per
CPU-second" reruns the same work on one thread and divides by the CPU time it used: that moves
little with load (with several threads, a busy machine inflates CPU time through spinning
threads), and it is the single-core rate on an idle machine; two idle cores reach up to twice it.

"human" rows score the first human caption of each photo against the other four: a rough
ceiling, not comparable point for point (models are scored against all five references).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# As the capsight command sets it (capsight._cli.main), before torch loads: spinning OpenMP
# threads make inference 10x slower on a busy machine and burn twice the CPU on an idle one.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch

from capsight.captioning.base import (
    DecodingOptions,
    available_captioners,
    create_captioner,
    default_captioner_name,
)
from capsight.errors import ModelNotFound
from capsight.io.images import load_image
from capsight.training.evaluate import encoder_for, resolved_decoding
from capsight.training.evaluation import score_captions
from capsight.training.ptb_tokenizer import java_available
from capsight.training.readers import read_corpus
from capsight.training.tracking import code_version
from capsight.vision.encoder import EncodedImages

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_description  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
DECODINGS: dict[str, DecodingOptions | None] = {
    "default": None,  # the captioner's own (a shipped model's config.json may name one)
    "greedy": DecodingOptions(method="greedy"),
    "beam 3": DecodingOptions(method="beam", beam_width=3),
    "beam 5": DecodingOptions(method="beam", beam_width=5),
}
COLUMNS = ("BLEU-1", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")


def load_datasets(data: Path, limit: int | None) -> dict[str, tuple[list[str], dict, list]]:
    """name -> (keys, references, decoded photos)."""
    flickr = read_corpus(data / "flickr8k").split("test")
    coco = list(read_corpus(data / "captioned").images.values())
    out = {}
    for name, records in (("Flickr8k test", flickr), ("COCO val", coco)):
        records = records[:limit] if limit else records
        name = name if name == "Flickr8k test" else f"{name} ({len(records)})"  # "COCO val (80)"
        photos = [load_image(r.path) for r in records]
        out[name] = ([r.key for r in records], {r.key: list(r.captions) for r in records}, photos)
    return out


def caption_all(captioner, encoded: EncodedImages, decoding: DecodingOptions, chunk: int = 64):
    texts = []
    for start in range(0, len(encoded), chunk):
        part = encoded.select(slice(start, start + chunk))
        texts += [r.text for r in captioner.caption(part, decoding)]
    return texts


def images_per_second(
    encoder, captioner, decoding, photos, batch: int = 32, repeats: int = 3
) -> tuple[float, float]:
    """(images per wall-clock second, images per CPU-second of this process), best of repeats."""
    captioner.caption(encoder.encode(photos[:batch], batch_size=batch), decoding)  # warm-up
    walls, cpus = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        for first in range(0, len(photos), batch):
            encoded = encoder.encode(photos[first : first + batch], batch_size=batch)
            captioner.caption(encoded, decoding)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    return len(photos) / min(walls), len(photos) / min(cpus)


def describe(decoding: DecodingOptions) -> str:
    if decoding.method == "beam":
        return f"beam {decoding.beam_width}"
    return decoding.method


def fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def run(args: argparse.Namespace) -> str:
    torch.set_num_threads(args.threads)
    use_java = False if args.no_java else None
    names = args.captioners or available_captioners()
    captioners = {}
    skipped = []
    for name in names:
        try:
            captioners[name] = create_captioner(name)
        except ModelNotFound as error:
            skipped.append(f"{name} ({error})")
        except TypeError:  # a factory that needs options, like "checkpoint"
            skipped.append(f"{name} (needs options; pass --checkpoint PATH for a checkpoint)")
    for path in args.checkpoint or []:
        captioners[f"checkpoint:{Path(path).name}"] = create_captioner("checkpoint", path=path)
    default_name = default_captioner_name()
    datasets = load_datasets(args.data, args.limit)

    quality_rows, speed_rows, notes = [], [], set()
    for data_name, (keys, refs, photos) in datasets.items() if not args.speed_only else ():
        human = score_captions(
            {k: refs[k][1:] for k in keys}, {k: refs[k][0] for k in keys}, use_java=use_java
        )
        quality_rows.append(("human (1 vs other 4)", "-", data_name, len(keys), human))
        encoded_by_encoder: dict[tuple, EncodedImages] = {}
        for name, captioner in captioners.items():
            encoder = encoder_for(captioner)
            if (encoder.name, encoder.resolution) not in encoded_by_encoder:
                encoded = encoder.encode(photos, batch_size=32)
                encoded_by_encoder[encoder.name, encoder.resolution] = encoded
            scored: dict[DecodingOptions, dict] = {}  # the default often is one of the others
            for decoding_name, decoding in DECODINGS.items():
                resolved = resolved_decoding(captioner, decoding)
                if decoding is None:
                    decoding_name = f"default: {describe(resolved)}"
                if resolved not in scored:
                    encoded = encoded_by_encoder[encoder.name, encoder.resolution]
                    texts = caption_all(captioner, encoded, resolved)
                    scored[resolved] = score_captions(
                        refs, dict(zip(keys, texts, strict=True)), use_java=use_java
                    )
                scores = scored[resolved]
                if "fallback" in scores:
                    notes.add(str(scores["fallback"]))
                quality_rows.append((name, decoding_name, data_name, len(keys), scores))
                print(f"{name:>12} {decoding_name:>7} {data_name}: CIDEr {scores['CIDEr']:.3f}",
                      file=sys.stderr, flush=True)  # fmt: skip

    flickr_photos = datasets["Flickr8k test"][2][: args.speed_images]
    load_before = os.getloadavg()[0]
    for name, captioner in captioners.items() if flickr_photos else ():
        encoder = encoder_for(captioner)
        for decoding_name, decoding in DECODINGS.items():
            if decoding is None:
                decoding = resolved_decoding(captioner, None)
                if decoding in DECODINGS.values():
                    continue  # the default is one of the named decodings: timed under its name
                decoding_name = f"default: {describe(decoding)}"
            torch.set_num_threads(args.threads)
            speed, _ = images_per_second(encoder, captioner, decoding, flickr_photos)
            torch.set_num_threads(1)
            _, per_cpu_second = images_per_second(encoder, captioner, decoding, flickr_photos)
            speed_rows.append((name, decoding_name, speed, per_cpu_second, os.getloadavg()[0]))
    torch.set_num_threads(args.threads)

    lines = ["| captioner | decoding | photos | images | " + " | ".join(COLUMNS) + " |",
             "|---|---|---|---:|" + "---:|" * len(COLUMNS)] if quality_rows else []  # fmt: skip
    for name, decoding_name, data_name, n, scores in quality_rows:
        cells = [fmt(scores.get(c, "n/a")) for c in COLUMNS]
        lines.append(
            f"| {name} | {decoding_name} | {data_name} | {n} | " + " | ".join(cells) + " |"
        )
    if speed_rows:
        lines += [""] * bool(lines) + [f"Speed: {len(flickr_photos)} Flickr8k test photos (decoded), batches of 32, "
                  "encoder included.", "",
                  f"| captioner | decoding | images/s ({args.threads} threads) "
                  "| images per CPU-second (1 thread) | load avg (1 min) |",
                  "|---|---|---:|---:|---:|"]  # fmt: skip
    for name, decoding_name, speed, per_cpu_second, load in speed_rows:
        lines.append(
            f"| {name} | {decoding_name} | {speed:.1f} | {per_cpu_second:.1f} | {load:.1f} |"
        )
    lines.append("")
    lines.append(f"Default captioner here: `{default_name}`. "
                 f"Load average before the speed runs: {load_before:.1f}.")  # fmt: skip
    if speed_rows and load_before > (os.cpu_count() or 1):
        lines.append(
            f"The machine was not idle (load average {load_before:.1f} on {os.cpu_count()} "
            "CPUs): wall-clock rates are below an idle machine's; the CPU-second column is the "
            "steadier guide."
        )
    if skipped:
        lines.append("Skipped: " + "; ".join(skipped) + ".")
    for note in sorted(notes):
        lines.append(f"Scoring fallback: {note}.")
    return "\n".join(lines)


DOC_HEADER = """# Captioning benchmarks

Quality of every registered captioner with three decodings on photos it never trained on, and
its speed. Produced by `benchmarks/captioning_quality.py` (its docstring explains the method);
regenerate this page with:

```
{command}
```

- Machine: {machine}; Java {java} (pycocoevalcap's PTB tokenizer and METEOR).
- Code: {commit}; the trained captioners are the checkpoints installed at that commit.
- BLEU, METEOR and ROUGE-L are fractions; CIDEr is on its 0-10 scale (CIDEr-D, as
  pycocoevalcap computes it).

"""

DOC_NOTES = """
## Reading the table

- `labels` names ImageNet classes in a template ("a photo of a golden retriever"); it has no
  language model, so the decoding options do not change it and its rows are identical.
  It is the floor any trained captioner must clear.
- The human row scores one human caption against the other four: it shows how much people agree
  in these metrics. Models are scored against all five references, which raises BLEU and CIDEr
  compared with a four-reference score, so a model can exceed the human row.
- Speed depends on what else runs on the machine; compare rows taken in the same run.
- When Java is missing, captions are tokenized by a Python approximation of the PTB tokenizer
  (same tokens for 40,227 of the 40,230 Flickr8k + COCO captions here) and METEOR is skipped;
  the page then says so under the tables.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    parser.add_argument("--captioners", nargs="*", help="default: every registered captioner")
    parser.add_argument("--checkpoint", action="append", help="also a checkpoint folder (repeat)")
    parser.add_argument("--limit", type=int, help="only the first N photos of each dataset "
                        "(the speed runs too: they time at most N photos)")  # fmt: skip
    parser.add_argument("--speed-images", type=int, default=96,
                        help="photos the speed runs time (at most --limit); 0 skips them")  # fmt: skip
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the speed runs")
    parser.add_argument("--no-java", action="store_true", help="use the Python tokenizer")
    parser.add_argument("--speed-only", action="store_true", help="skip the quality table")
    parser.add_argument("--output", type=Path, help="also write the markdown page here")
    args = parser.parse_args(argv)
    if not (args.data / "flickr8k").is_dir() or not (args.data / "captioned").is_dir():
        parser.error(f"{args.data}: needs flickr8k/ and captioned/ (see ../shared/data)")
    tables = run(args)
    print(tables)
    if args.output:
        command = "nice -n 15 .venv/bin/python benchmarks/captioning_quality.py " + " ".join(
            a for a in (argv if argv is not None else sys.argv[1:])
        )
        machine = f"{cpu_description()}, {os.cpu_count()} CPUs, torch {torch.__version__}"
        version = code_version()
        commit = version.get("mlflow.source.git.commit", "unknown")[:10]
        if version.get("capsight.git_dirty") == "true":
            commit += " (with uncommitted changes)"
        header = DOC_HEADER.format(
            command=command.strip(),
            machine=machine,
            commit=commit,
            java="present" if java_available() else "absent",
        )
        args.output.write_text(header + "## Results\n\n" + tables + "\n" + DOC_NOTES)


if __name__ == "__main__":
    main()
