"""``capsight eval``: score a captioner with BLEU-1..4, METEOR, ROUGE-L and CIDEr (pycocoevalcap).

    $ capsight eval ../shared/data/flickr8k --split test
    $ capsight eval dataset_flickr8k.json --images Flicker8k_Dataset --split test   # as train takes it
    $ capsight eval ../shared/data/captioned --captions ../shared/data/captioned/captions.json \
          --model show-and-tell --greedy --json
    $ capsight eval ../shared/data/flickr8k --split test --model runs/mine/best --against default

Java (for the PTB tokenizer and METEOR) is used when present; without it a Python tokenizer is
used, METEOR is skipped, and the result says so under ``fallback``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "eval",
        help="score a captioner against human captions (BLEU, METEOR, ROUGE-L, CIDEr)",
        description="Caption a dataset's photos and score the captions against its references.",
    )
    p.add_argument("data", metavar="DATA",
                   help="a dataset folder (photos with captions.json, or the Flickr8k text files), "
                        "or a captions file in any format `capsight train` reads (Karpathy, COCO, "
                        "Flickr8k token file, Conceptual Captions TSV) with --images")  # fmt: skip
    p.add_argument(
        "--images",
        metavar="DIR",
        help="the photo folder of a captions file given as DATA, where it does not say",
    )
    p.add_argument(
        "--captions",
        help="with a folder of photos as DATA (the photos in DATA/images when it has one): its "
        "captions file (default: DATA/captions.json, or the Flickr8k text files there); Karpathy, "
        "COCO and Flickr8k formats are read too",
    )
    p.add_argument(
        "--split",
        help="split to score, e.g. test (default: every photo); from "
        "splits.json, or the split the Karpathy, COCO or Flickr8k files name",
    )
    p.add_argument("--model", default="default", help="captioner name (see `capsight models`)")
    p.add_argument("--limit", type=int, help="score only the first N photos")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--greedy", action="store_true", help="greedy decoding")
    group.add_argument(
        "--beam",
        type=int,
        help="beam search of this width (default: the model's own decoding, "
        "beam 4 for the photo default, beam 3 for the other shipped ones)",
    )
    p.add_argument("--bootstrap", type=int, metavar="ROUNDS",
                   help="add a 95%% interval to each score, from ROUNDS draws of the photos "
                        "with replacement (100 to 10,000, e.g. 1000; METEOR gets none); with "
                        "--against, the number of paired draws (default 1000; 0 for "
                        "none)")  # fmt: skip
    p.add_argument("--against", metavar="MODEL",
                   help="also caption the photos with MODEL and compare: the difference of each "
                        "score (--model minus MODEL), its 95%% interval and the share of "
                        "--bootstrap draws (default 1000) --model wins")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print the scores as JSON")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return p


def run(args: argparse.Namespace) -> int:
    from capsight._cli.main import error_line
    from capsight._cli.progress_bar import ProgressBar
    from capsight.captioning.base import DecodingOptions
    from capsight.training.evaluate import evaluate_captioner, few_photos_note

    decoding = None
    if args.greedy:
        decoding = DecodingOptions(method="greedy")
    elif args.beam is not None:
        decoding = DecodingOptions(method="beam", beam_width=args.beam)
    images, captions = _dataset(args)
    if args.against:
        return _compare(args, images, captions, decoding)
    _say_ignored_decoding(args, [args.model])
    with warnings.catch_warnings(), ProgressBar(enabled=ProgressBar.wanted(args.quiet)) as progress:
        warnings.simplefilter("ignore", RuntimeWarning)  # photos left out: one line below
        result = evaluate_captioner(
            args.model,
            images,
            captions,
            split=args.split,
            decoding=decoding,
            limit=args.limit,
            progress=progress,
            bootstrap=args.bootstrap or 0,
        )
    for note in [*_notes(result), *few_photos_note(result["images"], args.bootstrap or 0)]:
        print(error_line(note, "note"), file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    intervals = result.get("intervals", {})
    for key, value in result.items():
        if key == "split" and value is None:
            value = "all photos"
        if key in intervals:
            low, high = intervals[key]
            print(f"{key:>10}  {value:.4f}  (95%: {low:.4f} - {high:.4f})")
        elif key == "seconds":  # reading, encoding and decoding the photos; scoring not counted
            print(f"{'captioning':>10}  {value:.1f} s")
        elif key == "decoding" and value:
            print(f"{key:>10}  {_decoding_text(value)}")
        elif key == "bootstrap":  # (METEOR is one corpus score, not a sum over photos)
            print(f"{key:>10}  {value['draws']:,} draws of the photos, 95% intervals"
                  f"{'; none for METEOR' if 'METEOR' in result else ''}")  # fmt: skip
        elif isinstance(value, float):
            print(f"{key:>10}  {value:.4f}")
        elif not isinstance(value, (list, dict)):
            print(f"{key:>10}  {value}")
    return 0


def _dataset(args: argparse.Namespace) -> tuple[str | None, str]:
    """(photo folder or None, captions file or folder) for ``read_corpus``, from DATA and the
    flags: a captions file with ``--images`` (as ``capsight train`` takes it), or a folder of
    photos with its captions there or named by ``--captions``."""
    from capsight.errors import InputNotFound, InvalidParameter

    data = Path(args.data)
    if not data.exists():
        raise InputNotFound(f"{data}: no such dataset folder or captions file")
    if data.is_file():
        if args.captions:
            raise InvalidParameter(f"{data}: a captions file already; --captions names one for a "
                                   "folder of photos given as DATA")  # fmt: skip
        return args.images, str(data)
    if args.images:
        raise InvalidParameter(f"--images {args.images}: is for a captions file given as DATA; "
                               f"{data} is a folder (name its captions with --captions)")  # fmt: skip
    if args.captions:  # the photos in DATA/images, as a dataset folder holds them, or in DATA
        return str(data / "images" if (data / "images").is_dir() else data), args.captions
    # else the folder: read_corpus finds the Flickr8k text files, or says
    default = data / "captions.json"
    return str(data), str(default) if default.is_file() else str(data)


def _compare(args: argparse.Namespace, images: str | None, captions: str, decoding) -> int:
    from capsight._cli.main import error_line
    from capsight._cli.progress_bar import ProgressBar
    from capsight.captioning.base import default_captioner_name
    from capsight.captioning.facade import resolve_captioner
    from capsight.errors import InvalidParameter, ModelNotFound
    from capsight.training.confidence import INTERVAL_METRICS
    from capsight.training.evaluate import compare_captioners, few_photos_note

    rounds = 1000 if args.bootstrap is None else args.bootstrap  # 0: no draws, as for plain eval
    try:  # which of the two names is wrong, before either captions a photo
        _, against = resolve_captioner(args.against)
    except ModelNotFound as exc:
        raise ModelNotFound(f"--against: {exc}") from None
    model = default_captioner_name() if args.model == "default" else args.model
    if _same_captioner(against, model):  # (it had captioned every photo twice: a table of 0s)
        raise InvalidParameter(f"--against {args.against} is --model {args.model}: name "
                               "another captioner to compare with")  # fmt: skip
    _say_ignored_decoding(args, [args.model, args.against])
    with warnings.catch_warnings(), ProgressBar(enabled=ProgressBar.wanted(args.quiet)) as progress:
        warnings.simplefilter("ignore", RuntimeWarning)  # photos left out: one line below
        result = compare_captioners(
            args.against,
            args.model,
            images,
            captions,
            args.split,
            decoding,
            rounds=rounds,
            limit=args.limit,
            progress=progress,
        )
    baseline, challenger, comparison = (result[k] for k in ("baseline", "challenger", "comparison"))
    notes = [n for side in (baseline, challenger) for n in _notes(side)]
    notes += [f"scores use a fallback: {side['fallback']}"
              for side in (baseline, challenger) if "fallback" in side]  # fmt: skip
    if "METEOR" in baseline and "METEOR" in challenger and "METEOR" not in comparison:
        notes.append("METEOR is not compared: it is scored on each captioner's photos, and one "
                     "read photos the other could not")  # fmt: skip
    notes += few_photos_note(result["photos"], rounds)
    for note in dict.fromkeys(notes):  # each once
        print(error_line(note, "note"), file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0
    # (each with its decoding: --greedy had not been said anywhere but in --json)
    print(f"--model {challenger['captioner']} ({_decoding_text(challenger.get('decoding'))}) "
          f"against --against {baseline['captioner']} ({_decoding_text(baseline.get('decoding'))}): "
          f"{result['photos']} photos{', split ' + args.split if args.split else ''}, "
          f"{rounds or 'no'} paired draws")  # fmt: skip
    print(f"{'metric':>8}  {'--against':>9}  {'--model':>9}  {'difference':>10}"
          + (f"  {'95% interval':^18}  model wins  ties" if rounds else ""))  # fmt: skip
    for metric in [m for m in (*INTERVAL_METRICS, "METEOR") if m in comparison]:
        row = comparison[metric]
        difference = round(row["difference"], 4) + 0.0  # (no "-0.0000")
        line = (
            f"{metric:>8}  {row['baseline']:>9.4f}  {row['challenger']:>9.4f}  {difference:>+10.4f}"
        )
        if rounds and row["interval"] is None:  # METEOR's corpus score is no sum over photos
            line += "    (no interval)"
        elif rounds:
            low, high = (round(x, 4) + 0.0 for x in row["interval"])  # (no "-0.0000")
            line += f"  {low:+.4f} .. {high:+.4f}  {row['better']:>10.0%}  {row['ties']:>4.0%}"
        print(line)
    print(f"scored with {challenger.get('scorer', 'pycocoevalcap')}")
    return 0


def _decoding_text(decoding: dict | None) -> str:
    """ "beam 4", "greedy", "sample"; "no decoding" for a captioner that writes no sentence."""
    if not decoding:
        return "no decoding"
    width = f" {decoding['beam_width']}" if decoding.get("method") == "beam" else ""
    return f"{decoding.get('method')}{width}"


def _same_captioner(a: str, b: str) -> bool:
    """Whether two captioner names are one: the same name, or folders that hold the same
    checkpoint (``runs/x`` and ``runs/x/best``)."""
    if a == b:
        return True
    from capsight.captioning.checkpoint import checkpoint_folder
    from capsight.errors import CapsightError

    try:
        return (
            Path(a).is_dir()
            and Path(b).is_dir()
            and (checkpoint_folder(a).resolve() == checkpoint_folder(b).resolve())
        )
    except CapsightError:  # (a damaged run folder: its own error comes when it loads)
        return False


def _say_ignored_decoding(args: argparse.Namespace, names: list[str]) -> None:
    """A note for each captioner that decodes nothing (``labels``) when --greedy or --beam was
    given (eval had printed "decoding None" and said nothing else)."""
    if not args.greedy and args.beam is None:
        return
    from capsight._cli.main import error_line
    from capsight.captioning.facade import resolve_captioner

    flag = "--greedy" if args.greedy else "--beam"
    for name in names:
        captioner, real = resolve_captioner(name)
        if not captioner.decodes:
            print(error_line(f"the {real} model ignores {flag}: it names the encoder's top "
                             "ImageNet classes", "note"), file=sys.stderr)  # fmt: skip


def _notes(result: dict) -> list[str]:
    """What the dataset reader noted about one result, and the photos it could not read."""
    from capsight.training.datasets import counted

    notes = list(result["notes"])
    if result["unreadable"]:
        notes.append(f"{counted(len(result['unreadable']), 'photo')} could not be read and "
                     f"{'were' if len(result['unreadable']) > 1 else 'was'} left out "
                     f"(first: {result['unreadable'][0]})")  # fmt: skip
    return notes
