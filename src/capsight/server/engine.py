"""The models the server keeps warm, and the one place the server calls the library.

    >>> engine = Engine(default_model="default")
    >>> engine.start_loading()            # background thread; /readyz turns 200 when done
    >>> engine.wait_ready(timeout=60)
    >>> described = engine.describe([load_image("cat.jpg")])
    >>> described[0].caption.text
    'a photo of an Egyptian cat'

Routers and the job workers only talk to an ``Engine``; tests hand ``create_app`` a small fake
with the same methods. Caption requests go through ``inference_slots`` worker threads that batch
requests arriving together (``capsight.server.batching``), so a burst of clients queues for the
CPU in efficient batches instead of thrashing it.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from capsight.errors import CapsightError, InvalidParameter, ModelNotFound, name_hint, quoted
from capsight.progress import ProgressCallback, no_progress
from capsight.server.batching import CaptionBatcher

if TYPE_CHECKING:
    from PIL import Image

    from capsight.captioning.base import DecodingOptions
    from capsight.captioning.facade import ImageDescription
    from capsight.novelty.analysis import Analysis
    from capsight.vision.encoder import EncodedImages

log = logging.getLogger("capsight.server")

METRICS = ("cosine", "euclidean", "euclidian")
THUMBNAIL_SIDE = 240  # px; novel-moment thumbnails for the gallery, the API and the report
SIGNALS = ("fused", "text", "visual")


@dataclass(frozen=True)
class VideoParams:
    """What a client may choose for a video analysis (the library's names and ranges)."""

    every: float = 1.0  # seconds between sampled moments
    window: int = 5  # previous moments averaged
    metric: str = "cosine"  # cosine | euclidean (the original spelling euclidian accepted)
    signal: str = "fused"  # fused | text | visual
    sensitivity: float = 0.5  # 0 = only the strongest changes .. 1 = every plausible change
    model: str = "default"  # captioner

    def __post_init__(self) -> None:
        if not 0 < self.every <= 3600:
            raise InvalidParameter("every must be in (0, 3600] seconds")
        if not 1 <= self.window <= 1000:
            raise InvalidParameter("window must be in 1..1000 moments")
        if self.metric not in METRICS:
            raise InvalidParameter(f"unknown metric {self.metric!r}; use cosine or euclidean")
        if self.signal not in SIGNALS:
            raise InvalidParameter(f"unknown signal {self.signal!r}; use fused, text or visual")
        if not 0 <= self.sensitivity <= 1:
            raise InvalidParameter("sensitivity must be in [0, 1]")
        if self.metric == "euclidian":
            object.__setattr__(self, "metric", "euclidean")

    def to_dict(self) -> dict:
        return asdict(self)


def servable_captioners() -> list[str]:
    """Registered captioners a client may name: those whose factory needs no arguments."""
    from capsight.captioning.base import _REGISTRY, available_captioners

    names = []
    for name in available_captioners():
        try:
            params = inspect.signature(_REGISTRY[name]).parameters.values()
        except (TypeError, ValueError):
            continue
        if all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in params):  # fmt: skip
            names.append(name)
    return names


def serve_checkpoints(served: dict[str, str]) -> None:
    """Register each trained checkpoint folder of ``served`` ({name: folder}, ``serve
    --captioner NAME=FOLDER``) as a captioner clients may name: the server's operator chose
    the folder, so no client path reaches the filesystem. ModelNotFound, in one line, for a
    folder that holds no checkpoint, or one that cannot be loaded (each is loaded once here),
    or a name a captioner already has."""
    import functools

    from capsight.captioning.base import _REGISTRY, available_captioners, register_captioner
    from capsight.captioning.checkpoint import CONFIG, checkpoint_folder
    from capsight.captioning.trained import TrainedCaptioner

    for name, folder in served.items():
        path = Path(folder).expanduser().absolute()
        existing = _REGISTRY.get(name)
        if getattr(existing, "checkpoint_folder", None) == path:
            continue  # registered by an earlier start in this process
        if name in available_captioners():
            raise ModelNotFound(f"--captioner {name}={folder}: {name!r} is a captioner capsight "
                                "has already; choose another name")  # fmt: skip
        if not path.is_dir():
            raise ModelNotFound(f"--captioner {name}={folder}: no such folder")
        found = checkpoint_folder(path)
        if not (found / CONFIG).is_file() and not any(
            (p / CONFIG).is_file() for p in found.iterdir() if p.is_dir()
        ):
            raise ModelNotFound(
                f"--captioner {name}={folder}: no trained checkpoint there (no {CONFIG}); name "
                "a capsight train run folder or its best/"
            )
        factory = functools.partial(TrainedCaptioner, name, str(path))
        try:  # read once now: a folder missing its weights or vocabulary had been served,
            factory()  # its requests failing one by one (or, as --model, every request)
        except CapsightError as exc:
            raise ModelNotFound(f"--captioner {name}={folder}: {exc}") from None
        factory.checkpoint_folder = path  # (ort.video runs it on ONNX Runtime where it can)
        register_captioner(name)(factory)


def check_servable(name: str) -> None:
    """Raise ModelNotFound unless ``name`` is "default" or a captioner the server may serve.

    Looks at the registry only, so ``capsight serve --model nope`` is refused before any
    weights load.
    """
    if name != "default" and name not in servable_captioners():
        raise ModelNotFound(
            f"unknown captioner {quoted(name)}{name_hint(name, servable_captioners())}; "
            f"available: {', '.join(['default', *servable_captioners()])}"
        )


class Engine:
    """Warm models for the server: encoder, captioners, text embedder, video pipeline."""

    def __init__(self, default_model: str = "default", inference_slots: int = 1) -> None:
        self.default_model = default_model
        self.inference_slots = inference_slots
        self._batcher: CaptionBatcher | None = None
        self._batcher_lock = threading.Lock()
        self._ready = threading.Event()
        self._load_error: str | None = None
        self._thread: threading.Thread | None = None
        self.load_seconds: float | None = None
        # Set by `capsight serve` on SIGINT/SIGTERM, before shutdown (the app's state.stopping):
        # requests waiting on the models answer 503 at once (deps.run_limited).
        self.stopping = threading.Event()

    # -- start-up ---------------------------------------------------------------------------
    def start_loading(self) -> None:
        """Load the default models in a background thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._load, name="capsight-load", daemon=True)
            self._thread.start()

    def _load(self) -> None:
        start = time.perf_counter()
        try:
            from PIL import Image

            from capsight.captioning.facade import describe_images, resolve_captioner

            _, name = resolve_captioner(self.default_model)
            # One tiny image through the whole path builds every lazy cache (weights, kernels).
            describe_images([Image.new("RGB", (64, 64), (128, 128, 128))], model=name)
            # Video jobs run on ONNX Runtime where it can (capsight.ort): export its graphs
            # now, not in the first job.
            from capsight.ort.video import video_models

            video_models("default", "minilm", "efficientnet-lite0")
            self._describe_every_captioner()
            self.load_seconds = time.perf_counter() - start
            log.info("models ready in %.1f s (default captioner: %s)", self.load_seconds, name)
        except CapsightError as exc:
            self._load_error = str(exc)
            log.error("model loading failed: %s", exc)
        except Exception as exc:  # a bug or a broken install: the details go to the log only
            self._load_error = f"internal error ({type(exc).__name__}); see the server log"
            log.exception("model loading failed")
        finally:
            self._ready.set()

    def _describe_every_captioner(self) -> None:
        """Load every servable captioner before /readyz says ready: ``GET /v1/models`` and the
        page's model menus describe them all, and the first of them had waited 5-7 s (prefix-gpt2
        imports transformers) on a server that called itself ready. One that cannot load is
        listed as unavailable; a bug while describing them is logged and leaves the rest to load
        on first use, as before; neither keeps the server from starting."""
        try:
            self.models()
        except Exception:
            log.warning(
                "describing the captioners failed; /v1/models will try again", exc_info=True
            )

    def stop_waiting(self) -> None:
        """The server is stopping: ``stopping`` is set, and caption requests still waiting for
        a batch are dropped (their requests answer 503: ``deps.run_limited``)."""
        self.stopping.set()
        with self._batcher_lock:
            batcher = self._batcher
        if batcher is not None and (dropped := batcher.drop_waiting()):
            log.info("stopping: %d caption request(s) dropped before their batch ran", dropped)

    def close(self, timeout: float = 60.0) -> None:
        """Stop the caption workers and wait for a model load still running (a daemon thread
        inside torch at interpreter exit aborts the process)."""
        if self._thread is not None:
            self._thread.join(timeout)
        with self._batcher_lock:
            batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher.stop()

    @property
    def batcher(self) -> CaptionBatcher:
        """The caption workers, started on first use."""
        with self._batcher_lock:
            if self._batcher is None:
                from capsight.captioning.facade import describe_images

                self._batcher = CaptionBatcher(describe_images, workers=self.inference_slots)
                if self.stopping.is_set():  # (the page's first caption, after a SIGTERM)
                    self._batcher.drop_waiting()
            return self._batcher

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and self._load_error is None

    @property
    def load_error(self) -> str | None:
        return self._load_error

    def wait_ready(self, timeout: float | None = None) -> bool:
        """Block until loading finished; False on timeout. Raises if loading failed."""
        if not self._ready.wait(timeout):
            return False
        if self._load_error is not None:
            raise ModelNotFound(f"the server could not load its models: {self._load_error}")
        return True

    # -- images -----------------------------------------------------------------------------
    def describe(
        self,
        images: list[Image.Image],
        model: str | None = None,
        decoding: DecodingOptions | None = None,
        num_labels: int = 3,
        deadline: float | None = None,
    ) -> list[ImageDescription]:
        """Caption RGB images with ``model`` (the server default when None).

        Concurrent calls with the same model and options are batched together (``batching``);
        a call still waiting for its batch at ``deadline`` (``time.monotonic()`` seconds) is
        dropped with ``RequestExpired``. ``decoding`` is resolved for the model first
        (``decoding_for``: none for ``labels``, whose ignored options the caller notes).
        """
        model = self.resolve_model(model)
        return self.batcher.describe(
            images, model=model, decoding=self.decoding_for(model, decoding), num_labels=num_labels,
            deadline=deadline,
        )  # fmt: skip

    def decoding_for(self, model: str, decoding: DecodingOptions | None) -> DecodingOptions | None:
        """``decoding`` as ``model`` will run it (``facade.decoding_for``), resolved before
        batching so requests batch by what really runs and the response echoes it."""
        from capsight.captioning.facade import decoding_for, resolve_captioner

        return decoding_for(resolve_captioner(model)[0], decoding)

    def encode(self, images: list[Image.Image], model: str | None = None) -> EncodedImages:
        """The shared ImageNet encoder's output for the captioner ``model`` (pooled, grid,
        probabilities): what a single captioner on it reads; a captioner with encoder blocks of
        its own (the pair's members) reads further features made inside (``encode_images``)."""
        from capsight.captioning.facade import cached_encoder, resolve_captioner

        captioner, _ = resolve_captioner(self._asked(model))
        return cached_encoder(captioner.encoder_name).encode(images)

    def classifier_weights(self, model: str | None = None):
        """The encoder's ImageNet classifier (weight (1000, C), bias (1000,)) for class maps."""
        from capsight.captioning.facade import cached_encoder, resolve_captioner

        captioner, _ = resolve_captioner(self._asked(model))
        fc = cached_encoder(captioner.encoder_name).net._fc
        return fc.weight.detach(), fc.bias.detach()

    def word_vectors(self, text: str) -> tuple[list[str], list[list[float]]]:
        """The caption's word pieces and their word vectors (the original server's embeddings)."""
        from capsight.text.embedders import create_text_embedder

        tokens, vectors = create_text_embedder("word-mean").word_vectors(text)
        return tokens, vectors.tolist()

    def resolve_model(self, model: str | None = None) -> str:
        """The registered name ``model`` stands for ("default" resolved); ModelNotFound if none.

        Only captioners that build from their name alone are served: one that needs a path
        (``checkpoint``) would let a client point the server at its own files.
        """
        from capsight.captioning.facade import resolve_captioner

        name = self._asked(model)
        check_servable(name)
        return resolve_captioner(name)[1]

    def video_model(self, model: str | None = None) -> str:
        """The captioner a video is captioned with when asked for ``model`` (None: the server's
        default): the photo default is a pair of encoders, so "default" means the one-encoder
        ``VIDEO_DEFAULT_CAPTIONER`` for video, as in ``capsight video``."""
        from capsight.novelty.pipeline import video_captioner_name

        asked = self._asked(model)
        return self.resolve_model(video_captioner_name(asked) if asked == "default" else asked)

    def _asked(self, model: str | None) -> str:
        """``model`` as asked for: none, or "default", is this server's default (``serve
        --model``), which GET /v1/models and the web page's menus call the default."""
        return model if model and model != "default" else self.default_model

    def models(self) -> list[dict]:
        """Every registered captioner: loaded ones describe themselves, others say why not."""
        from capsight.captioning.facade import resolve_captioner

        default, video_default = self.resolve_model(), self.video_model()
        out = []
        for name in servable_captioners():
            entry: dict = {"name": name, "default": name == default,
                           "video_default": name == video_default}  # fmt: skip
            try:
                captioner, _ = resolve_captioner(name)
                entry.update(captioner.describe())
                entry.update(name=name, available=True)
            except ModelNotFound as exc:
                entry.update(available=False, reason=str(exc))
            out.append(entry)
        return out

    # -- video ------------------------------------------------------------------------------
    def analyze(
        self, path: Path, params: VideoParams, progress: ProgressCallback = no_progress
    ) -> Analysis:
        """Run the novelty pipeline on a saved upload."""
        from capsight.novelty.pipeline import analyze_video

        return analyze_video(
            str(path),
            every=params.every,
            window=params.window,
            metric=params.metric,
            signal=params.signal,
            sensitivity=params.sensitivity,
            captioner=self.video_model(params.model),  # what /v1/models says a video runs
            progress=progress,
            thumbnail_size=THUMBNAIL_SIDE,
        )

    def probe(self, path: Path) -> None:
        """Raise VideoOpenError unless ``path`` opens as a video with a video stream."""
        from capsight.io.video import probe_video

        probe_video(path)

    def write_outputs(self, analysis: Analysis, out_dir: Path) -> None:
        """analysis.json, moments.csv, novelty.png, report.html, captions.vtt into ``out_dir``."""
        from capsight.novelty.reports import write_outputs

        write_outputs(analysis, out_dir)
