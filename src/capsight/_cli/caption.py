"""``capsight caption``: describe images in words.

    $ capsight caption cat.jpg coffee.jpg
    cat.jpg: a little girl is playing on a bed
    coffee.jpg: a person is sitting on a red car
    $ capsight caption cat.jpg --model labels --json
    [{"image": "cat.jpg", "caption": "a photo of an Egyptian cat",
      "labels": [["Egyptian cat", 0.81], ["tiger cat", 0.07], ["tabby", 0.07]], "model": "labels"}]

    $ capsight caption cat.jpg --model show-attend-tell --model show-and-tell    # side by side
    cat.jpg
      show-attend-tell  a little boy is playing with a toy
      show-and-tell     a little girl in the air
    $ capsight caption cat.jpg --attention cat-attention.png    # where each word looked
    $ capsight caption photos/ > captions.txt     # a folder: every image in it, progress on stderr

Images are captioned in batches. A folder stands for the images under it (``image_args``). A
file that cannot be read gets one ``capsight: error:`` line on stderr while the others are still
captioned; the exit status is then 2. When the captions do not print to a terminal (redirected,
or ``--json``), a progress bar on stderr counts the images (``--quiet`` turns it off).

``--attention PATH`` draws, for each image and model, one tile per word with the captioner's
attention over the photo. With one image named (not a folder) and one model the picture is
written to PATH; otherwise the image's name (and the model's) is added before the suffix:
``PATH-STEM[-MODEL].png``, and ``-2``, ``-3`` ... where two photos have the same name. A
captioner without attention (``show-and-tell``, ``prefix-gpt2``, ``labels``) gets the class
activation map of its top ImageNet class instead (where the encoder saw that class), and a note
on stderr says so.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import warnings
from pathlib import Path

from capsight._cli.shown_names import shown_name

ATTENTION_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "caption",
        help="describe images in words",
        description="Print one caption per image (`path: caption`), or JSON with --json.",
    )
    p.add_argument(
        "images",
        metavar="IMAGE",
        nargs="+",
        help="image files (JPEG, PNG, WebP, ...), or folders of them",
    )
    p.add_argument("--json", action="store_true",
                   help='print a JSON list of {"image", "caption", "labels", "model", "score", '
                        '"alternatives", "attention", "blank"} (the last four when there are any; '
                        "score: the caption's mean log-probability per word; blank: true for an "
                        'image of one flat colour, captioned "a blank image"); a file that '
                        'cannot be read is a row {"image", "error"} in its place, and a name '
                        'that cannot be used (no such file, a folder with no images) a row '
                        '{"error"} before the others, as on stderr')  # fmt: skip
    p.add_argument(
        "--model",
        action="append",
        metavar="NAME",
        help="captioner (see `capsight models`; default: the best installed); "
        "repeat to compare captioners side by side",
    )
    p.add_argument("--attention", type=_attention_file, metavar="PNG",
                   help="draw the attention of each word over the photo into this image file "
                        "(.png, .jpg or .webp); with several images, a folder or several models, "
                        "one file each, named PNG's stem-<image>[-<model>] (-2, -3 ... where "
                        "photos share a name); its folder is made if missing")  # fmt: skip
    p.add_argument(
        "--batch-size",
        type=int,
        default=32,
        metavar="N",
        help="images encoded together (default: 32)",
    )
    method = p.add_mutually_exclusive_group()
    method.add_argument("--greedy", action="store_true", help="greedy decoding")
    method.add_argument(
        "--beam",
        type=int,
        metavar="N",
        help="beam search with N beams, 1-20 (default: the model's own decoding; "
        "beam 4 for the photo default, beam 3 for the other shipped ones)",
    )
    method.add_argument(
        "--sample", action="store_true", help="sample words (see --temperature, --top-k, --top-p)"
    )
    method.add_argument(
        "--narrowing",
        action="store_true",
        help="the original project's schedule: sample the first word from the "
        "top 5 (--top-k), one fewer for each next word, then greedy",
    )
    p.add_argument(
        "--temperature",
        type=float,
        default=None,
        metavar="T",
        help="sampling temperature (with --sample; default 0.7: higher varies more, "
        "lower reads better)",
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=None,
        metavar="K",
        help="sample from the K most likely words only (with --sample; default: "
        "all words; with --narrowing: the starting width, default 5)",
    )
    p.add_argument(
        "--top-p",
        type=float,
        default=None,
        metavar="P",
        help="nucleus sampling: the most likely words covering P (with --sample; default 1.0, all)",
    )
    p.add_argument(
        "--num",
        type=int,
        default=None,
        metavar="N",
        help="up to N distinct captions per image (1-20), by diverse beam search or "
        'sampling (the best first, the others below it, each after "also:"; '
        "in --json, the others are its alternatives)",
    )
    p.add_argument(
        "--max-length",
        type=int,
        default=None,
        metavar="N",
        help="at most N tokens per caption, the end token included (default 20: 19 words; a GPT-2 "
        "tokenizer's captioner counts its tokens)",
    )
    p.add_argument(
        "--length-penalty",
        type=float,
        default=None,
        metavar="P",
        help="with beam search: rank sentences by log-probability / length**P "
        "(default 0, the plain sum; larger favours longer captions)",
    )
    p.add_argument(
        "--allow-repeats",
        action="store_true",
        help="let a caption repeat itself (by default no three words come twice, "
        "no word follows itself, and a repeated word is not followed again by the "
        "word after it, unless that is a word like 'a' or 'in')",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="random seed for --sample and --narrowing"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return p


# How DecodingOptions' range errors begin, and the flag that sets each field.
_FLAGS_SPOKEN = (("beam width", "--beam"), ("max length", "--max-length"),
                 ("length penalty", "--length-penalty"), ("the number of captions", "--num"),
                 ("temperature", "--temperature"), ("top-p", "--top-p"), ("top-k", "--top-k"),
                 ("seed", "--seed"))  # fmt: skip


def decoding_from_args(args: argparse.Namespace):
    """DecodingOptions from the flags, or None to let the captioner use its own default."""
    from capsight.captioning.base import DecodingOptions
    from capsight.errors import InvalidParameter

    sampling_flags = [args.temperature, args.top_k, args.top_p]
    narrowing = args.narrowing
    if narrowing and (args.temperature is not None or args.top_p is not None):
        raise InvalidParameter("--narrowing takes --top-k only (its starting width)")
    if narrowing and args.top_k is not None and args.top_k < 1:
        raise InvalidParameter(f"--narrowing --top-k is its starting width: >= 1, got {args.top_k}")
    if args.seed is not None and not (args.sample or narrowing):
        raise InvalidParameter(
            "--seed needs --sample or --narrowing (the other methods are not random)"
        )
    if not (args.sample or narrowing) and any(x is not None for x in sampling_flags):
        raise InvalidParameter("--temperature, --top-k and --top-p need --sample (--top-k also "
                               "starts --narrowing)")  # fmt: skip
    options: dict = {}
    if args.greedy:
        options["method"] = "greedy"
    elif args.beam is not None:
        options.update(method="beam", beam_width=args.beam)
    elif narrowing:
        options["method"] = "narrowing"
        if args.top_k is not None:
            options["top_k"] = args.top_k
    elif args.sample:
        options["method"] = "sample"
        for key, value in (
            ("temperature", args.temperature),
            ("top_k", args.top_k),
            ("top_p", args.top_p),
        ):
            if value is not None:
                options[key] = value
    if args.length_penalty is not None:
        if not (options.get("method") == "beam" or not options):
            raise InvalidParameter("--length-penalty ranks beam search's sentences: use it with "
                                   "--beam (or the default decoding)")  # fmt: skip
        options["length_penalty"] = args.length_penalty
    if args.max_length is not None:
        options["max_length"] = args.max_length
    if args.allow_repeats:
        options.update(no_repeat_trigram=False, no_repeat_phrase=False, no_repeat_word=False)
    if args.num is not None:
        options["num_captions"] = args.num
    if args.seed is not None:
        options["seed"] = args.seed
    try:
        return DecodingOptions.partial(**options) if options else None  # the rest: each model's own
    except InvalidParameter as exc:  # "beam width must be ...": the flag that set it, as typed
        text = str(exc)
        for spoken, flag in _FLAGS_SPOKEN:
            if text.startswith(spoken + " "):
                raise InvalidParameter(flag + text[len(spoken) :]) from None
        raise


def run(args: argparse.Namespace) -> int:
    from capsight._cli.image_args import expand_image_args, names_a_folder
    from capsight._cli.json_rows import JsonRows
    from capsight._cli.main import error_line
    from capsight._cli.progress_bar import ProgressBar
    from capsight.captioning.shortfall import fewer_reason
    from capsight.errors import InvalidParameter

    decoding = decoding_from_args(args)  # bad flags fail before any image or model loads
    if decoding is not None and decoding.seed is None:
        # A sample without --seed draws one, shown so the captions can be had again (HTTP's
        # echo had it; the CLI had thrown it away).
        decoding = decoding.seeded()
    if args.batch_size < 1:
        raise InvalidParameter(f"--batch-size must be >= 1, got {args.batch_size}")
    models, repeated = _distinct_models(args.model or ["default"])
    for note in repeated:
        print(error_line(note, "note"), file=sys.stderr)
    _check_model_names(models)
    if args.attention is not None and args.attention.suffix.lower() not in ATTENTION_SUFFIXES:
        raise InvalidParameter(
            f"--attention {args.attention}: name an image file ({', '.join(ATTENTION_SUFFIXES)})"
        )
    if args.attention is not None:
        attention_folder(args.attention)  # an unwritable place fails now, not after the models load
    paths, problems = expand_image_args(args.images)
    for problem in problems:
        print(error_line(problem), file=sys.stderr)
    # Then --attention's name is a pattern, not a file: decided by what was asked for, not by
    # which photos turned out readable (good.jpg missing.jpg wrote y.png, then y-good.png).
    several = len(args.images) > 1 or len(paths) > 1 or len(models) > 1 or any(
        map(names_a_folder, args.images))  # fmt: skip
    inputs = {Path(path).resolve() for path in paths}
    if args.attention is not None and not several and args.attention.resolve() in inputs:
        raise InvalidParameter(f"--attention {args.attention}: is the image to caption, which the "
                               "sheet would replace; name another file")  # fmt: skip
    if args.attention is not None and not several and args.attention.is_dir():
        raise InvalidParameter(f"--attention {args.attention}: is a folder; name the image file "
                               "to write")  # fmt: skip
    job = CaptionRun(args, models, decoding, several, inputs)
    job.failed = len(problems)
    job.rows += [{"error": problem} for problem in problems]  # (--json: a folder's HEIC photo)
    # Captions printed to a terminal show the progress themselves; otherwise a bar does.
    to_terminal = not args.json and sys.stdout.isatty()
    show_bar = len(paths) > 1 and not to_terminal and ProgressBar.wanted(args.quiet)
    listing = JsonRows(sys.stdout) if args.json else None
    try:
        with ProgressBar(enabled=show_bar) as progress:
            # A batch at a time keeps memory bounded and prints captions as they come.
            for start in range(0, len(paths), args.batch_size):
                batch = paths[start : start + args.batch_size]
                job.caption(batch)
                if listing is not None:
                    listing.write(job.rows)
                done = start + len(batch)
                progress(done / len(paths), f"captioned {done} of {len(paths)} images")
    except BaseException:  # a Ctrl-C an hour in keeps the hour's rows, as a JSON list
        if listing is not None:
            listing.abandon(job.rows)
        raise
    if listing is not None:
        listing.finish(job.rows)
    if job.short:
        n = len(job.short)
        which = ", ".join(job.short[:3]) + (f" and {n - 3:,} more" if n > 3 else "")
        print(error_line(f"{n} caption{'s' if n > 1 else ''} ({which}) got fewer than "
                         f"{job.wanted} distinct sentences: {fewer_reason(decoding)}", kind="note"),
              file=sys.stderr)  # fmt: skip
    if job.sampled and decoding.seed is not None and args.seed is None:
        print(error_line(f"sampled with seed {decoding.seed}: --seed {decoding.seed} gives these "
                         "captions again", kind="note"), file=sys.stderr)  # fmt: skip
    if job.cut:
        n = len(job.cut)
        which = ", ".join(job.cut[:3]) + (f" and {n - 3:,} more" if n > 3 else "")
        print(error_line(f"{n} caption{'s' if n > 1 else ''} ({which}) reached --max-length "
                         f"{args.max_length}, where a caption is ended, finished or not",
                         kind="note"), file=sys.stderr)  # fmt: skip
    return 2 if job.failed else 0


class CaptionRun:
    """What one ``capsight caption`` keeps across batches: --json rows, counts, files written."""

    def __init__(self, args: argparse.Namespace, models: list[str], decoding, several: bool,
                 inputs: set[Path] = frozenset()):  # fmt: skip
        self.args, self.models, self.decoding, self.several = args, models, decoding, several
        self.wanted = decoding.num_captions if decoding is not None else 1
        self.rows: list[dict] = []
        self.failed = 0  # files that could not be read
        self.short: list[str] = []  # images whose captions have fewer distinct sentences than --num
        self.cut: list[str] = []  # images whose caption ran into a --max-length the user gave
        self.written: set[Path] = set()  # attention files, so two cat.jpg do not collide
        self.inputs = inputs  # the images, resolved: a generated name that hits one takes a number
        self.told_labels = False  # the note that labels ignores decoding options was printed
        self.sampled = False  # a captioner decoded with the options (labels ignores them)

    def caption(self, batch: list[str]) -> None:
        """Caption ``batch`` and print (or keep for --json) each image's captions; an unreadable
        file gets its own error line and the others are still captioned."""
        from capsight._cli.image_args import read_images

        names, images, errors = read_images(batch)
        self.failed += len(errors)
        # --json rows in the batch's order; a file that cannot be read has one in its place,
        # so a pipeline reading stdout learns of it too
        rows = {path: [{"image": path, "error": error}] for path, error in errors.items()}
        if images:
            self._describe(names, images, rows)
        if self.args.json:
            self.rows += [row for path in batch for row in rows.get(path, [])]

    def _describe(self, names: list[str], images: list, rows: dict[str, list[dict]]) -> None:
        """Caption the readable images of a batch, print them or keep their --json ``rows``."""
        from capsight._cli.main import error_line
        from capsight.captioning.facade import DecodingIgnored, describe_images
        from capsight.captioning.shortfall import reached_limit

        args, models = self.args, self.models
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DecodingIgnored)  # said once, in the CLI's words, below
            by_model = [
                describe_images(images, model=m, decoding=self.decoding, batch_size=args.batch_size)
                for m in models
            ]
        # ("default" is labels where no trained captioner is installed)
        labels_ran = any(described[0].model == "labels" for described in by_model)
        if self.decoding is not None and labels_ran and not self.told_labels:
            print(error_line("the labels model ignores decoding options (--greedy, --beam, --sample, "
                             "--num, ...): it names the encoder's top ImageNet classes", "note"),
                  file=sys.stderr)  # fmt: skip
            self.told_labels = True
        self.sampled = self.sampled or (self.decoding is not None and any(
            d.model != "labels" and not d.blank for described in by_model for d in described))  # fmt: skip
        for i, name in enumerate(names):
            descriptions = [d[i] for d in by_model]
            if descriptions[0].note:  # an icon: a guess
                print(error_line(f"{name}: {descriptions[0].note}", "note"), file=sys.stderr)
            # (labels ignores --num, and a note has said so)
            self.short += [name if len(self.models) == 1 else f"{name} ({d.model})"
                           for d in descriptions if d.model != "labels" and not d.blank
                           and 1 + len(d.caption.alternatives) < self.wanted]  # fmt: skip
            if args.max_length is not None:  # ("a" for --max-length 2, with no word of why)
                self.cut += [name if len(self.models) == 1 else f"{name} ({d.model})"
                             for d in descriptions if d.model != "labels" and not d.blank
                             and reached_limit(d.caption.tokens, args.max_length)]  # fmt: skip
            drawn = self._draw_attention(name, images[i], descriptions)
            if args.json:
                seed = self.decoding.seed if self.decoding is not None else None
                rows[name] = [
                    description_json(name, d, drawn.get(d.model), seed) for d in descriptions
                ]
            elif len(models) == 1:
                print(f"{shown_name(name)}: {descriptions[0].caption.text}", flush=True)
                for text in descriptions[0].caption.alternatives:  # --num: the others, in order
                    print(f"  also: {text}", flush=True)
            else:
                width = max(len(d.model) for d in descriptions)
                print(shown_name(name))
                for d in descriptions:
                    print(f"  {d.model:<{width}}  {d.caption.text}", flush=True)
                    for text in d.caption.alternatives:
                        print(f"  {'':<{width}}  also: {text}", flush=True)
            for path in drawn.values():
                print(f"attention: {shown_name(path)}", file=sys.stderr)

    def _draw_attention(self, name: str, image, descriptions) -> dict[str, str]:
        """{model: file written} for --attention (nothing without it); a sheet that cannot be
        written gets an error line and counts as a failure, and the rest go on."""
        from capsight._cli.main import error_line
        from capsight.errors import CapsightError

        drawn: dict[str, str] = {}
        if self.args.attention is None:
            return drawn
        if descriptions[0].blank:  # the same image for every model
            print(error_line(f"{name}: a blank image (one flat colour) has no attention to draw",
                             kind="note"), file=sys.stderr)  # fmt: skip
            return drawn
        for d in descriptions:
            target = attention_path(self.args.attention, name, d.model, self.several,
                                    len(self.models) > 1)  # fmt: skip
            stem, n = target.stem, 1
            while target in self.written or target.resolve() in self.inputs:
                n += 1
                target = target.with_name(f"{stem}-{n}{target.suffix}")
            self.written.add(target)
            try:
                write_attention(target, image, d)
            except CapsightError as exc:  # this sheet only: the captions still come
                print(error_line(str(exc)), file=sys.stderr)
                self.failed += 1
                continue
            drawn[d.model] = str(target)
        return drawn


def _attention_file(text: str) -> Path:
    from capsight.errors import InvalidParameter

    if not text.strip():  # Path("") is ".", which the message then named
        raise InvalidParameter("--attention is empty; name an image file (.png, .jpg or .webp)")
    # ~ too, as --model has it: the shell leaves --attention=~/a.png alone (it made a ./~ folder)
    return Path(text).expanduser()


def _check_model_names(models: list[str]) -> None:
    """ModelNotFound now for a model that is neither installed nor a folder: a second --model
    misspelt was refused only after the first had captioned a batch (and --attention had made
    its folder)."""
    import os

    from capsight.captioning.base import available_captioners
    from capsight.captioning.facade import resolve_captioner

    known = {"default", *available_captioners()}
    for name in models:
        parts = [os.path.expanduser(part.strip()) for part in name.split(",")]
        if name not in known and not all(os.path.isdir(part) for part in parts):
            resolve_captioner(name)  # (its own message: "no such checkpoint folder", ...)


def _distinct_models(names: list[str]) -> tuple[list[str], list[str]]:
    """The named captioners once each, "default" counted as the model it stands for, and a
    note for each name left out (one model named twice was shown once without a word)."""
    from capsight.captioning.base import default_captioner_name

    default = default_captioner_name() if "default" in names else None
    seen: dict[str, str] = {}  # the model -> the name it was first given as
    kept, notes = [], []
    for name in names:
        real = default if name == "default" else name.rstrip("/")
        if real not in seen:
            seen[real] = name
            kept.append(name)
        elif seen[real] == name:
            notes.append(f"--model {name} is named twice; each model captions once")
        else:
            first, later = sorted((seen[real], name), key=lambda n: n != "default")
            notes.append(f"--model {later} is the model --model {first} stands for; each model "
                         "captions once")  # fmt: skip
    return kept, notes


def attention_path(base: Path, image: str, model: str, per_image: bool, per_model: bool) -> Path:
    """``base`` itself for one image and one model, else ``base-<image stem>[-<model>]<suffix>``."""
    if not per_image:
        return base
    # A checkpoint folder given as the model ("runs/sat/best") becomes "runs_sat_best"; the
    # photo read from standard input ("-") is "stdin" (it had made "a--.png").
    parts = [base.stem, "stdin" if image == "-" else Path(image).stem] + (
        [re.sub(r"[^\w.-]+", "_", model).strip("_.")] if per_model else []
    )
    return base.with_name("-".join(parts) + base.suffix)


def write_attention(path: Path, image, described) -> None:
    """The per-word attention sheet of ``described``'s caption over ``image`` (or, for a
    captioner without attention, the class activation map of its top ImageNet class)."""
    from capsight._cli.main import error_line
    from capsight.captioning.facade import cached_encoder, resolve_captioner
    from capsight.errors import InvalidParameter
    from capsight.vision.heatmaps import (
        attention_sheet,
        class_activation_map,
        heatmap_overlay,
        titled,
        viewable,
    )

    result = described.caption
    small = viewable(image, 640)
    captioner = resolve_captioner(described.model)[0]
    title = attention_title(
        described.model, captioner.describe(), captioner.encoder_name, result.text
    )
    encoder = cached_encoder(captioner.encoder_name)
    encoded = encoder.encode([image])  # the grid's size; for a captioner without attention, CAM
    if result.attention is not None and result.tokens:
        picture = attention_sheet(
            small, result.attention, result.tokens, encoded.grid_size, title=title
        )
    else:
        top = int(encoded.probs[0].argmax())
        cam = class_activation_map(encoded.grid[0], encoder.net._fc.weight.detach(), top)
        label = described.labels[0][0] if described.labels else "its top class"
        picture = titled(heatmap_overlay(small, cam, encoded.grid_size),
                         f"{described.model} (no attention): where the encoder saw {label!r}")  # fmt: skip
        print(error_line(f"{described.model} has no attention; {path} shows where the encoder "
                         f"saw {label!r} instead", kind="note"), file=sys.stderr)  # fmt: skip
    attention_folder(path)
    from PIL import Image

    from capsight.io.new_files import write_whole

    kind = Image.registered_extensions()[path.suffix.lower()]  # (ATTENTION_SUFFIXES: all known)
    try:
        write_whole(path, lambda file: picture.save(file, format=kind))
    except OSError as exc:
        raise InvalidParameter(
            f"--attention {path}: cannot write it ({exc.strerror or exc})"
        ) from None


def attention_title(model: str, info: dict, encoder_name: str, text: str) -> str:
    """The sheet's title. An ensemble (the photo default pair) decodes with all its members but
    shows the attention of its first, over ``encoder_name``'s grid: the title says so."""
    ensemble = " + " in str(info.get("encoder", "")) or "ensemble" in str(info.get("kind", ""))
    whose = f" ({encoder_name} member's attention)" if ensemble else ""
    return f"{model}{whose}: {text}"


def attention_folder(path: Path) -> None:
    """Make the folder of the attention file ``path`` and check a file can be written there."""
    from capsight.errors import InvalidParameter
    from capsight.io.folders import make_writable_folder

    try:
        make_writable_folder(path.parent)
    except (FileExistsError, NotADirectoryError):
        raise InvalidParameter(f"--attention {path}: a parent is a file, not a folder") from None
    except OSError as exc:
        raise InvalidParameter(
            f"--attention {path}: cannot write it ({exc.strerror or exc})"
        ) from None


def description_json(image: str, d, attention: str | None = None, seed: int | None = None) -> dict:
    row = {
        "image": image,
        "caption": d.caption.text,
        "labels": [[label, round(float(p), 4)] for label, p in d.labels],
        "model": d.model,
    }
    if d.caption.score is not None and math.isfinite(d.caption.score):  # JSON has no -Infinity
        row["score"] = round(float(d.caption.score), 4)
    if d.caption.alternatives:
        row["alternatives"] = list(d.caption.alternatives)
    if attention is not None:
        row["attention"] = attention
    if seed is not None and d.model != "labels" and not d.blank:  # (--seed SEED: the same again)
        row["seed"] = seed
    if d.blank:
        row["blank"] = True
    if d.note:
        row["note"] = d.note
    return row
