"""Search a video by text: rank its sampled moments by how well they match a query.

    >>> hits = search_video("beach.mp4", "a dog on a beach", every=1.0, top=3)
    >>> [(h.time, round(h.score, 2), h.caption) for h in hits]
    [(12.0, 0.71, 'a dog runs on the beach'), ...]
    >>> hits = search_analysis("out/analysis.json", "a dog on a beach")   # no decoding at all

Two signals, averaged:

- **caption**: cosine between the MiniLM embeddings of the query and of the moment's caption;
- **classes**: the ImageNet probability mass the offline zero-shot engine gives the query
  (WordNet rows for each noun of the query it knows, "dog" -> all dog breeds, plus text
  similarity of the whole query to every ImageNet class), scaled to [0, 1] by its square root
  so a half-visible dog still counts.

A finished ``analysis.json`` already holds each moment's caption and top ImageNet classes, so
searching it needs neither the video nor the encoder. A video's frames are prepared as
``capsight video`` prepares them (decoded at most 384 px, exposure normalised, a flat frame called
"a blank frame"), so its moments get the captions an analysis of it holds; the classes are all
1,000 there, the top 3 in an analysis. A run of moments in a row with one caption (a shot) is
one hit, scored by its best moment and placed from its first moment to its last.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from capsight.errors import InputNotFound, InvalidParameter, check_count, check_decoded
from capsight.progress import ProgressCallback, check_progress

_BATCH = 32  # moments captioned together


@dataclass(frozen=True)
class SearchHit:
    time: float  # where the shot's run of moments with this caption starts
    score: float  # the mean of the two below, in [-0.5, 1] (the run's best moment's)
    caption_score: float  # cosine(query, caption)
    class_score: float  # sqrt of the ImageNet mass the query covers
    caption: str
    until: float | None = None  # the run's last moment (None: one moment)
    # The moment that scored best, whose caption this is (on a still camera one run can span
    # the clip: the truck at 14 s had been a hit at "0.0-23.0 s" alone)
    best: float | None = None

    def to_dict(self) -> dict:
        return {
            "time": round(self.time, 3),
            "until": None if self.until is None else round(self.until, 3),
            "best": round(self.time if self.best is None else self.best, 3),
            "score": round(self.score, 4),
            "caption_score": round(self.caption_score, 4),
            "class_score": round(self.class_score, 4),
            "caption": self.caption,
        }


def query_row(query: str) -> np.ndarray:
    """(1000,) weights of the ImageNet classes a free-text query is about."""
    from capsight.classify.class_sets import ClassList
    from capsight.classify.offline import OfflineConfig, imagenet_mapping, wordnet_rows
    from capsight.classify.templates import OFFLINE_TEMPLATES

    config = OfflineConfig(similarity_weight_matched=1.0, exclusive=False)
    row = imagenet_mapping(ClassList((query,)), OFFLINE_TEMPLATES, config)[0]
    words = [w.strip(".,!?;:'\"") for w in query.lower().split()]
    phrases = [" ".join(words[i : i + n]) for n in (1, 2) for i in range(len(words) - n + 1)]
    known = [p for p in phrases if p and p not in _STOP_WORDS]
    if known:
        row = np.maximum(row, wordnet_rows(known, config).max(axis=0))
    return row


_STOP_WORDS = {"a", "an", "the", "on", "in", "of", "at", "with", "and", "or", "is", "to", "by"}


# Neighbouring moments whose captions embed at least this close (MiniLM cosine) say nearly the
# same: "a man in a white shirt is standing on a wall" and "... in a black shirt ..." (0.78) or
# "... on a black dog" (0.63) in one shot; across the shared clips' cuts neighbours scored
# -0.02 to 0.57 (one person leaving an empty room: 0.43).
NEAR_SAME = 0.6
# A query this close to "a blank frame" asks for flat frames (fades, dark cards): "black" 0.29,
# "nothing" 0.31, "a black screen" 0.48; things scored 0.13-0.26 ("a car" 0.24, "a dark room"
# 0.26), and a flat frame holds none of them.
ASKS_FOR_BLANK = 0.28


def rank_moments(
    query: str, times: list[float], captions: list[str], probs: np.ndarray, top: int = 5
) -> list[SearchHit]:
    """Rank moments (time, caption, ImageNet probabilities (M, 1000)) against ``query``."""
    from capsight.classify.text_cache import embed_texts
    from capsight.novelty.frames import FLAT_CAPTION

    query = _check_query(query).strip()
    if not query:
        raise InvalidParameter("the search query is empty; describe what to look for")
    check_decoded(query, "the search query")
    top = check_count("top", top, 1)
    if not times:
        return []
    vectors = embed_texts([query, *captions])  # (1 + M, 384), unit rows
    caption_scores = vectors[1:] @ vectors[0]  # (M,)
    class_scores = np.sqrt(np.clip(probs @ query_row(query), 0.0, 1.0))  # (M,)
    # A flat frame's classes are the encoder's guesses at grey: no evidence of anything.
    flat = np.array([c == FLAT_CAPTION for c in captions])
    class_scores[flat] = 0.0
    scores = (caption_scores + class_scores) / 2
    asks_for_blank = flat.any() and float(caption_scores[flat].max()) >= ASKS_FOR_BLANK
    if asks_for_blank:  # the caption is all the evidence a flat frame has: scored by it alone
        scores[flat] = caption_scores[flat]  # (halved, "a dark screen" had been called no match)
    shots = _shot_runs(times, vectors[1:], scores)
    if flat.any() and not asks_for_blank:
        # Fades and dark cards are no match for anything else; listed, they outranked a shot
        # that showed the thing ("a tire": four blank frames at 0.107 above the tread at 0.070).
        shots = {i: span for i, span in shots.items() if not flat[i]}
    # Hits that score the same to 3 decimals (the same caption in several places, its classes'
    # noise apart) in time order: they had come as 136, 120, 1, 70 s for "a little girl".
    order = sorted(shots, key=lambda i: (-round(float(scores[i]), 3), times[i]))[:top]
    return [
        SearchHit(
            shots[i][0],
            float(scores[i]),
            float(caption_scores[i]),
            float(class_scores[i]),
            captions[i],
            shots[i][1],
            float(times[i]),
        )
        for i in order
    ]


def _check_query(query: object) -> str:
    if not isinstance(query, str):  # (None, bytes: an AttributeError or TypeError inside)
        raise InvalidParameter(f"the search query must be text, got {type(query).__name__}")
    return query


def _shot_runs(
    times: list[float], vectors: np.ndarray, scores: np.ndarray
) -> dict[int, tuple[float, float | None]]:
    """The best-scoring moment of each run of moments in a row (in time) whose captions say
    nearly the same (``vectors``: their unit embeddings, (M, 384); each within ``NEAR_SAME`` of
    the one before), -> the run's first and last times (None for a run of one): the seconds of
    one shot are one hit, placed where the shot starts (its best moment is only the noise of
    the ImageNet classes and the wording, and was at times the last moment, in the dissolve to
    the next shot), and the next shot gets a place."""
    by_time = sorted(range(len(times)), key=lambda i: times[i])
    best: dict[int, tuple[float, float | None]] = {}
    run: list[int] = []
    for i in [*by_time, None]:
        if run and (i is None or float(vectors[i] @ vectors[run[-1]]) < NEAR_SAME):
            first, last = float(times[run[0]]), float(times[run[-1]])
            best[max(run, key=lambda j: (scores[j], -times[j]))] = (
                first,
                last if len(run) > 1 else None,
            )
            run = []
        if i is not None:
            run.append(i)
    return best


def search_video(
    video: str | os.PathLike,
    query: str,
    every: float = 1.0,
    top: int = 5,
    captioner: str = "default",
    progress: ProgressCallback | None = None,
) -> list[SearchHit]:
    """Sample ``video`` every ``every`` seconds, caption and classify each moment, rank them.
    Frames are captioned a batch at a time as they are decoded, so memory stays bounded."""
    from capsight.captioning.facade import cached_encoder, resolve_captioner
    from capsight.io.video import probe_video, sample_frames
    from capsight.novelty.analysis import AnalysisParams
    from capsight.novelty.frames import FLAT_CAPTION, FRAME_MAX_SIDE, normalise_exposure, sharpness
    from capsight.novelty.pipeline import check_every, video_captioner_name

    every = check_every(every)  # as analyze_video reads it
    _check_query(query)
    check_progress(progress)
    if not isinstance(video, (str, os.PathLike)):
        raise InvalidParameter(f"video must be a path, got {type(video).__name__}")
    if not query.strip():
        raise InvalidParameter("the search query is empty; describe what to look for")
    check_decoded(query, "the search query")  # before the video is captioned, not after
    top = check_count("top", top, 1)
    duration = probe_video(video).duration  # a bad file fails here, before any model loads
    # "default": the one-encoder video captioner; an unknown name fails before the sampling
    caption_model, _ = resolve_captioner(video_captioner_name(captioner))
    # As analyze_video encodes a frame: in float32 where its captioner reads the novelty
    # encoder's grid (in bfloat16, 12 of a real clip's 31 moments got other captions than its
    # analysis.json holds), in the captioners' precision where it has an encoder of its own.
    own = caption_model.encoder_name != AnalysisParams.encoder
    encoder = cached_encoder(caption_model.encoder_name, reduced_precision=own)
    times: list[float] = []
    captions: list[str] = []
    probs: list[np.ndarray] = []
    batch: list = []

    def describe() -> None:
        encoded = encoder.encode(batch)  # one pass gives the captioner's grid and the classes
        results = caption_model.caption(encoded, None)
        # as analyze_video captions them: a flat frame (a fade, a dark card) is "a blank frame"
        captions.extend(FLAT_CAPTION if math.isnan(sharpness(image)) else r.text
                        for image, r in zip(batch, results, strict=True))  # fmt: skip
        probs.append(encoded.probs.numpy())  # (B, 1000)
        batch.clear()
        if progress is not None:
            done = min(1.0, times[-1] / duration) if duration > 0 else 0.0
            progress(done, f"captioned {len(times):,} moments")

    if progress is not None:
        progress(0.0, "captioning moments")
    for frame in sample_frames(video, every, max_side=FRAME_MAX_SIDE, lean=True):
        times.append(frame.time)
        batch.append(normalise_exposure(frame.image))
        if len(batch) == _BATCH:
            describe()
    if batch:
        describe()
    stacked = np.concatenate(probs) if probs else np.zeros((0, 1000), np.float32)
    return rank_moments(query, times, captions, stacked, top)


def analysis_file(target: str | os.PathLike) -> Path:
    """The ``analysis.json`` that ``target`` names: itself, or the one in the folder
    ``capsight video --out`` wrote for a video; InputNotFound, with what to give, otherwise."""
    target = Path(target)
    if target.is_dir():
        if not (target / "analysis.json").is_file():
            inner = sorted(p.parent.name for p in target.glob("*/analysis.json"))
            if inner:  # the --out of several videos: one folder each
                more = f" ({len(inner)} of them)" if len(inner) > 1 else ""
                raise InputNotFound(f"{target}: holds one analysis per video{more}; give one of "
                                    f"its folders, e.g. {target / inner[0]}")  # fmt: skip
            videos = _videos_in(target)
            if videos:  # (search takes one video at a time)
                raise InputNotFound(f"{target}: a folder of {videos} video{'s' if videos > 1 else ''}, "
                                    "not an analysis; search one video at a time: capsight search "
                                    "VIDEO QUERY")  # fmt: skip
            raise InputNotFound(f"{target}: a folder without analysis.json; give the folder "
                                "`capsight video --out` (or analyze_video's write_outputs) wrote "
                                "for a video, or search the video itself")  # fmt: skip
        target = target / "analysis.json"
    if not target.is_file():
        raise InputNotFound(f"{target}: no such analysis file (`capsight video` writes one into "
                            "its --out folder for one video, and into <--out>/<video name>/ for "
                            "several)")  # fmt: skip
    return target


def analysis_files(target: str | os.PathLike) -> list[Path]:
    """The ``analysis.json`` files ``target`` names: ``analysis_file``'s one, or, for the
    ``--out`` folder of a batch (``capsight video A.mp4 B.mp4 --out DIR``), one per video's
    folder in name order (it had been refused: "give one of its folders")."""
    folder = Path(target)
    if folder.is_dir() and not (folder / "analysis.json").is_file():
        inner = sorted(folder.glob("*/analysis.json"))
        if inner:
            return inner
    return [analysis_file(target)]


def search_analyses(
    targets: Sequence[str | os.PathLike] | str | os.PathLike, query: str, top: int = 5
) -> list[tuple[Path, SearchHit]]:
    """``search_analysis`` over several analyses (each a file, a video's folder, or a batch's
    ``--out`` folder of them): the ``top`` hits of them all, best first, each with the
    analysis it came from. Every target is checked before any is read."""
    _check_query(query)
    if isinstance(targets, (str, os.PathLike)):  # one folder, not its name's characters
        targets = [targets]
    files = list(dict.fromkeys(p for t in targets for p in analysis_files(t)))
    found = [(path, hit) for path in files for hit in search_analysis(path, query, top)]
    found.sort(key=lambda pair: -pair[1].score)  # (stable: ties in the order named)
    return found[:top]


def _videos_in(folder: Path) -> int:
    from capsight.io.images import VIDEO_SUFFIXES

    return sum(1 for p in folder.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())


def _is_video(path: Path) -> bool:
    from capsight.io.sniff import SNIFF_BYTES, sniff_video

    try:
        with open(path, "rb") as f:
            return sniff_video(f.read(SNIFF_BYTES)) is not None
    except OSError:  # only a hint for the message
        return False


def search_analysis(analysis_json: str | os.PathLike, query: str, top: int = 5) -> list[SearchHit]:
    """Rank the moments of a finished ``analysis.json``, or of the folder holding it
    (captions + their top ImageNet classes)."""
    import json

    from capsight.vision.imagenet_classes import imagenet_class_names

    if not isinstance(analysis_json, (str, os.PathLike)):
        raise InvalidParameter(f"analysis_json must be a path, got {type(analysis_json).__name__}")
    _check_query(query)
    path = analysis_file(analysis_json)
    try:
        data = json.loads(path.read_text("utf-8"))
    except RecursionError:  # "[[[[...": nested past Python's limit
        raise InvalidParameter(f"{path}: damaged, nested too deeply to be an analysis; run "
                               "`capsight video` again") from None  # fmt: skip
    except (ValueError, UnicodeDecodeError) as exc:
        if path.suffix.lower() != ".json" and _is_video(path):  # search_analysis("clip.mp4", ...)
            raise InvalidParameter(f"{path}: is a video, not an analysis; search it with "
                                   "search_video (capsight search decodes it)") from None  # fmt: skip
        raise InvalidParameter(f"{path}: damaged, not valid JSON ({str(exc)[:80]}); run "
                               "`capsight video` again") from None  # fmt: skip
    moments = data.get("moments") if isinstance(data, dict) else None
    if not isinstance(moments, list):
        raise InvalidParameter(f"{path}: not a capsight analysis.json (no moments)")
    if not all(isinstance(m, dict) and "time" in m for m in moments):  # (had said "no moments")
        raise InvalidParameter(f"{path}: a moment is not an object with a time; run `capsight "
                               "video` again")  # fmt: skip
    stamps = [m["time"] for m in moments]
    captions = [m.get("caption", "") for m in moments]
    try:  # (true and false are no seconds, though Python would count them 1 and 0)
        times = [float(t) if not isinstance(t, bool) else math.nan for t in stamps]
    except (ValueError, TypeError):  # "abc", null
        times = []
    if len(times) != len(stamps) or not all(math.isfinite(t) and t >= 0 for t in times):
        raise InvalidParameter(f"{path}: a moment's time is not a number of seconds")
    captions = ["" if c is None else c for c in captions]  # a moment left uncaptioned
    if not all(isinstance(c, str) for c in captions):
        raise InvalidParameter(f"{path}: a moment's caption is not text")
    index = {name: i for i, name in reversed(list(enumerate(imagenet_class_names())))}
    probs = np.zeros((len(moments), 1000), np.float32)
    for row, moment in zip(probs, moments, strict=False):
        try:
            labels = [(str(name), float(p)) for name, p in moment.get("labels") or []]
        except (ValueError, TypeError):  # not [[name, probability], ...]
            raise InvalidParameter(
                f"{path}: the moment at {moment['time']} s has malformed labels; expected "
                "[[class name, probability], ...] as `capsight video` writes them"
            ) from None
        if not all(0.0 <= p <= 1.0 for _, p in labels):  # NaN fails both comparisons
            raise InvalidParameter(f"{path}: the moment at {moment['time']} s has a class "
                                   "probability outside 0-1")  # fmt: skip
        for name, p in labels:
            if name in index:
                row[index[name]] = p
    return rank_moments(query, times, captions, probs, top)
