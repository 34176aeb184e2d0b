"""``capsight caption``: describe images in words.

    $ capsight caption cat.jpg coffee.png
    cat.jpg: a photo of an Egyptian cat
    coffee.png: a photo of an espresso
    $ capsight caption cat.jpg --json
    [{"image": "cat.jpg", "caption": "a photo of an Egyptian cat",
      "labels": [["Egyptian cat", 0.82], ["tiger cat", 0.07], ["tabby", 0.07]], "model": "labels"}]

Images are captioned in batches. A file that cannot be read gets one ``capsight: error:`` line
on stderr while the others are still captioned; the exit status is then 2.
"""

from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "caption",
        help="describe images in words",
        description="Print one caption per image (`path: caption`), or JSON with --json.",
    )
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files (JPEG, PNG, WebP, ...)")
    p.add_argument("--json", action="store_true",
                   help='print a JSON list of {"image", "caption", "labels", "model"}')
    p.add_argument("--model", default="default", metavar="NAME",
                   help="captioner (see `capsight models`; default: the best installed)")
    p.add_argument("--batch-size", type=int, default=32, metavar="N",
                   help="images encoded together (default: 32)")
    method = p.add_mutually_exclusive_group()
    method.add_argument("--greedy", action="store_true", help="greedy decoding")
    method.add_argument("--beam", type=int, metavar="N", help="beam search with N beams")
    method.add_argument("--sample", action="store_true",
                        help="sample words (see --temperature, --top-k, --top-p)")
    p.add_argument("--temperature", type=float, default=None, metavar="T",
                   help="sampling temperature (with --sample)")
    p.add_argument("--top-k", type=int, default=None, metavar="K",
                   help="sample from the K most likely words only (with --sample)")
    p.add_argument("--top-p", type=float, default=None, metavar="P",
                   help="nucleus sampling: the most likely words covering P (with --sample)")
    p.add_argument("--num", type=int, default=None, metavar="N",
                   help="N captions per image (the first printed; all in --json)")
    p.add_argument("--seed", type=int, default=None, help="random seed for --sample")
    return p


def decoding_from_args(args: argparse.Namespace):
    """DecodingOptions from the flags, or None to let the captioner use its own default."""
    from capsight.captioning.base import DecodingOptions
    from capsight.errors import InvalidParameter

    sampling_flags = [args.temperature, args.top_k, args.top_p]
    if not args.sample and any(x is not None for x in sampling_flags):
        raise InvalidParameter("--temperature, --top-k and --top-p need --sample")
    options: dict = {}
    if args.greedy:
        options["method"] = "greedy"
    elif args.beam is not None:
        options.update(method="beam", beam_width=args.beam)
    elif args.sample:
        options["method"] = "sample"
        for key, value in (("temperature", args.temperature), ("top_k", args.top_k),
                           ("top_p", args.top_p)):
            if value is not None:
                options[key] = value
    if args.num is not None:
        options["num_captions"] = args.num
    if args.seed is not None:
        options["seed"] = args.seed
    return DecodingOptions(**options) if options else None


def run(args: argparse.Namespace) -> int:
    from capsight._cli.main import error_line
    from capsight.captioning.facade import as_rgb_image, describe_images
    from capsight.errors import CapsightError, InvalidParameter

    decoding = decoding_from_args(args)  # bad flags fail before any image or model loads
    if args.batch_size < 1:
        raise InvalidParameter(f"--batch-size must be >= 1, got {args.batch_size}")
    rows, failed = [], 0
    # A batch at a time keeps memory bounded and prints captions as they come; each bad file is
    # reported on its own line and the good ones are still captioned.
    for start in range(0, len(args.images), args.batch_size):
        names, images = [], []
        for path in args.images[start : start + args.batch_size]:
            try:
                images.append(as_rgb_image(path))
                names.append(path)
            except CapsightError as exc:
                print(error_line(str(exc)), file=sys.stderr)
                failed += 1
        if not images:
            continue
        descriptions = describe_images(
            images, model=args.model, decoding=decoding, batch_size=args.batch_size
        )
        for name, d in zip(names, descriptions, strict=True):
            if args.json:
                rows.append(description_json(name, d))
            else:
                print(f"{name}: {d.caption.text}", flush=True)
    if args.json:
        # One image per line: readable, and still one JSON document.
        body = ",\n".join("  " + json.dumps(row, ensure_ascii=False) for row in rows)
        sys.stdout.write(f"[\n{body}\n]\n" if rows else "[]\n")
    return 2 if failed else 0


def description_json(image: str, d) -> dict:
    row = {
        "image": image,
        "caption": d.caption.text,
        "labels": [[label, round(float(p), 4)] for label, p in d.labels],
        "model": d.model,
    }
    if d.caption.score is not None:
        row["score"] = round(float(d.caption.score), 4)
    if d.caption.alternatives:
        row["alternatives"] = list(d.caption.alternatives)
    return row
