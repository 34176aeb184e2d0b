"""``capsight classify``: zero-shot classification of photos into classes you name.

    $ capsight classify cat.jpg --classes "cat, dog, car"
    cat.jpg: cat 0.995, dog 0.003, car 0.002
    $ capsight classify *.jpg --classes dog-breeds --top 3 --json
    $ capsight classify photo.jpg --classes foods.txt --template "a photo of {}, a dish."
    $ capsight classify photo.jpg --classes "cat,dog" --engine clip --clip ./clip-vit-base-patch32
    $ capsight classify *.jpg --classifier kitchen.pt     # a file `capsight classifier build` wrote

``--classes`` takes a built-in set (imagenet, everyday, dog-breeds, cat-breeds, foods, scenes,
professions), a text file with one class a line, or a comma-separated list. ``--classifier``
runs a built ``.pt`` or ``.pt2`` file instead, with the classes it holds. Scores sum to 1
over the classes. A file that cannot be read gets one error line while the others go on.
Class names new to the cache are embedded once (about 100 a second on 2 cores), under a progress
bar on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys

from capsight._cli.shown_names import shown_name


def add_engine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--template",
        action="append",
        metavar="TEXT",
        help='prompt template with {} for the class name, e.g. "a photo of a {}."; '
        "repeat to average several (default: the engine's own set)",
    )
    # Default None, read as offline: so that --classifier can refuse an --engine given at all.
    p.add_argument(
        "--engine",
        choices=("offline", "clip"),
        default=None,
        help="offline: bundled EfficientNet-Lite0 + WordNet + MiniLM (default); "
        "clip: transformers CLIP weights named by --clip",
    )
    p.add_argument(
        "--clip",
        metavar="PATH",
        help="folder (or hub id in the local Hugging Face cache) of a transformers "
        "CLIPModel, for --engine clip",
    )
    p.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="no progress bars: while class names new to the cache are embedded, and (classify) "
        "while a folder's photos are classified",
    )


CHUNK = 64  # photos decoded and classified together


def add_parser(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "classify",
        help="zero-shot classification of photos into classes you name",
        description="Print the most likely classes for each photo (`path: label score, ...`).",
    )
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files, or folders of them")
    p.add_argument(
        "--classes",
        metavar="SET|FILE|a,b,c",
        help="a built-in set (imagenet, everyday, dog-breeds, cat-breeds, foods, "
        "scenes, professions), a file with one class a line, or 'a, b, c'",
    )
    p.add_argument(
        "--classifier",
        metavar="FILE.pt|FILE.pt2",
        help="instead of --classes: a classifier file from `capsight classifier "
        "build`, run with the classes it holds",
    )
    p.add_argument("--top", type=int, default=5, metavar="K", help="classes shown (default: 5)")
    p.add_argument(
        "--json",
        action="store_true",
        help='print a JSON list of {"image", "top": [{"label", "score"}, ...], "stands_out"}; a photo that '
        'cannot be read as {"image", "error"} in its place',
    )
    add_engine_options(p)
    return p


def run(args: argparse.Namespace) -> int:
    from capsight._cli.image_args import expand_image_args, read_images
    from capsight._cli.json_rows import JsonRows
    from capsight._cli.main import error_line
    from capsight._cli.progress_bar import ProgressBar
    from capsight.captioning.facade import TINY_SIDE
    from capsight.classify.class_sets import parse_classes
    from capsight.classify.engines import create_engine, predictions
    from capsight.classify.offline import build_notes
    from capsight.classify.photo_notes import BLANK, FIRST_FRAME, TINY, photo_issues
    from capsight.errors import InvalidParameter, quoted

    if args.top < 1:
        raise InvalidParameter(f"--top must be >= 1, got {args.top}")
    # Bad options fail before any model loads.
    classes = classifier = None
    if args.classifier is not None:
        _check_file_options(args)
        from capsight.classify.exported import load_classifier

        classifier = load_classifier(args.classifier)
    elif args.classes is None:
        # `capsight classify photo.jpg "cat, dog"`: the list read as a photo's path
        typed = next((a for a in args.images if "," in a and not os.path.exists(a)), None)
        hint = f" ({quoted(typed)} is no file: --classes {shlex.quote(typed)}?)" if typed else ""
        raise InvalidParameter("name the classes: --classes SET|FILE|a,b,c (or --classifier "
                               f"FILE){hint}")  # fmt: skip
    else:
        classes = parse_classes(args.classes)
        for note in classes.notes:
            print(error_line(note, kind="note"), file=sys.stderr)
    paths, problems = expand_image_args(args.images)
    for problem in problems:
        print(error_line(problem), file=sys.stderr)
    failed = len(problems)
    # --json: a row per photo, in order; one that cannot be read has an error row in its
    # place, a name that names none one before the others (as `capsight caption --json`)
    rows: list[dict] = [{"error": problem} for problem in problems]
    listing = JsonRows(sys.stdout) if args.json else None
    # Results printed to a terminal show the progress themselves; otherwise a bar does, opened
    # once the classifier is built (building shows a bar of its own for new class names).
    to_terminal = not args.json and sys.stdout.isatty()
    show_bar = len(paths) > 1 and not to_terminal and ProgressBar.wanted(args.quiet)
    photos_done = None  # the photos' bar, once open
    unclear: list[str] = []  # photos whose top class does not stand out
    # photos whose scores say little (classify.photo_notes): blank, tiny, an animation
    noted: dict[str, list[str]] = {BLANK: [], TINY: [], FIRST_FRAME: []}
    try:
        with contextlib.ExitStack() as photos_bar:
            for start in range(0, len(paths), CHUNK):  # a chunk at a time: memory stays bounded
                chunk = paths[start : start + CHUNK]
                names, images, errors = read_images(chunk)
                unread = {p: {"image": p, "error": " ".join(e.split())} for p, e in errors.items()}
                failed += len(errors)
                found = {}
                if images:
                    if classifier is None:  # built once, and only when there is a photo
                        engine = create_engine(args.engine or "offline", args.clip)
                        with ProgressBar(enabled=ProgressBar.wanted(args.quiet)) as progress:
                            classifier = engine.build(classes, args.template, progress=progress)
                        for note in build_notes(classifier):
                            print(error_line(note, kind="note"), file=sys.stderr)
                    if photos_done is None:
                        photos_done = photos_bar.enter_context(ProgressBar(enabled=show_bar))
                    found = dict(zip(names, predictions(classifier, images, names, args.top),
                                     strict=True))  # fmt: skip
                    unclear += [p for p, r in found.items() if not r.stands_out]
                    for p, img in zip(names, images, strict=True):
                        for kind in photo_issues(img):
                            noted[kind].append(p)
                    done = min(start + CHUNK, len(paths))
                    photos_done(done / len(paths), f"classified {done} of {len(paths)} photos")
                if listing is not None:
                    rows += [unread.get(p) or found[p].to_dict() for p in chunk]
                    listing.write(rows)
                    continue
                for r in found.values():
                    print(f"{shown_name(r.image)}: " + ", ".join(f"{_shown(label)} {score:.3f}" for label, score in r.top),
                          flush=True)  # fmt: skip
    except BaseException:  # a Ctrl-C keeps the rows written so far, as a JSON list
        if listing is not None:
            listing.abandon(rows)
        raise
    if listing is not None:
        listing.finish(rows)
    if noted[BLANK]:  # (captioned "a blank image": here the classes still share the scores)
        one = len(noted[BLANK]) == 1
        print(error_line(f"{_some(noted[BLANK])} {'is' if one else 'are'} blank (one flat colour): "
                         f"the scores say nothing about {'it' if one else 'them'}", "note"),
              file=sys.stderr)  # fmt: skip
    if noted[TINY]:  # (as `capsight caption` notes each: the model reads it stretched to 224 px)
        print(error_line(f"{_some(noted[TINY])} under {TINY_SIDE} px on a side: too small to show "
                         "a class, so the scores are a guess", "note"), file=sys.stderr)  # fmt: skip
    if noted[FIRST_FRAME]:
        one = len(noted[FIRST_FRAME]) == 1
        print(error_line(f"{_some(noted[FIRST_FRAME])} {'is an animation or a file' if one else 'are animations or files'} "
                         "of several pages: only the first frame was classified", "note"),
              file=sys.stderr)  # fmt: skip
    if unclear:  # the page shows no headline then; here the scores alone would read as answers
        print(error_line(f"no class stands out on {_some(unclear)}: the best score is close to the next, so "
                         f"{'each' if len(unclear) > 1 else 'it'} may show none of the classes, "
                         "or several", "note"),
              file=sys.stderr)  # fmt: skip
    return 2 if failed else 0


def _some(photos: list[str]) -> str:
    """ "2 photos (a.jpg, b.jpg)", "5 photos (a.jpg, b.jpg, c.jpg and 2 more)"."""
    which = ", ".join(photos[:3]) + (f" and {len(photos) - 3:,} more" if len(photos) > 3 else "")
    return f"{len(photos):,} photo{'s' * (len(photos) > 1)} ({which})"


def _check_file_options(args: argparse.Namespace) -> None:
    """A classifier file holds its classes, templates and engine: options that set them clash."""
    clashing = [flag for flag, given in (("--classes", args.classes is not None),
                                         ("--template", bool(args.template)),
                                         ("--engine", args.engine is not None),
                                         ("--clip", args.clip is not None)) if given]  # fmt: skip
    if clashing:
        from capsight.errors import InvalidParameter

        raise InvalidParameter(f"--classifier holds its own classes and engine; drop "
                               f"{' and '.join(clashing)}")  # fmt: skip


def _shown(label: str) -> str:
    """A class name in the text output, quoted when it holds a comma ("car, truck" from a
    class file's line), which the ", " between classes made unreadable."""
    return f'"{label}"' if "," in label else label
