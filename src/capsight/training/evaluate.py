"""``capsight eval``: caption a dataset's photos with a captioner and score them.

    >>> report = evaluate_captioner("default", "../shared/data/flickr8k/images",
    ...                             "../shared/data/flickr8k/captions.json", split="test")
    >>> report["images"], report["BLEU-4"], report["CIDEr"]
    (875, 0.2..., 0.5...)

The captions file may be any format :func:`capsight.training.readers.read_corpus` reads (a
captions.json + splits.json folder, Karpathy, COCO annotations, Flickr8k text files, Conceptual
Captions). Photos are loaded, encoded and captioned ``batch_size`` at a time, through the same
captioner and encoder the CLI and API use, so the numbers are those of what users run. A photo
that cannot be read is left out, named in ``unreadable`` and warned about.

:func:`compare_captioners` captions the same photos with two captioners and adds a paired
bootstrap of their scores (is the new checkpoint better than the default, or is it noise?).
"""

from __future__ import annotations

import copy
import json
import os
import time
import warnings
from pathlib import Path

from capsight.captioning.base import Captioner, DecodingOptions
from capsight.errors import CapsightError, DatasetError, InvalidParameter, check_count
from capsight.io.images import load_image
from capsight.precision import uses_bf16
from capsight.progress import ProgressCallback, check_progress, no_progress, span
from capsight.training.confidence import check_rounds, compare_captions
from capsight.training.datasets import DRAWN_SPLIT, DRAWN_SPLIT_NOTE, counted, drew_split
from capsight.training.evaluation import score_captions
from capsight.training.readers import read_corpus
from capsight.vision.encoder import ImageEncoder


def encoder_for(captioner: Captioner) -> ImageEncoder:
    """The encoder a captioner was trained with: its encoder, at its input resolution."""
    from capsight.captioning.facade import cached_encoder

    encoder = cached_encoder(captioner.encoder_name)
    resolution = getattr(captioner, "resolution", None)
    if resolution and resolution != encoder.resolution:
        encoder = copy.copy(encoder)  # same weights, another square input size
        encoder.resolution = resolution
    return encoder


def resolved_decoding(captioner: Captioner, decoding: DecodingOptions | None) -> DecodingOptions:
    """What ``caption(encoded, decoding)`` uses: the given options, else the captioner's own."""
    own = getattr(captioner, "default_decoding", None)
    if decoding is not None:
        return decoding.over(own)
    return own or DecodingOptions()


def evaluate_captioner(
    captioner_name: str | Captioner,
    images_dir: str | os.PathLike | None,
    captions_file: str | os.PathLike,
    split: str | None = None,
    decoding: DecodingOptions | None = None,
    *,
    use_java: bool | None = None,
    batch_size: int = 32,
    limit: int | None = None,
    progress: ProgressCallback = no_progress,
    bootstrap: int = 0,
) -> dict:
    """Caption the photos of ``split`` (all photos when None) and score them against references.

    Returns one flat dict: ``captioner``, ``decoding`` (the options used, as a dict),
    ``dataset``, ``split``, ``images`` (photos scored), then :func:`score_captions`'s metrics
    (``BLEU-1`` .. ``BLEU-4``, ``METEOR``, ``ROUGE-L``, ``CIDEr``, and ``fallback`` when the
    reference Java pipeline was not used), ``seconds`` (captioning time), ``unreadable`` (one
    message per photo left out), ``notes`` (what the dataset reader left out or guessed) and
    ``captions`` (photo key -> caption). ``bootstrap=R`` adds ``intervals`` (metric -> 95%
    interval over R draws of the photos; see ``capsight.training.confidence``).
    """
    from capsight.captioning.facade import resolve_captioner

    batch_size = check_count("batch size", batch_size, 1)
    bootstrap = check_count("bootstrap", bootstrap, 0)
    _check_options(split, decoding, use_java, limit, progress)
    asked_all = split == "all"  # every photo, with no split's notes (its notes had taken "all"
    split = None if asked_all else split  # for a hand-made split that overlaps train)
    progress = progress or no_progress
    if bootstrap:
        check_rounds(bootstrap)  # before the photos are captioned, not after
    corpus = read_corpus(captions_file, images_dir)
    records = corpus.split(split) if split else list(corpus.images.values())
    records = records[:limit] if limit else records
    if not records:
        where = f"split {split!r} has" if split else "it has"
        raise DatasetError(f"{captions_file}: {where} no photos with captions")
    if isinstance(captioner_name, Captioner):
        captioner, name = captioner_name, captioner_name.name
    else:
        captioner, name = resolve_captioner(captioner_name)

    start = time.perf_counter()
    candidates: dict[str, str] = {}
    unreadable: list[str] = []
    for first in range(0, len(records), batch_size):
        batch = records[first : first + batch_size]
        images, keys = [], []
        for record in batch:
            try:
                images.append(load_image(record.path))
                keys.append(record.key)
            except CapsightError as error:
                unreadable.append(str(error))
        if images:
            encoder = encoder_for(captioner)  # loaded once, on first use
            results = captioner.caption(encoder.encode(images, batch_size=batch_size), decoding)
            candidates.update((key, result.text) for key, result in zip(keys, results, strict=True))
        progress((first + len(batch)) / len(records), f"captioned {len(candidates)} photos")
    seconds = time.perf_counter() - start
    if not candidates:
        raise DatasetError(
            f"none of the {len(records)} photos could be read (first: {unreadable[0]}); they were "
            f"looked for in {Path(records[0].path).parent}: check that the photos are there (a "
            "captions file given as DATA takes --images FOLDER; images_dir in Python; a dataset "
            "folder holds its photos in images/ or beside its captions)"
        )
    if unreadable:
        warnings.warn(
            f"{len(unreadable)} of {len(records)} photos could not be read and were left out "
            f"(first: {unreadable[0]})",
            RuntimeWarning,
            stacklevel=2,
        )
    references = {r.key: list(r.captions) for r in records if r.key in candidates}
    progress(1.0, "scoring")
    metrics = score_captions(references, candidates, use_java=use_java, bootstrap=bootstrap)
    if "intervals" in metrics:  # how they were drawn, beside them (--json had left it out)
        metrics["bootstrap"] = {"draws": bootstrap, "level": 0.95}
    metrics.pop("images")
    return {
        "captioner": name,
        # None for a captioner that writes no sentence word by word (labels): nothing decoded.
        # Only the fields its method reads: greedy decoding has no beam width to report.
        "decoding": resolved_decoding(captioner, decoding).in_force()
        if hasattr(captioner, "default_decoding")
        else None,
        # bfloat16 on a CPU that computes it natively (capsight.precision): the captions, and
        # so the scores, differ a little from float32's (CAPSIGHT_PRECISION=fp32)
        "precision": "bfloat16" if uses_bf16("cpu") else "float32",
        "dataset": str(captions_file),
        "split": "all" if asked_all else split,
        "images": len(candidates),
        **metrics,
        "seconds": round(seconds, 2),
        "unreadable": unreadable,
        # What the dataset reader left out or guessed (how it split: only when a split is scored).
        "notes": [n for n in corpus.notes if split or not n.startswith(DRAWN_SPLIT_NOTE)]
        + [
            n.replace("no split asked for", "--split all", 1) if asked_all else n
            for n in _all_photos_note(corpus, split, set(candidates))
        ]  # fmt: skip
        + _overlap_note(corpus, split, set(candidates))
        + _drawn_otherwise_note(captioner_name, corpus, split)
        + (
            [
                "CIDEr is 0 for a single photo (it weighs words by how few photos use them, and one "
                "photo's words are in all of them): score 2 or more"
            ]
            if len(candidates) == 1
            else []
        ),  # fmt: skip
        "captions": candidates,
    }


FEW_PHOTOS = 100  # fewer scored: a note that the scores vary widely between sets of photos


def few_photos_note(photos: int, bootstrap: int = 0) -> list[str]:
    """The note for a score over 2-99 photos: 8 COCO photos scored CIDEr 0.661, all 80 of them
    0.398, with nothing said (an audit, 2026-12-08)."""
    if not 1 < photos < FEW_PHOTOS:
        return []
    how = "the intervals say how widely" if bootstrap else "--bootstrap 1000 says how widely"
    return [f"only {photos} photos scored: scores over so few vary widely from one set of photos "
            f"to the next ({how}); compare captioners on the same photos with --against"]  # fmt: skip


def _check_options(split, decoding, use_java, limit, progress) -> None:
    """The options both evaluations take, refused in one line before any photo is read (they
    were TypeErrors and AttributeErrors partway, or "no" read as true)."""
    from capsight.captioning.facade import check_decoding

    check_decoding(decoding)
    if limit is not None:
        check_count("limit", limit, 1)
    if split is not None and not (isinstance(split, str) and split.strip()):
        raise InvalidParameter(
            f"split must be a split's name (train, val, test) or None for all photos, got {split!r}"
        )
    if use_java is not None and not isinstance(use_java, bool):
        raise InvalidParameter(
            f"use_java must be True, False or None (Java when present), got {use_java!r}"
        )
    check_progress(progress)


def _drawn_otherwise_note(model, corpus, split: str | None) -> list[str]:
    """A model trained before 2026-12-07 on data without a split file drew its split at random;
    scored on today's split (by names' hash) it is scored mostly on photos it trained on."""
    if (
        split in (None, "train")
        or not drew_split(corpus)
        or not isinstance(model, str | os.PathLike)
    ):
        return []
    folder = Path(model).expanduser()
    for config in (folder / "train_config.json", folder.parent / "train_config.json"):
        if config.is_file():
            try:
                recorded = json.loads(config.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return []
            if isinstance(recorded, dict) and recorded.get("drawn_split") != DRAWN_SPLIT:
                return [f"{model} was trained before capsight drew splits by photo names "
                        f"(2026-12-07), on a split drawn at random: most of these {split} photos "
                        "were in its training photos, so the scores flatter it"]  # fmt: skip
            return []
    return []


def _overlap_note(corpus, split: str | None, scored: set[str]) -> list[str]:
    """A split scored whose photos are in the train split too (a hand-edited splits.json):
    ``capsight train`` refuses such a dataset; scoring one says so instead."""
    if split is None or split == "train":
        return []
    both = scored & set(corpus.splits.get("train") or ())
    if not both:
        return []
    first = min(both)
    verb = "is" if len(both) == 1 else "are"
    return [f"{counted(len(both), 'photo')} scored {verb} in the train split too (first: {first}): "
            "a model trained on it has seen them (capsight train refuses such a dataset)"]  # fmt: skip


def _all_photos_note(corpus, split: str | None, scored: set[str] | None = None) -> list[str]:
    """Scoring every photo of a corpus with a train split scores photos a model learned from
    (``scored``: the photos scored, when not all; --limit 10 had been said to score 64 train
    photos). A split the reader drew at random (none given) is the one `capsight train` draws too."""
    if corpus.splits and "train" not in corpus.splits and split != "test":
        # (a COCO captions_val file: capsight train trains on every photo outside "test")
        test = set(corpus.splits.get("test") or ())
        pool = set(corpus.images) if scored is None else scored
        if seen := len(pool - test):
            which = f"--split {split}" if split is not None else "no split asked for"
            return [
                f"{which}: it has no train split, so capsight train trains on its photos outside "
                f"a test split (but the tenth it validates on), {seen:,} of those scored among "
                "them: a model trained on it has seen most of them, so the scores say little of "
                "new photos"
            ]
    train = set(corpus.splits.get("train") or ())
    trained = len(train & scored if scored is not None else train) if split is None else 0
    if not trained:
        return []
    if any(n.startswith(DRAWN_SPLIT_NOTE) for n in corpus.notes):
        others = "; --split test scores only the others" if corpus.splits.get("test") else ""
        return [
            f"no split asked for: the photos scored include the {trained} that capsight train trains on "
            f"(the split it draws by a hash of each name for a dataset without one, as here), which matters only "
            f"for a model trained on this data{others}"
        ]
    if not any(keys for name, keys in corpus.splits.items() if name != "train"):
        # (a Conceptual Captions file: no split to point to)
        return [
            f"no split asked for: all {trained} photos scored are in its train split (it has no other): "
            "a model trained on it has seen them, so the scores say little of new photos"
        ]
    held = "--split test" if corpus.splits.get("test") else "a --split of photos held out"
    return [
        f"no split asked for: the photos scored include the {trained} of its train split; {held} scores "
        "only photos a model trained on it has not seen"
    ]


def compare_captioners(
    baseline: str | Captioner,
    challenger: str | Captioner,
    images_dir: str | os.PathLike | None,
    captions_file: str | os.PathLike,
    split: str | None = None,
    decoding: DecodingOptions | None = None,
    *,
    rounds: int = 1000,
    use_java: bool | None = None,
    limit: int | None = None,
    progress: ProgressCallback = no_progress,
) -> dict:
    """Both captioners on the same photos, then a paired bootstrap of their scores.

    Returns ``baseline`` and ``challenger`` (each :func:`evaluate_captioner`'s result),
    ``photos`` (how many both captioned) and ``comparison`` (:func:`capsight.training.confidence.compare_captions`: per metric the
    difference challenger - baseline, its 95% interval and the share of draws it wins; no
    interval or share with ``rounds=0``).
    ``decoding`` applies to both; None lets each use its own. ``progress`` sees both captioners'
    work as one (the first half, then the second).
    """
    from capsight.captioning.facade import resolve_captioner

    _check_options(split, decoding, use_java, limit, progress)
    if check_count("rounds", rounds, 0):  # 0: the two scores and their difference, no draws
        check_rounds(rounds)
    # Both names are checked before either captioner spends minutes on the photos.
    resolved = [(c, c.name) if isinstance(c, Captioner) else resolve_captioner(c)
                for c in (baseline, challenger)]  # fmt: skip
    results = [
        evaluate_captioner(
            c,
            images_dir,
            captions_file,
            split,
            decoding,
            use_java=use_java,
            limit=limit,
            progress=span(progress, i / 2, (i + 1) / 2),
        )
        for i, (c, _) in enumerate(resolved)
    ]
    for result, (_, name) in zip(results, resolved, strict=True):  # a folder by its path, as
        result["captioner"] = name  # plain eval names it, not the generic "checkpoint"
    # In the first result's order: the seeded draws must land on the same photos every run.
    shared = [k for k in results[0]["captions"] if k in results[1]["captions"]]
    corpus = read_corpus(captions_file, images_dir)
    references = {k: list(corpus.images[k].captions) for k in shared}
    comparison = compare_captions(
        references,
        {k: results[0]["captions"][k] for k in shared},
        {k: results[1]["captions"][k] for k in shared},
        rounds,
        use_java=use_java,
    )
    if all("METEOR" in r and len(r["captions"]) == len(shared) for r in results):  # no interval:
        b, c = results[0]["METEOR"], results[1]["METEOR"]  # not a sum over photos (confidence.py)
        comparison["METEOR"] = {"baseline": b, "challenger": c, "difference": c - b,
                                "interval": None, "better": None, "ties": None}  # fmt: skip
    return {"baseline": results[0], "challenger": results[1], "photos": len(shared),
            "comparison": comparison,
            **({"bootstrap": {"draws": rounds, "level": 0.95}} if rounds else {})}  # fmt: skip
