"""``analyze_video``: video file -> ``Analysis`` (captions, novelty, novel moments).

    >>> analysis = analyze_video("clip.mp4", every=1.0, window=5, signal="fused")
    >>> [(m.time, m.caption) for m in analysis.novel_moments]
    [(12.0, 'a photo of a golden retriever'), (31.0, 'a photo of a pizza')]

Data flow: three stages overlap, handing batches of 16 moments to each other through bounded
queues. Frames are decoded from the first moment, exposure-normalised and thumbnailed by
``capsight.novelty.frames`` (in a child process while the models load here, on a thread in a
process where torch is loaded; that module explains why, and what exposure normalisation does);
a thread encodes each batch once with the image encoder (pooled vector, grid, ImageNet
probabilities); on the calling thread it is captioned from that encoding and its captions
embedded. The models run on ONNX Runtime where it can run them (``capsight.ort``: no torch
import), else on torch. Then novelty is scored for the ``text`` signal (caption embeddings), the ``visual``
signal (pooled image features) and ``fused`` (both), and the novel moments are selected
(``capsight.novelty.selection``).
"""

from __future__ import annotations

import math
import numbers
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from capsight.allocator import reuse_freed_memory
from capsight.background import Background
from capsight.captioning.options import DecodingOptions
from capsight.errors import InvalidParameter
from capsight.io.video import MIN_EVERY, probe_video
from capsight.novelty.analysis import Analysis, AnalysisParams, Moment, StoppedPartWay
from capsight.novelty.frames import FLAT_CAPTION, Frame, FrameBatches, sharpness
from capsight.novelty.reports import format_clock
from capsight.novelty.scoring import canonical_metric, check_window, novelty_scores
from capsight.novelty.selection import (
    SIGNALS,
    SelectionConfig,
    fused_novelty,
    moment_spacing,
    region_features,
    select_novel_moments,
)
from capsight.ort.video import video_models
from capsight.progress import ProgressCallback, check_progress, no_progress

if TYPE_CHECKING:
    from capsight.vision.encoder import EncodedImages, ImageEncoder


REGIONS = SelectionConfig().regions  # the encoder grid is pooled into REGIONS x REGIONS cells


def _check_call(path, captioner, greedy, thumbnail_size, partial=True) -> str:
    """What the CLI's parser would have refused, for callers from Python; ``captioner`` as a
    name (a folder given as a path too)."""
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidParameter(
            f"the video must be a path (str or os.PathLike), not {type(path).__name__!r}"
        )
    if isinstance(captioner, os.PathLike):
        captioner = os.fspath(captioner)
    if not isinstance(captioner, str):
        raise InvalidParameter(
            f"captioner must be a captioner name or a folder, not {type(captioner).__name__!r}"
        )
    for name, value in (("greedy", greedy), ("partial", partial)):  # "no" was taken as True
        if not isinstance(value, (bool, np.bool_)):
            raise InvalidParameter(f"{name} must be True or False, got {value!r}")
    if thumbnail_size is not None and (
        isinstance(thumbnail_size, bool) or not isinstance(thumbnail_size, numbers.Integral)
    ):
        raise InvalidParameter(
            f"thumbnail size must be a whole number of pixels or None, got {thumbnail_size!r}"
        )
    return captioner


def chosen_captioner(captioner: object, model: object) -> object:
    """The captioner asked for as ``model=`` (the name ``capsight.caption`` and the CLI use) or
    as ``captioner=`` (its older name here); InvalidParameter for two different ones."""
    if model is None:
        return captioner
    if captioner != "default" and captioner != model:
        raise InvalidParameter(
            f"model={model!r} and captioner={captioner!r} both name the captioner "
            "(captioner= is model='s older name): give one"
        )
    return model


def check_every(every: object) -> float:
    """``every`` (seconds between samples) as a float, or InvalidParameter naming it: a number
    (NumPy's too), not True or "1", positive and finite (10**400 was an OverflowError)."""
    every = _real(every, "every", "a number of seconds")
    if not math.isfinite(every) or every <= 0:
        raise InvalidParameter(
            f"every must be a positive number of seconds, got {every:g}", "every"
        )
    return every


def _real(value: object, name: str, kind: str) -> float:
    """``value`` as a float when it is a real number (NumPy's too; not True or "1"; past a
    float's range, infinity), else InvalidParameter naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidParameter(f"{name} must be {kind}, got {value!r}", name)
    try:
        return float(value)
    except OverflowError:
        return math.inf


def _check_params(every, window, metric, signal, sensitivity, thumbnail_size) -> tuple:
    every = check_every(every)
    window = check_window(window)
    metric = canonical_metric(metric)
    signal = str(signal).lower() if isinstance(signal, str) else signal  # as metric: "Visual" too
    if signal not in SIGNALS:
        raise InvalidParameter(f"unknown signal {signal!r}; use {', '.join(SIGNALS)}")
    sensitivity = _real(sensitivity, "sensitivity", "a number")
    if not 0.0 <= sensitivity <= 1.0:
        raise InvalidParameter(
            f"sensitivity must be between 0 and 1, got {sensitivity:g}", "sensitivity"
        )
    if thumbnail_size is not None and thumbnail_size and int(thumbnail_size) < 16:
        raise InvalidParameter(f"thumbnail size must be at least 16 pixels, got {thumbnail_size}")
    return every, window, metric, signal, sensitivity + 0.0  # (-0 read "sensitivity -0")


def check_options(
    *,
    every,
    window,
    metric,
    signal,
    sensitivity,
    captioner,
    greedy,
    thumbnail_size=None,
    model=None,
) -> None:
    """Raise the ``InvalidParameter`` that ``analyze_video`` would for these options, without a
    video or a model: the CLI checks once before a folder of videos, not once per video. Model
    names are checked where the models load."""
    _check_call("", chosen_captioner(captioner, model), greedy, thumbnail_size)
    _check_params(every, window, metric, signal, sensitivity, thumbnail_size)


_threads_lock = threading.Lock()
_threads_users = 0
_threads_saved = 1


@contextmanager
def _single_torch_thread() -> Iterator[None]:
    """One torch thread per stage while any analysis runs (the stages already fill the cores;
    more threads only contend); the previous setting returns when the last analysis ends."""
    import torch

    global _threads_users, _threads_saved
    with _threads_lock:
        if _threads_users == 0:
            _threads_saved = torch.get_num_threads()
            torch.set_num_threads(1)
        _threads_users += 1
    try:
        yield
    finally:
        with _threads_lock:
            _threads_users -= 1
            if _threads_users == 0:
                torch.set_num_threads(_threads_saved)


# "default" for video: the single Show, Attend and Tell model on Lite0, which decodes from the
# encoding the novelty signals already need. The photo default (a Lite0 + Lite2 pair) would add
# a second encoder pass per moment for captions that the fused selection does not read.
VIDEO_DEFAULT_CAPTIONER = "show-attend-tell"


def video_captioner_name(name: str) -> str:
    """What a video is captioned with when asked for ``name``: "default" stands for
    ``VIDEO_DEFAULT_CAPTIONER`` where it is installed (else for the photo default)."""
    if name != "default":
        return name
    from capsight.captioning.facade import resolve_captioner
    from capsight.errors import ModelNotFound

    try:
        resolve_captioner(VIDEO_DEFAULT_CAPTIONER)
    except ModelNotFound:
        return name
    return VIDEO_DEFAULT_CAPTIONER


def _encoded_batches(
    frames: Iterable[list[Frame]], load_encoder: Callable[[], object], timings: dict[str, float]
) -> Iterator[tuple[list[Frame], EncodedImages, ImageEncoder]]:
    """Load the encoder, then encode each batch of (exposure-normalised) frames."""
    t = time.perf_counter()
    image_encoder = load_encoder()
    timings["load_encoder_s"] = time.perf_counter() - t
    for batch in frames:
        t = time.perf_counter()
        encoded = image_encoder.encode([f.image for f in batch])
        timings["encode_s"] += time.perf_counter() - t
        yield batch, encoded, image_encoder


def _torch_encoder(name: str) -> Callable[[], ImageEncoder]:
    def load() -> ImageEncoder:
        from capsight.vision.encoder import ImageEncoder

        return ImageEncoder(name)

    return load


@dataclass
class _Collected:
    """What an analysis gathers per sampled moment, batch by batch: one list each, and arrays
    per batch for the vectors."""

    times: list[float] = field(default_factory=list)
    captions: list[str] = field(default_factory=list)
    labels: list[list[tuple[str, float]]] = field(default_factory=list)
    thumbs: list[bytes | None] = field(default_factory=list)
    sharp: list[float] = field(default_factory=list)  # each frame's fine detail, for the blur test
    pooled: list[np.ndarray] = field(default_factory=list)  # (B, 1280) per batch
    regions: list[np.ndarray] = field(default_factory=list)  # float16 (B, 9, 1280): ~23 KB a moment
    text_vectors: list[np.ndarray] = field(default_factory=list)  # (B, D) per batch

    def add(self, batch: list[Frame], encoded, image_encoder, texts: list[str],
            vectors: np.ndarray, detail: list[float]) -> None:  # fmt: skip
        """One batch: its frames, their encoding, captions (``texts``), caption ``vectors`` and
        sharpness (``detail``: NaN for a flat frame, which gets no ImageNet classes: "sandbar
        0%" for a black frame was noise, as for a photo)."""
        self.text_vectors.append(vectors)
        self.pooled.append(np.asarray(encoded.pooled, np.float32))
        grid = np.asarray(encoded.grid)  # (B, h*w, 1280)
        self.regions.append(region_features(grid, REGIONS).astype(np.float16))
        self.labels.extend([] if math.isnan(d) else found for d, found in
                           zip(detail, image_encoder.top_classes(encoded.probs, k=3), strict=True))  # fmt: skip
        self.captions.extend(texts)
        self.times.extend(f.time for f in batch)
        self.thumbs.extend(f.thumbnail for f in batch)
        self.sharp.extend(detail)

    def keep_whole_moments(self) -> int:
        """After a Ctrl-C, which may land between two of a batch's appends: keep the moments
        every list holds; -> how many."""
        kept = min(len(self.times), len(self.captions), len(self.labels), len(self.thumbs),
                   len(self.sharp), *(sum(len(part) for part in parts) for parts in
                                      (self.pooled, self.regions, self.text_vectors)))  # fmt: skip
        for name in ("pooled", "regions", "text_vectors"):
            parts = getattr(self, name)
            setattr(self, name, [np.concatenate(parts)[:kept]] if parts else [])
        for column in (self.times, self.captions, self.labels, self.thumbs, self.sharp):
            del column[kept:]
        return kept


def analyze_video(
    path: str | os.PathLike,
    every: float = 1.0,
    window: int = 5,
    metric: str = "cosine",
    signal: str = "fused",
    sensitivity: float = 0.5,
    captioner: str = "default",
    greedy: bool = False,
    text_embedder: str = "minilm",
    encoder: str = "efficientnet-lite0",
    progress: ProgressCallback | None = None,
    thumbnail_size: int | None = 320,
    partial: bool = True,
    model: str | os.PathLike | None = None,
) -> Analysis:
    """Sample, caption and score a video; return the ``Analysis`` (see module docstring).

    ``model`` (or ``captioner``, its older name, as in ``AnalysisParams``): the captioner;
    ``"default"`` captions with ``VIDEO_DEFAULT_CAPTIONER`` (one encoder pass per
    moment), not the photo default. Moments are captioned with the captioner's default decoding
    (beam 3 for the shipped model);
    ``greedy=True`` decodes greedily: about 0.2 s less per 70 moments on 2 cores, captions a
    little worse (Flickr8k test CIDEr 0.583 vs 0.591, docs/MODEL_CARD.md).

    ``path``: the video file. ``every``: seconds between sampled moments. ``window``: how many
    previous moments each is compared with (their mean). ``metric``: "cosine" or "euclidean".
    ``signal``: what ``novelty`` reports and the selection reads ("fused", "visual", "text").
    ``sensitivity``: 0-1, higher finds more (and more false alarms). ``captioner``: a name or a
    checkpoint folder. ``text_embedder``/``encoder``: model names (``capsight models``).
    ``progress(fraction, message)`` hears how far it is. ``thumbnail_size``: the longer side of
    each moment's JPEG thumbnail, None or 0 for none. ``partial``: on Ctrl-C (or SIGTERM,
    any KeyboardInterrupt) once two moments are captioned, those moments are scored and
    selected as a video that ended there, and the interrupt raised carries that ``Analysis``
    as its ``analysis`` (a plain Ctrl-C is raised as ``StoppedPartWay``); a stop while the
    novel moments are being picked keeps every moment, scored, with none picked
    (``extra["selection"]["stopped"]``). False raises it at once, as a batch that keeps no
    partial reports does.

    Raises InvalidParameter for bad options (checked before any work), InputNotFound or
    VideoOpenError for a bad file, ModelNotFound for an unknown model name.

    The first call tunes glibc's allocator for the rest of the process
    (``allocator.reuse_freed_memory``: freed blocks under 256 MB stay on the heap for reuse,
    up to 512 MB of free heap top is kept, threads share one arena): faster encoding, the same
    peak memory, memory freed after the peak returned later.
    """
    captioner = _check_call(
        path, chosen_captioner(captioner, model), greedy, thumbnail_size, partial
    )
    check_progress(progress)
    greedy = bool(greedy)
    every, window, metric, signal, sensitivity = _check_params(
        every, window, metric, signal, sensitivity, thumbnail_size
    )
    report = progress or no_progress
    started = time.perf_counter()
    info = probe_video(path)  # bad files fail here, before any model loads
    reuse_freed_memory()  # halves the encoder's time on CPU (capsight.allocator)
    # Three stages overlap: decoding (a child process), encoding (a thread) and, on this
    # thread, captioning and text embedding; one thread each. The models run on ONNX Runtime
    # where it can run them (capsight.ort: no torch import, ~1.5 s less CPU), else on torch.
    timings = {"encode_s": 0.0, "caption_s": 0.0, "text_embed_s": 0.0}
    with ExitStack() as cleanup:  # on the way out: stop decoding, the encoder, restore torch
        frames = cleanup.enter_context(FrameBatches(path, every, thumbnail_size or None))
        report(0.0, "loading models")  # after the decoder starts: it may be a fork (frames.py)
        t = time.perf_counter()
        on_ort = video_models(captioner, text_embedder, encoder, lambda what: report(0.0, what))
        if on_ort is None:
            cleanup.enter_context(_single_torch_thread())  # imports torch
        # The torch encoder loads on the encoding thread while the captioner loads here.
        load_encoder = _torch_encoder(encoder) if on_ort is None else on_ort.loaded_encoder
        encoded_batches = Background(_encoded_batches(frames, load_encoder, timings), buffer=2)
        cleanup.callback(encoded_batches.close)
        cleanup.callback(frames.close)  # runs first: a stopped decoder frees the encoder thread
        caption_encoder = None
        if on_ort is not None:
            caption_model, embedder = on_ort.captioner, on_ort.embedder
        else:
            from capsight.captioning.base import create_captioner
            from capsight.model_loading import LOADING
            from capsight.text.embedders import create_text_embedder

            with LOADING:  # one load at a time in a server (capsight.model_loading)
                caption_model = create_captioner(video_captioner_name(captioner))
            embedder = create_text_embedder(text_embedder)
            # A captioner trained on another encoder's features (say Lite2) gets its own
            # encoding of each frame; the novelty signals stay on ``encoder``'s.
            if getattr(caption_model, "encoder_name", encoder) != encoder:
                from capsight.captioning.facade import cached_encoder

                caption_encoder = cached_encoder(caption_model.encoder_name)
        decoding = DecodingOptions(method="greedy") if greedy else None  # None: the default
        timings["load_captioner_s"] = time.perf_counter() - t
        report(0.0, "captioning the first frames")  # the first batch's report comes after it

        collected = _Collected()
        stopped: KeyboardInterrupt | None = None
        try:
            for batch, encoded, image_encoder in encoded_batches:
                t1 = time.perf_counter()
                for_captions = encoded
                if caption_encoder is not None:
                    for_captions = caption_encoder.encode([f.image for f in batch])
                results = caption_model.caption(for_captions, decoding)
                t2 = time.perf_counter()
                detail = [sharpness(f.image) for f in batch]
                # A flat frame (a fade, a dark title card) holds nothing to describe: the captioner
                # would invent "a man in a black shirt" from the noise normalisation amplified.
                texts = [
                    FLAT_CAPTION if math.isnan(d) else r.text
                    for r, d in zip(results, detail, strict=True)
                ]
                unique = sorted(set(texts))  # a continuing shot repeats its caption: embed it once
                vectors = embedder.embed(unique)[[unique.index(text) for text in texts]]  # (B, D)
                t3 = time.perf_counter()
                timings["caption_s"] += t2 - t1
                timings["text_embed_s"] += t3 - t2
                collected.add(batch, encoded, image_encoder, texts, vectors, detail)
                if info.duration > 0:
                    done = min(0.99, (batch[-1].time + every) / info.duration)
                    report(done, f"captioned up to {format_clock(batch[-1].time)}")
        except KeyboardInterrupt as stop:  # the moments captioned so far are analysed
            if not partial:
                raise
            stopped = stop
    timings["decode_s"] = frames.seconds
    if stopped is not None and collected.keep_whole_moments() < 2:
        raise stopped  # nothing to compare: the stop is just a stop
    times, captions, labels = collected.times, collected.captions, collected.labels
    thumbs, sharp = collected.thumbs, collected.sharp
    pooled, regions, text_vectors = collected.pooled, collected.regions, collected.text_vectors
    # (an hour's moments take ~10 s more to weigh: said, not a bar standing still at 99%)
    report(0.99, f"picking the novel moments of {len(times):,}")

    t = time.perf_counter()
    embeddings = {
        "visual": np.concatenate(pooled) if pooled else np.zeros((0, 1280), np.float32),
        "text": np.concatenate(text_vectors) if text_vectors else np.zeros((0, 384), np.float32),
    }
    per_signal = {name: novelty_scores(x, window, metric) for name, x in embeddings.items()}
    per_signal["fused"] = fused_novelty(per_signal["visual"], per_signal["text"])
    # Selection sees the regions of the feature grid, not the pooled vector (selection.py).
    for_selection = {
        "visual": np.concatenate(regions).astype(np.float32) if regions else embeddings["visual"],
        "text": embeddings["text"],
    }
    selected_on = ["visual", "text"] if signal == "fused" else [signal]

    def select(at: float):
        return select_novel_moments(
            {name: for_selection[name] for name in selected_on},
            window=window,
            metric=metric,
            sensitivity=at,
            every=max(MIN_EVERY, moment_spacing(times, every)),
            sharpness=np.asarray(sharp, dtype=np.float64),
        )

    novel: set[int] = set()
    captioned_all = stopped is None
    try:
        selection = select(sensitivity)
        described = selection.describe()
        if not selection.indices and len(times) > 1:
            # Whether the quiet-video hint may suggest a higher sensitivity (Analysis.quiet_reason).
            described["novel_at_sensitivity_1"] = (
                len(select(1.0).indices) if sensitivity < 1.0 else 0
            )
        novel = set(selection.indices)
    except KeyboardInterrupt as stop:  # the moments are captioned and scored: kept, none picked
        if not partial:
            raise
        stopped, described = stopped or stop, {"stopped": True}
    timings["select_s"] = time.perf_counter() - t

    moments = [
        Moment(
            time=times[i],
            caption=captions[i],
            novelty=_value(per_signal[signal][i]),
            novelty_text=_value(per_signal["text"][i]),
            novelty_visual=_value(per_signal["visual"][i]),
            is_novel=i in novel,
            labels=labels[i],
            thumbnail=thumbs[i],
        )
        for i in range(len(times))
    ]
    timings["total_s"] = time.perf_counter() - started
    captioner_ran = getattr(caption_model, "name", captioner)
    params = AnalysisParams(  # "default" is recorded as what it stood for
        every,
        window,
        metric,
        signal,
        sensitivity,
        captioner_ran if captioner == "default" else captioner,
        text_embedder,
        encoder,
    )
    extra = {
        "timings": {k: round(v, 3) for k, v in timings.items()},
        "captioner": captioner_ran,
        "decoding": "none"
        if captioner_ran == "labels"
        else "greedy"
        if greedy
        else "default",  # labels: no words
        "runtime": "onnxruntime" if on_ort is not None else "torch",
        "selection": described,
        "exposure_normalised": True,
    }
    if stopped is not None:
        if not captioned_all:  # (stopped in selection alone: every moment was analysed)
            extra["stopped_at"] = times[-1]
        part = Analysis(info, params, moments, extra)
        if type(stopped) is KeyboardInterrupt:
            raise StoppedPartWay(part) from None
        stopped.analysis = part  # (SIGTERM's own kind, which the CLI exits 143 for, kept)
        raise stopped
    report(1.0, "done")
    return Analysis(info, params, moments, extra)


def _value(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)
