"""``capsight classifier build``: a custom classifier as a file that runs with only ``torch``.

    $ capsight classifier build --classes "mug, teapot, kettle" --out kitchen.pt
    $ capsight classifier build --classes dog-breeds --out dogs.pt2          # torch.export
    $ capsight classifier build --examples photos/ --out mine.pt             # few-shot
    $ capsight classifier build --examples photos/ --names --out mine.pt     # + folder names

``.pt`` is TorchScript (``torch.jit.load``), ``.pt2`` a ``torch.export`` program
(``torch.export.load``). Either takes RGB floats (N, 3, H, W) in [0, 1] at any size and returns
(N, C) scores; the class names are ``module.labels`` (TorchScript) and the ``labels.json``
extra file (both). See docs/classify.md for the two-line loader.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(subparsers) -> argparse.ArgumentParser:
    from capsight._cli.classify import add_engine_options

    p = subparsers.add_parser(
        "classifier",
        help="build a custom classifier file (TorchScript or torch.export) that needs only torch",
        description="Build a classifier from class names and/or example photos and save it.",
    )
    # (named for the usage line and "required" message: "action" told a user nothing)
    p.add_argument("action", choices=("build",), metavar="build", help="make and save a classifier")
    p.add_argument(
        "--classes",
        metavar="SET|FILE|a,b,c",
        help="class names: a built-in set, a file with one class a line, or 'a, b, c'",
    )
    p.add_argument(
        "--examples",
        metavar="DIR",
        help="a folder with one sub-folder of photos per class (one-shot/few-shot)",
    )
    p.add_argument(
        "--names",
        action="store_true",
        help="with --examples: also use the folder names as class names",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE.pt|FILE.pt2",
        help="output: .pt for TorchScript, .pt2 for torch.export",
    )
    add_engine_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from capsight._cli.main import error_line
    from capsight._cli.progress_bar import ProgressBar
    from capsight.classify.class_sets import parse_classes
    from capsight.classify.engines import create_engine
    from capsight.classify.export import check_output, save_classifier
    from capsight.classify.few_shot import build_from_examples
    from capsight.classify.offline import build_notes
    from capsight.errors import InvalidParameter

    if args.classes is None and args.examples is None:
        raise InvalidParameter("give --classes, --examples, or both")
    if args.names and args.examples is None:
        raise InvalidParameter(
            "--names reads the class names from --examples folders; add --examples"
        )
    if args.template and args.classes is None and not args.names:
        raise InvalidParameter("--template fills in class names, and --examples alone gives none: "
                               "add --names (the folders' names) or --classes, or drop --template")  # fmt: skip
    args.engine = args.engine or "offline"
    if args.examples is not None and args.engine != "offline":  # said before CLIP loads
        raise InvalidParameter("--examples works with the offline engine only")
    if not (args.out.endswith(".pt") or args.out.endswith(".pt2")):
        raise InvalidParameter(f"{args.out or repr(args.out)}: --out must end in .pt or .pt2")
    if Path(args.out).name in (".pt", ".pt2"):  # a hidden file with no name, as Path sees it
        raise InvalidParameter(f"{args.out}: --out needs a file name before {Path(args.out).name}")
    check_output(args.out)  # before the classifier is built, which can take a while
    # With --examples, one extra name is fine: the folders add the other classes.
    at_least = 1 if args.examples is not None else 2
    classes = parse_classes(args.classes, at_least) if args.classes is not None else None
    for note in classes.notes if classes is not None else ():
        print(error_line(note, "note"), file=sys.stderr)
    engine = create_engine(args.engine, args.clip)
    start = time.perf_counter()
    with ProgressBar(enabled=ProgressBar.wanted(args.quiet)) as progress:
        if args.examples is not None:
            classifier = build_from_examples(
                engine, args.examples, classes, args.template, args.names, progress
            )
        else:
            classifier = engine.build(classes, args.template, progress=progress)
    built = time.perf_counter() - start
    for note in build_notes(classifier):  # said now: the file would tie them on every photo
        print(error_line(note, "note"), file=sys.stderr)
    with ProgressBar(enabled=ProgressBar.wanted(args.quiet)) as progress:
        path = save_classifier(classifier, args.out, progress)
    written = time.perf_counter() - start - built  # tracing or exporting the network
    print(
        f"{path}: {len(classifier.labels)} classes, {args.engine} engine, "
        f"built in {built:.2f} s and written in {written:.1f} s, {path.stat().st_size / 1e6:.1f} MB"
    )
    return 0
