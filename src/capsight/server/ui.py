"""The web page at ``/ui``: Gradio, in the same process as the API, over the same engine and jobs.

    >>> app = create_app(settings)      # mount_ui(app) runs when settings.ui is true
    $ capsight serve  &&  open http://127.0.0.1:8000/ui/

*Image*: upload or paste a photo; captions from two models side by side with their top ImageNet
classes and timings; where each model looked (attention per word for attention captioners, the
class activation map of the top class otherwise); several sampled captions at a chosen
temperature. *Video*: upload a clip, choose the sampling and novelty parameters, watch the
progress; then the novelty plot, a gallery of the novel moments (choosing one seeks the player
there), the captions as the player's subtitles, every moment in a table, and the outputs to
download. Video runs go through the same job
queue as ``POST /v1/videos``, so they are bounded, persisted and listed under ``/v1/jobs``.
"""

from __future__ import annotations

import functools
import hmac
import html
import os
import threading
import time
import urllib.parse
import warnings
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr  # noqa: E402

from capsight.captioning.options import DecodingOptions  # noqa: E402
from capsight.errors import CapsightError  # noqa: E402
from capsight.io.sniff import sniff_video, video_extension  # noqa: E402
from capsight.novelty.analysis import SHORTEST_EVERY  # noqa: E402
from capsight.server.batching import BatcherStopping  # noqa: E402
from capsight.server.cards import caption_card, failure_card, sentence_case  # noqa: E402
from capsight.server.classify_tab import classify_tab  # noqa: E402
from capsight.server.engine import VideoParams  # noqa: E402
from capsight.server.file_responses import saved_name  # noqa: E402
from capsight.server.jobs import ARTIFACTS, DONE, QueueFull  # noqa: E402
from capsight.server.ui_inputs import (  # noqa: E402
    browser_copy,
    checked_upload,
    photo_from_upload,
    slider_value,
    user_error,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

STOPPING_SHORTLY = "The server is stopping; try again once it is back."

CSS_PATH = Path(__file__).with_name("static") / "ui.css"
FAVICON_PATH = Path(__file__).with_name("static") / "favicon.svg"
JS_PATH = Path(__file__).with_name("static") / "ui.js"
MAX_OVERLAY_SIDE = 512  # heat maps are drawn on a copy this large at most
POLL_S = 0.25

HERO = """
<div class="capsight-hero">
  <div>
    <h1>capsight</h1>
    <p>Describe photos in words, find the moments in a video unlike what came before, and sort
       photos into classes you name.
       Everything runs here, offline.</p>
  </div>
  <nav>
    <a href="/docs" target="_blank" rel="noopener">HTTP API<span class="vh"> (opens in a new tab)</span></a>{models_link}
  </nav>
</div>
"""
# /v1/models needs the API key in a header when the server has one, which a link cannot send.
MODELS_LINK = (
    '\n    <a href="/v1/models" target="_blank" rel="noopener">Models'
    '<span class="vh"> (opens in a new tab)</span></a>'
)
ARTIFACT_LABELS = {"report": "report (HTML)", "plot": "novelty plot (PNG)",
                   "csv": "moments (CSV)", "vtt": "captions (WebVTT)", "json": "analysis (JSON)"}  # fmt: skip

EMPTY_CARD = '<div class="cap-card cap-empty">The caption appears here.</div>'
EMPTY_VIDEO = (
    '<div class="cap-card cap-empty"><span>Upload a clip and press <b>Find novel moments</b>: '
    "the plot, the novel moments and the downloads appear here.</span></div>"
)
# Over the results once a setting moved: the results were not made with the settings on show.
STALE_VIDEO = (
    '<p class="cap-note cap-stale" role="status">The settings have changed since these results '
    "were found: press <b>Find novel moments</b> to apply them.</p>"
)
TABLE_HEADERS = ["time", "caption", "novelty", "novel"]
# Side by side, -0.26 against -0.49 read as the first model being surer of a better caption.
LOG_PROB_HINT = ("mean log-prob: how likely this model found its own words (0 is certain), on "
                 "its own scale: not comparable between models, nor a measure of quality")  # fmt: skip

GALLERY_LABEL = "Novel moments: choose one to play from there"

RUNNING_VIDEO = (
    '<div class="cap-card cap-empty"><span><b>Analysing the clip</b>: its progress shows '
    "below; the plot, the novel moments and the downloads appear here when it is done.</span></div>"
)
LOOKED_LABELS = ("Where model A looked", "Where model B looked")  # until a photo is described
# Texts Gradio 6.31 asks its translations for and finds none: screen readers announced the key
# itself, "common.complete", after every event (its status tracker's polite live region).
# Other locales fall back to English for these.
MISSING_TRANSLATIONS = {"common.complete": "Done"}
MIN_CLASS_SHARE = 0.005  # classes below 0.5% are left out of the top five (they read as "0%")
# The sliders' ranges: static/ui.js clamps a typed number to them, and the handlers check them
# again for API clients, which send what they like.
BEAM_WIDTHS = (0, 8)
TEMPERATURES = (0.2, 2.0)
SAMPLE_COUNTS = (1, 8)
EVERY_SECONDS = (SHORTEST_EVERY["page"], 10)  # the slider; quiet_reason knows its end
WINDOWS = (1, 30)
SENSITIVITIES = (0, 1)
FAILED_VIDEOS_KEPT = 64  # the last failures' messages, for the sessions still to show them
# After a novel moment is chosen and the player moved there: play from it (a browser that
# refuses to play leaves it paused there, no error).
# Play from the moment chosen, the player scrolled into view first where it is off screen (on a
# phone it sits a screen above the gallery: the clip had played out of sight).
PLAY_JS = (
    "() => { const v = document.querySelector('#capsight-video video'); if (!v) return; "
    "const r = v.getBoundingClientRect(); "
    "if (r.bottom < 0 || r.top > window.innerHeight) v.scrollIntoView({block: 'center'}); "
    "v.play().catch(() => {}); }"
)


def theme() -> gr.themes.Base:
    system_fonts = [
        "Inter",
        "ui-sans-serif",
        "system-ui",
        "-apple-system",
        "Segoe UI",
        "sans-serif",
    ]
    return gr.themes.Soft(
        primary_hue="indigo",
        secondary_hue="amber",
        neutral_hue="slate",
        radius_size="lg",
        font=system_fonts,  # plain names: nothing is fetched from a font CDN (works offline)
        font_mono=["ui-monospace", "SFMono-Regular", "Menlo", "monospace"],
    ).set(
        body_background_fill="*neutral_50",
        block_shadow="0 1px 3px rgba(15, 23, 42, 0.08)",
        # Text at WCAG AA contrast (4.5:1): Soft's subdued grey (#94a3b8, 2.6:1 on white), its
        # amber links (3.0:1) and its indigo labels (3.6:1) are darkened.
        body_text_color_subdued="*neutral_600",
        body_text_color_subdued_dark="*neutral_400",
        link_text_color="*primary_700",
        link_text_color_hover="*primary_800",
        link_text_color_visited="*primary_800",
        link_text_color_dark="*primary_300",
        link_text_color_hover_dark="*primary_200",
        link_text_color_visited_dark="*primary_200",
        block_label_text_color="*primary_700",
        block_label_text_color_dark="*primary_200",
        block_title_text_color="*primary_700",  # the form's labels (Soft: *primary_500, 3.6:1)
        block_title_text_color_dark="*primary_200",
        input_placeholder_color="*neutral_500",
        # White on the buttons' light end (*primary_500) was 4.47:1.
        button_primary_background_fill="linear-gradient(90deg, *primary_700, *primary_600)",
        button_primary_background_fill_hover="linear-gradient(90deg, *primary_800, *primary_700)",
    )


def whole_analysis(analysis: dict):
    """A job's analysis.json as an ``Analysis``, or None where the store could not give it back
    whole: the page then says less, rather than fail."""
    from capsight.novelty.analysis import Analysis

    try:
        return Analysis.from_dict(analysis)
    except (CapsightError, KeyError, TypeError, ValueError):
        return None


def page_clock(analysis: dict) -> functools.partial[str]:
    """The clock of the CLI and the report for this analysis ("00:05", or "00:02.5" when moments
    are not whole seconds apart); with tenths when the analysis cannot be read."""
    from capsight.novelty.reports import format_clock, moment_clock

    whole = whole_analysis(analysis)
    return functools.partial(format_clock, tenths=True) if whole is None else moment_clock(whole)


def file_url(path: Path) -> str:
    """The page's own link to a job file (Gradio's file route: the login cookie is enough)."""
    return "/ui/gradio_api/file=" + urllib.parse.quote(str(path))


class CapsightUI:
    """The handlers behind the page; they reach the engine and jobs through ``app.state``."""

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        # The message of each session's last failed video run, until ``failed_video`` shows it
        # in the summary box (a failing handler updates no output; the toast alone may be gone).
        self._failures: OrderedDict[str, str] = OrderedDict()
        # Each session's photo, counted: a Describe or Sample reply for an earlier photo is
        # dropped, whether or not Gradio's cancel reached its run in time.
        self._photos = SessionCounts()
        # And each session's clip: a run for an earlier clip is stopped and its results dropped.
        self._clips = SessionCounts()

    @property
    def engine(self):
        return self.app.state.engine

    @property
    def jobs(self):
        return self.app.state.jobs

    @property
    def settings(self):
        return self.app.state.settings

    def _ready(self) -> None:
        try:
            if not self.engine.wait_ready(timeout=120):
                raise user_error("The models are still loading; try again in a few seconds.")
        except CapsightError as exc:
            raise user_error(str(exc)) from None

    # -- image tab --------------------------------------------------------------------------
    def describe(self, upload, model_a, model_b, method, beam_width, temperature=None,
                 request: gr.Request | None = None):  # fmt: skip
        """Both models' captions, the top classes and where each looked, and the sampled
        captions cleared; ``upload`` is the photo box's raw upload (or a path). A user's mistake
        is shown in model A's card and the rest cleared: raised, it would leave the last photo's
        results beside the new one under "Error" badges once its toast is gone."""
        photo = self._photo_number(request)
        try:
            results = self._describe(upload, model_a, model_b, method, beam_width, temperature)
        except gr.Error as exc:
            results = image_failure(str(exc.message))
        return results if self._photo_number(request) == photo else (gr.update(),) * len(results)

    def _photo_number(self, request: gr.Request | None, new: bool = False) -> int:
        """How many photos this session has put in the photo box (``new``: one more now)."""
        key = session_key(request)
        return self._photos.advance(key) if new else self._photos.current(key)

    def _clip_number(self, request: gr.Request | None, new: bool = False) -> int:
        """How many clips this session has put in (or cleared from) the video box."""
        key = session_key(request)
        return self._clips.advance(key) if new else self._clips.current(key)

    def page_closed(self, request: gr.Request | None = None) -> None:
        """The tab was closed or reloaded: its runs stop as if their clip and photo were cleared
        (a video job is deleted, not left to hold a worker for results no page will show).
        Behind an API key, only a logged-in page's closing counts: Gradio's heartbeat route
        takes no login, so anyone who read a session id (the access log shows them) could
        have stopped that user's run by opening and dropping its heartbeat."""
        if self.app.state.settings.api_key and getattr(request, "username", None) is None:
            return
        self._clip_number(request, new=True)
        self._photo_number(request, new=True)

    def photo_cleared(self, request: gr.Request | None = None):
        """The photo box emptied: the last photo's results go, and any reply still on its way."""
        self._photo_number(request, new=True)
        return cleared_image_results()

    def photo_uploaded(self, upload, request: gr.Request | None = None):
        """A new photo clears the last one's results; one that is not a photo is named at once,
        and taken out of the photo box. The last output is the photo box: a PNG copy of a photo
        the browser cannot show."""
        self._photo_number(request, new=True)
        shown = gr.update()
        if upload:
            try:
                photo_from_upload(upload)  # decoded whole: a photo too large or cut short too
                shown = browser_copy(upload) or shown
            except gr.Error as exc:  # also a toast: on a phone card A is a screen below the photo
                # the box emptied: no broken-image icon; titled as the card is, not "Warning"
                gr.Warning(str(exc.message), duration=10, title="This file cannot be described")
                return (*image_failure(str(exc.message), "This file cannot be described."), None)
        return (*cleared_image_results(), shown)

    def _describe(self, upload, model_a, model_b, method, beam_width, temperature=None):
        image = photo_from_upload(upload)
        self._ready()
        try:  # beam width 0: each model's own decoding (beam 4 for the photo default, 3 for others)
            beam_width = slider_value(beam_width, BEAM_WIDTHS, "Beam width", whole=True)
            own = method == "beam" and beam_width == 0
            options = {"beam_width": max(1, beam_width)} if method == "beam" else {}  # greedy: none
            if method == "sample" and temperature is not None:
                options = {"temperature": slider_value(temperature, TEMPERATURES, "Temperature")}
            decoding = None if own else DecodingOptions(method=method, **options)
        except CapsightError as exc:
            raise user_error(str(exc)) from None
        card_a, labels, looked_a, model_of_a = self._describe_one(image, model_a, decoding, "A")
        # the classes come from the shared encoder: the same for both models
        card_b, _, looked_b, _ = self._describe_one(image, model_b, decoding, "B", model_of_a)
        return card_a, card_b, labels, looked_a, looked_b, ""

    def _describe_one(self, image, model, decoding, side: str, model_of_a: str | None = None):
        from capsight.captioning.options import DecodingOptions

        start = time.perf_counter()
        try:
            d = self.engine.describe([image], model, decoding, num_labels=5)[0]
        except CapsightError as exc:
            raise user_error(str(exc)) from None
        except BatcherStopping:  # (SIGTERM: it had been an unhandled error and a traceback)
            raise user_error(STOPPING_SHORTLY) from None
        ms = (time.perf_counter() - start) * 1000
        meta, hint = f"{ms:.0f} ms on this server", ""
        if d.caption.score is not None:  # labels writes no sentence word by word: no decoding
            used = self.engine.decoding_for(d.model, decoding or DecodingOptions.partial())
            meta += f" · {decoding_name(used)} · mean log-prob {d.caption.score:.2f}"
            hint = LOG_PROB_HINT
        if d.model == model_of_a:  # two cards alike ("default" and the model it is here)
            meta += " · the same model as A"
        name = f"default ({d.model})" if model == "default" else model
        # (an image under 32 px a side: the API's note, which the page had left out)
        card = caption_card(name, d.caption.text, meta, side, hint, d.note or "")
        labels = {name: float(p) for name, p in d.labels if p >= MIN_CLASS_SHARE}  # (none if blank)
        return card, labels, self._where_it_looked(image, d, side), d.model

    def _where_it_looked(self, image, described, side: str):
        """An overlay of where model ``side`` looked, as an image update with a telling label:
        its attention per word, or (a captioner without attention) its encoder's top class."""
        from capsight.vision.heatmaps import (
            attention_sheet,
            class_activation_map,
            heatmap_overlay,
            viewable,
        )

        small = viewable(image, MAX_OVERLAY_SIDE)
        if described.blank:
            return gr.Image(value=small, label=f"Model {side}: a blank image, nothing to look at",
                            alt_text="The photo: one flat colour")  # fmt: skip
        result = described.caption
        encoded = self.engine.encode([image], described.model)
        if result.attention is not None and len(result.tokens):
            sheet = attention_sheet(small, result.attention, result.tokens, encoded.grid_size)
            return gr.Image(value=sheet, label=f"Model {side}: attention per word",
                            alt_text=f"Where the captioner looked for each word of: {result.text}")  # fmt: skip
        weight, _ = self.engine.classifier_weights(described.model)
        top = int(encoded.probs[0].argmax())
        cam = class_activation_map(encoded.grid[0], weight, top)
        name = described.labels[0][0] if described.labels else "the top class"
        return gr.Image(value=heatmap_overlay(small, cam, encoded.grid_size), label=f"Model {side}: {name}, class evidence",
                        alt_text=f"Where the encoder saw {name}, as a heat map over the photo")  # fmt: skip

    def sample(self, upload, model, temperature, count, request: gr.Request | None = None):
        """Several sampled captions of model A, or what went wrong, in the samples' box (left as
        it is when the photo changed meanwhile: the new photo's box is already cleared)."""
        photo = self._photo_number(request)
        card = self._sample(upload, model, temperature, count)
        return card if self._photo_number(request) == photo else gr.update()

    def _sample(self, upload, model, temperature, count) -> str:
        try:
            image = photo_from_upload(upload)
            self._ready()
            decoding = DecodingOptions(
                method="sample",
                temperature=slider_value(temperature, TEMPERATURES, "Temperature"),
                num_captions=slider_value(count, SAMPLE_COUNTS, "Captions", whole=True),
            )
            d = self.engine.describe([image], model, decoding, num_labels=0)[0]
        except gr.Error as exc:
            return failure_card(str(exc.message))
        except CapsightError as exc:
            return failure_card(str(exc))
        except BatcherStopping:
            return failure_card(STOPPING_SHORTLY)
        captions = list(dict.fromkeys([d.caption.text, *d.caption.alternatives]))
        items = "".join(f"<li>{html.escape(sentence_case(c))}</li>" for c in captions)
        note = sampling_note(d, len(captions), count, temperature)
        # Which model and temperature: moving the slider afterwards leaves these samples as they were.
        # (no sampling)
        made = (
            f"{html.escape(d.model)}, {decoding_name(decoding)}:"
            if d.model != "labels"
            else "labels:"
        )
        return f'<div class="cap-card"><p class="cap-note">{made}</p><ol class="cap-list">{items}</ol>{note}</div>'

    # -- video tab --------------------------------------------------------------------------
    def analyze(self, upload, every, window, metric, signal, sensitivity, model,
                progress=gr.Progress(),  # noqa: B008 (Gradio's way to ask for a progress bar)
                request: gr.Request | None = None):  # fmt: skip
        """Run a video job and render it; ``upload`` is the video box's raw upload (or a path).
        A failure is raised for the page's toast and kept for ``failed_video``. A clip put in
        or cleared meanwhile stops the job, and nothing of it reaches the page."""
        session, clip = session_key(request), self._clip_number(request)

        def still_wanted() -> bool:
            return self._clip_number(request) == clip

        try:
            return self._analyze(upload, every, window, metric, signal, sensitivity, model,
                                 progress, still_wanted)  # fmt: skip
        except gr.Error as exc:
            if not still_wanted():
                return (gr.update(),) * 7
            self._keep_failure(session, str(exc.message))
            raise
        except Exception:
            if still_wanted():  # the server's log has the rest
                self._keep_failure(session, "an error on the server stopped it")
            raise

    def _keep_failure(self, session: str, message: str) -> None:
        self._failures[session] = message
        while len(self._failures) > FAILED_VIDEOS_KEPT:
            self._failures.popitem(last=False)

    def failed_video(self, request: gr.Request | None = None):
        """The summary box after a failed run: what went wrong, in the toast's words. A run
        stopped because its clip was cleared or replaced kept no failure: the box stays as the
        new clip left it."""
        message = self._failures.pop(session_key(request), None)
        if message is None:
            return gr.update()
        return failure_card(message, "The analysis did not finish.")

    def video_uploaded(self, upload, request: gr.Request | None = None):
        """A new clip, or none, clears the last one's results and stops a run for it (``analyze``);
        the summary box warns when browsers cannot play the clip (the player's own "Video not
        playable" would read as a failure). The last outputs are the Find button: off with no
        clip, and for a file that is no video, which a run would only refuse again; and the
        video box, emptied of such a file (it had stayed as a dead player, "0:00 / NaN:NaN")."""
        self._clip_number(request, new=True)
        ready, refused = gr.update(interactive=True), gr.update(interactive=False)
        cleared = (EMPTY_VIDEO, None, empty_gallery(), [], "", [], ready)
        if isinstance(upload, dict) and "video" in upload:  # Gradio's VideoData
            upload = upload["video"]
        if not upload:
            return (*cleared[:-1], refused, gr.update())
        try:
            path, name, _ = checked_upload(upload, "video", "Upload a video first.")
            try:  # a file that opens as no video (cut off, its index lost) is named now too
                self.engine.probe(Path(path))
            except CapsightError as exc:
                raise gr.Error(str(exc).replace(path, name)) from None
        except gr.Error as exc:  # said now, not again by a run; also a toast: on a phone the
            gr.Warning(str(exc.message), duration=10, title="This file cannot be analysed")
            return (
                failure_card(str(exc.message), "This file cannot be analysed."),
                *cleared[1:-1],
                refused,
                None,
            )
        codec = unplayable_codec(path)
        if codec is None:
            return (*cleared, gr.update())
        note = (
            f'<div class="cap-card cap-empty"><span>{html.escape(name)}: browsers cannot play '
            f"{html.escape(codec)}, so the player stays empty (Video not playable). The analysis "
            "reads the file itself: press <b>Find novel moments</b> as usual.</span></div>"
        )
        return (note, *cleared[1:], gr.update())

    def find_button(self, upload):
        """The Find button after a run: on again, unless the video box is empty or holds a file
        that is no video (as ``video_uploaded`` leaves it)."""
        if isinstance(upload, dict) and "video" in upload:  # Gradio's VideoData
            upload = upload["video"]
        if not upload:
            return gr.update(interactive=False)
        try:
            path, _, _ = checked_upload(upload, "video", "Upload a video first.")
            self.engine.probe(Path(path))
        except (gr.Error, CapsightError):
            return gr.update(interactive=False)
        return gr.update(interactive=True)

    def _analyze(self, upload, every, window, metric, signal, sensitivity, model, progress,
                 still_wanted: Callable[[], bool]):  # fmt: skip
        if isinstance(upload, dict) and "video" in upload:  # Gradio's VideoData
            upload = upload["video"]
        path, name, head = checked_upload(upload, "video", "Upload a video first.")
        with open(path, "rb") as f:
            try:
                params = VideoParams(
                    slider_value(every, EVERY_SECONDS, "Sample every (s)"),
                    slider_value(window, WINDOWS, "Window", whole=True),
                    metric,
                    signal,
                    slider_value(sensitivity, SENSITIVITIES, "Sensitivity"),
                    self.engine.video_model(model),  # the job records what runs, not "default"
                )
                job = self.jobs.submit(f, name, video_extension(sniff_video(head)), params,
                                       self.engine.probe)  # fmt: skip
            except QueueFull as full:
                raise user_error(f"The server is busy ({full}).") from None
            except CapsightError as exc:
                raise user_error(str(exc)) from None
        progress(0.0, desc="waiting for a worker")
        while True:
            if not still_wanted():  # another clip, or none: this one's job and results go
                self.jobs.delete(job.id)
                return (gr.update(),) * 7
            job = self.jobs.get(job.id)
            if job is None:
                raise user_error("The job was deleted.", duration=None)
            if job.finished:
                break
            progress(job.progress, desc=job.message or job.status)
            time.sleep(POLL_S)
        if not still_wanted():  # the clip changed as the job ended
            self.jobs.delete(job.id)
            return (gr.update(),) * 7
        if job.status != DONE:
            raise user_error(job.error or f"The analysis ended {job.status}.", duration=None)
        if (codec := unplayable_codec(path)) is not None:  # a new player would only fail again
            return (*self.render_job(job.id, unplayable=codec), gr.update())
        return (*self.render_job(job.id), self.with_captions(job.id))

    def render_job(self, job_id: str, unplayable: str | None = None):
        """Summary, plot, gallery, table, downloads and novel times of a finished job;
        ``unplayable``: the upload's codec and container, when no browser plays them."""
        job = self.jobs.get(job_id)
        analysis = self.jobs.analysis(job_id) or {"moments": [], "video": {}, "params": {}}
        moments = analysis["moments"]
        clock = page_clock(analysis)
        novel = [(i, m) for i, m in enumerate(moments) if m.get("is_novel")]
        gallery, times = [], []
        for i, m in novel:
            thumb = self.jobs.thumbnail_path(job_id, i)
            if thumb.is_file():
                gallery.append((str(thumb), f"{clock(m['time'])} · {m['caption']}"))
                times.append(float(m["time"]))
        rows = [
            [clock(m["time"]), m["caption"], m["novelty"], "yes" if m.get("is_novel") else ""]
            for m in moments
        ]
        files = {a: p for a in ARTIFACTS if (p := self.jobs.artifact_path(job_id, a)).is_file()}
        video = analysis.get("video", {})
        params = analysis.get("params", {})
        extra = analysis.get("extra", {})
        stats = [
            (str(len(novel)), "novel moments"),
            (str(len(moments)), "moments sampled"),
            (clock(video.get("duration") or 0, rounded=True), "video length"),
            (f"{job.summary.get('seconds', 0):.1f} s", "analysis time"),
        ]
        stat_html = "".join(f'<li class="stat"><b>{html.escape(v)}</b> {k}</li>' for v, k in stats)
        captioner = extra.get("captioner") or params.get("captioner", "")
        detail = (
            f"captioner <code>{html.escape(str(captioner))}</code> · signal "
            f"<code>{html.escape(str(params.get('signal', '')))}</code> · metric "
            f"<code>{html.escape(str(params.get('metric', '')))}</code> · window "
            f"{params.get('window', '')} · every {params.get('every', '')} s · sensitivity "
            f"{params.get('sensitivity', '')} · job "
            f'<code title="{job_id}">{job_id[:8]}</code>'
        )
        if "report" in files:  # the one thing left of a run once the page is reloaded
            ttl = self.settings.job_ttl_hours
            kept = f"kept {ttl:g} h after the run" if ttl > 0 else "kept until the job is deleted"
            detail += (f' · <a href="{file_url(files["report"])}" target="_blank" rel="noopener">'
                       'open the report<span class="vh"> (opens in a new tab)</span></a> '
                       f"({kept}: bookmark it to come back after leaving this page)")  # fmt: skip
        summary = f'<ul class="stat-row">{stat_html}</ul><p class="cap-note">{detail}</p>'
        if not novel and moments:
            why = f"No novel moment: {quiet_reason(analysis)}."
            summary += f'<p class="cap-note cap-quiet">{html.escape(why)}</p>'
        for note in analysis_notes(analysis):
            summary += f'<p class="cap-note cap-quiet">Note: {html.escape(note)}.</p>'
        if unplayable:  # the upload's note, which this summary replaces
            summary += (f'<p class="cap-note cap-quiet">The player stays empty: browsers cannot '
                        f"play {html.escape(unplayable)}. The moments and the report are the "
                        "file's own.</p>")  # fmt: skip
        plot = files.get("plot")
        plot_update = (
            gr.Image(value=str(plot), alt_text=plot_text(moments, clock)) if plot else None
        )
        table = gr.Dataframe(value=moment_table(rows, table_headers(analysis)))
        # Hidden with no moment to show: its prompt to choose one had stood over an empty
        # gallery and its placeholder icon (the summary says why nothing stood out).
        gallery_update = gr.Gallery(value=gallery, visible=bool(gallery))
        return (summary, plot_update, gallery_update, table, downloads_html(files, job.filename),
                times)  # fmt: skip

    def with_captions(self, job_id: str):
        """The video player, now with the job's captions as its subtitle track."""
        vtt = self.jobs.artifact_path(job_id, "vtt")
        return gr.Video(subtitles=str(vtt)) if vtt.is_file() else gr.update()

    def model_menus(self):
        """On page load: offer only the captioners that are installed here (and the two photo
        menus' values again, as ``model_changed`` keeps them)."""
        try:
            self.engine.wait_ready(timeout=120)
            entries = self.engine.models()
        except CapsightError:
            return gr.update(), gr.update(), gr.update(), None, None
        names = [m["name"] for m in entries if m.get("available")]
        default = next((m["name"] for m in entries if m.get("default")), "labels")
        video = next((m["name"] for m in entries if m.get("video_default")), default)
        other = second_model(names, default)
        # What "default" stands for (a pair of encoders for photos, one for video) goes under
        # the menu: in the choice itself it was cut off, on a phone after "default (sho".
        photos = ["default", *names]
        info = f'"default" here is {default}'  # under B's "labels" too: so not "default: ..."
        return (gr.update(choices=photos, value="default", info=info),
                gr.update(choices=photos, value=other, info=info),
                gr.update(choices=photos, value="default", info=f'"default" here is {video}'),
                "default", other)  # fmt: skip

    @staticmethod
    def seek(times: list[float], evt: gr.SelectData):
        if not times or evt.index is None or not 0 <= int(evt.index) < len(times):
            return gr.update()
        # 10 ms in: a moment at 1.000999 s has its subtitle from 1.001 s (whole milliseconds),
        # and the player at 1.000999 would show the moment before's.
        return gr.Video(playback_position=round(float(times[int(evt.index)]), 3) + 0.01)


def cleared_video_results():
    """The Video tab as a run starts: summary, plot, gallery, table, downloads, times."""
    return RUNNING_VIDEO, None, empty_gallery(), [], "", []


def empty_gallery():
    """The gallery emptied, and shown again (a run that found nothing hides it)."""
    return gr.Gallery(value=[], visible=True)


def stale_note(ran: list | None, *settings) -> str:
    """The line over a finished run's results once the Video tab's settings (``settings``, in
    ``ran``'s order) are no longer the ones that run had (``ran``; None with no results)."""
    return STALE_VIDEO if ran is not None and list(settings) != list(ran) else ""


def moment_table(rows: list[list], headers: list[str]):
    """The "Every moment" table: novelty shown to 3 decimals (0.100, not 0.1), sorted as numbers."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=headers)
    frame[headers[2]] = pd.to_numeric(frame[headers[2]])
    return frame.style.format({headers[2]: "{:.3f}"}, na_rep="")


def table_headers(analysis: dict) -> list[str]:
    """The "Every moment" table's headers: the novelty column says what it is counted in."""
    from capsight.novelty.reports import novelty_unit

    if (whole := whole_analysis(analysis)) is None:
        return TABLE_HEADERS
    return ["time", "caption", f"novelty ({novelty_unit(whole.params)})", "novel"]


def decoding_name(decoding) -> str:
    """ "beam 4", "greedy", "sampled at temperature 0.7": how a caption was decoded, for its card."""
    if decoding.method == "sample":
        return f"sampled at temperature {decoding.temperature:g}"
    return f"beam {decoding.beam_width}" if decoding.method == "beam" else decoding.method


def model_changed(side: str):
    """What model ``side`` ("A" or "B") shows once another model is picked: an empty card and
    map (and for A, no samples), until the photo is described again; and the menu's value, kept
    to tell a choice from a menu opened and closed again, on which Gradio fires ``input`` too
    (opening model A's menu and leaving it had wiped A's caption, map and samples)."""
    label = LOOKED_LABELS["AB".index(side)]

    # (the updates are made when the event runs: made now, they would join the page)
    def cleared(value=None, last=None):
        if value is not None and value == last:  # the menu opened and left: no choice made
            return (gr.skip(),) * (3 if side == "A" else 2) + (last,)
        looked = gr.Image(value=None, label=label)
        return (EMPTY_CARD, looked, "", value) if side == "A" else (EMPTY_CARD, looked, value)

    return cleared


def cleared_image_results():
    """The Image tab before a photo is described: card A, card B, classes, the two "where it
    looked" images and the sampled captions."""
    return (EMPTY_CARD, EMPTY_CARD, None, gr.Image(value=None, label=LOOKED_LABELS[0]),
            gr.Image(value=None, label=LOOKED_LABELS[1]), "")  # fmt: skip


def image_failure(message: str, heading: str = "Nothing was described."):
    """The Image tab after a user's mistake: the message in card A, the rest cleared."""
    return (failure_card(message, heading), *cleared_image_results()[1:])


def sampling_note(described, distinct: int, count, temperature) -> str:
    """Why fewer distinct captions came back than were asked for, or nothing."""
    if distinct >= int(count):
        return ""
    if described.blank:
        why = "the photo is one flat colour, and a blank image has one caption"
    elif described.caption.score is None:  # no word probabilities: nothing to sample from
        why = ("it builds its sentence from the top classes, with no language model to sample "
               "from, so it writes the same one at any temperature")  # fmt: skip
    else:
        why = (f"at temperature {float(temperature):g} its likeliest sentences came back more "
               "than once; a higher temperature gives more variety")  # fmt: skip
    return (f'<p class="cap-note">{html.escape(described.model)} gave {distinct} distinct '
            f"caption(s) of {int(count)}: {why}.</p>")  # fmt: skip


SESSIONS_KEPT = 10_000  # sessions whose photo and clip counts are kept (an int each)


class SessionCounts:
    """A count per session (photos put in the photo box, clips in the video box), shared by
    the page's handler threads: a run polls its session's count while an upload raises it.
    The sessions counted last are kept, the oldest forgotten past ``SESSIONS_KEPT``."""

    def __init__(self) -> None:
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()

    def current(self, key: str) -> int:
        with self._lock:
            return self._counts.get(key, 0)

    def advance(self, key: str) -> int:
        with self._lock:
            number = self._counts.pop(key, 0) + 1
            self._counts[key] = number
            while len(self._counts) > SESSIONS_KEPT:
                self._counts.popitem(last=False)
            return number


def session_key(request: gr.Request | None) -> str:
    return str(getattr(request, "session_hash", None) or "")


# What no current browser plays: older codecs (MPEG-4 Part 2 from cameras and phones before
# H.264, MJPEG, Windows Media, MPEG-1/2, H.263, Flash) and containers other than MP4/MOV,
# WebM/Matroska and Ogg. HEVC is left out: Safari plays it, Chrome where the hardware does.
UNPLAYABLE_CODECS = {"mpeg4", "msmpeg4v1", "msmpeg4v2", "msmpeg4v3", "mjpeg", "wmv1", "wmv2",
                     "wmv3", "vc1", "mpeg1video", "mpeg2video", "h263", "flv1", "dvvideo"}  # fmt: skip
UNPLAYABLE_FORMATS = {"avi", "asf", "flv", "mpeg", "mpegts"}  # PyAV's names (aliases, comma-joined)


def unplayable_codec(path: str) -> str | None:
    """A readable name of the video's codec and container when no browser will play the file,
    else None (also when the file cannot be read: the analysis says why)."""
    import av

    from capsight.io.video import video_stream

    try:
        with av.open(str(path)) as container:
            codec = video_stream(container).codec_context.codec
            formats = set(container.format.name.split(","))
            kind = container.format.long_name or container.format.name
    except (av.FFmpegError, IndexError, OSError, AttributeError):  # (no codec: a file cut short)
        return None
    if "mp4" in formats and Path(path).suffix.lower() in (".mp4", ".m4v"):
        kind = "an MP4 file"  # FFmpeg names its MP4 reader "QuickTime / MOV", which read oddly
    if codec.name in UNPLAYABLE_CODECS or formats & UNPLAYABLE_FORMATS:
        return f"{codec.long_name or codec.name} video in {kind}"
    return None


def quiet_reason(analysis: dict) -> str:
    """Why a finished analysis has no novel moment, naming the page's own sliders."""
    whole = whole_analysis(analysis)
    reason = None if whole is None else whole.quiet_reason(face="page")
    return reason or "no moment stood out from the ones before it"


def analysis_notes(analysis: dict) -> list[str]:
    """``Analysis.asides`` of a job's analysis.json (none when it cannot be read whole)."""
    whole = whole_analysis(analysis)
    return [] if whole is None else whole.asides(face="page")


def plot_text(moments: list[dict], clock: Callable[[float], str]) -> str:
    """The novelty plot in words (its alt text): when the novel moments come."""
    novel = [clock(m["time"]) for m in moments if m.get("is_novel")]
    if not novel:
        return "Novelty over time: no moment stood out; every moment is in the table below."
    return (f"Novelty over time: {len(novel)} novel moment{'s' * (len(novel) != 1)}, at "
            f"{', '.join(novel)}; every moment's score is in the table below.")  # fmt: skip


def downloads_html(files: dict[str, Path], video: str) -> str:
    """The job's files as plain links (with their sizes), or nothing before there are any;
    each is saved under the ``video``'s name and its own ("holiday-report.html")."""
    if not files:
        return ""
    items = "".join(
        f'<li><a href="{file_url(path)}" download="{html.escape(saved_name(video, path.name))}">'
        f"{html.escape(ARTIFACT_LABELS.get(name, path.name))}</a> "
        f'<span class="cap-size">{html.escape(path.name)} · {size_text(path.stat().st_size)}</span></li>'
        for name, path in files.items()
    )
    return f'<div class="cap-card cap-downloads"><h2 class="cap-h">Downloads</h2><ul>{items}</ul></div>'


def size_text(n: int) -> str:
    """ "179.7 KB", with a no-break space: a phone's narrow list wrapped "179.7 / KB"."""
    if n < 1024:
        return f"{n}\u00a0bytes"
    return f"{n / 1024:.1f}\u00a0KB" if n < 1024**2 else f"{n / 1024**2:.1f}\u00a0MB"


# Model B's first choices: a second sentence to compare with A's (labels, B's default until
# 2026-12-06, only repeated the class bars below the cards).
SECOND_MODELS = ("show-attend-tell", "prefix-gpt2", "show-and-tell")


def second_model(names: list[str], default: str) -> str:
    """Model B's choice among the installed ``names``: another captioner than ``default``."""
    others = [n for n in names if n not in (default, "default")]
    return next((n for n in SECOND_MODELS if n in others), others[0] if others else default)


def model_choices() -> list[str]:
    from capsight.server.engine import servable_captioners

    return ["default", *[n for n in servable_captioners() if n != "default"]]


def _image_tab(ui: CapsightUI, models: list[str]) -> tuple:
    """The Image tab: a photo captioned by two models side by side, where each looked, and
    diverse captions; its events wired. -> the model menus and their last values, which the
    page fills in as it loads."""
    # States inside the tab: one made in gr.Tabs outside any gr.Tab is a tab of its own to
    # Gradio (a second "Video" tab button had appeared).
    with gr.Tab("Image", id="image"):
        menu_a, menu_b = gr.State(None), gr.State(None)  # the model menus' last values
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=320):
                photo = gr.Image(
                    type="filepath",
                    sources=["upload", "clipboard"],
                    label="Photo",
                    height=360,
                    elem_id="capsight-photo",
                )
                with gr.Row():
                    # 220 px each at least: side by side on a phone, B's name had been
                    # cut to "show-attend-" under its arrow; there they stack
                    model_a = gr.Dropdown(models, value="default", label="Model A",
                                          min_width=220)  # fmt: skip
                    model_b = gr.Dropdown(models, value=second_model(models, "default"),
                                          label="Model B", min_width=220)  # fmt: skip
                with gr.Accordion("Decoding", open=False):
                    method = gr.Radio(["beam", "greedy", "sample"], value="beam",
                                      label="Method")  # fmt: skip
                    beam = gr.Slider(*BEAM_WIDTHS, value=0, step=1,
                                     label="Beam width (0: each model's own)", elem_id="capsight-beam")  # fmt: skip
                    # Describe with "sample" had sampled at 0.7 whatever was set: the
                    # only temperature on the page was the diverse captions' below.
                    sample_temperature = gr.Slider(
                        *TEMPERATURES, value=DecodingOptions.temperature, step=0.1,
                        label="Temperature (sample)", interactive=False,
                        elem_id="capsight-sample-temperature")  # fmt: skip
                describe_btn = gr.Button("Describe", variant="primary",
                                         elem_id="capsight-describe")  # fmt: skip
            with gr.Column(scale=7, min_width=360):
                with gr.Row(equal_height=True):  # side by side, stacked on a phone
                    with gr.Column(min_width=220):
                        card_a = gr.HTML(EMPTY_CARD, elem_id="capsight-caption-a")
                    with gr.Column(min_width=220):
                        card_b = gr.HTML(EMPTY_CARD, elem_id="capsight-caption-b")
                # One list: both models' classes come from the same shared encoder.
                # One view, as the captioners see the photo; the Classify tab averages
                # three views (and mirror images), so its ImageNet scores differ a little.
                labels = gr.Label(num_top_classes=5, label="Top ImageNet classes (one view of the photo)",
                                  show_heading=False, elem_id="capsight-classes-top")  # fmt: skip
        with gr.Row(equal_height=True):
            # A word-by-word attention sheet is small here: full screen makes it legible.
            looked_a = gr.Image(label=LOOKED_LABELS[0], height=330, interactive=False,
                                buttons=["fullscreen", "download"], elem_id="capsight-looked-a")  # fmt: skip
            looked_b = gr.Image(label=LOOKED_LABELS[1], height=330, interactive=False,
                                buttons=["fullscreen", "download"], elem_id="capsight-looked-b")  # fmt: skip
        with gr.Group(elem_classes=["capsight-diverse"]):
            gr.Markdown("## Diverse captions\nSample several captions from model A; "
                        "a higher temperature gives bolder wording, and above about 1.3 "
                        "the words stop making sense (for `show-and-tell` and "
                        "`prefix-gpt2` from about 1: try 0.5-0.8).")  # fmt: skip
            with gr.Row(equal_height=True):
                temperature = gr.Slider(*TEMPERATURES, value=DecodingOptions.temperature, step=0.1, scale=3,
                                        label="Temperature")  # fmt: skip
                count = gr.Slider(*SAMPLE_COUNTS, value=5, step=1, scale=2, label="Captions")
                sample_btn = gr.Button("Sample captions", scale=1, variant="secondary",
                                       elem_id="capsight-sample")  # fmt: skip
            samples = gr.HTML()
    # preprocess=False: the handlers get the raw uploads and refuse a file that is not a
    # photo or video in one line (capsight.server.ui_inputs), before Gradio's decoders can.
    image_results = [card_a, card_b, labels, looked_a, looked_b, samples]
    describing = describe_btn.click(ui.describe,
                                    [photo, model_a, model_b, method, beam, sample_temperature],
                                    image_results, concurrency_limit=4, preprocess=False)  # fmt: skip
    sampling = sample_btn.click(ui.sample, [photo, model_a, temperature, count], samples,
                                concurrency_limit=4, preprocess=False)  # fmt: skip
    # A new photo cancels the last one's runs: a late reply would sit beside the new photo.
    # Queued: an unqueued event's file URLs miss the page's /ui prefix (the PNG copy's would).
    # Each upload is decoded whole to check it: several users' uploads at once, not in turn.
    photo.upload(ui.photo_uploaded, photo, [*image_results, photo], show_progress="hidden",
                 preprocess=False, api_visibility="private", cancels=[describing, sampling],
                 concurrency_limit=4)  # fmt: skip
    photo.clear(ui.photo_cleared, None, image_results, queue=False, show_progress="hidden",
                api_visibility="private", cancels=[describing, sampling])  # fmt: skip
    method.change(lambda m: (gr.update(interactive=m == "beam"),
                             gr.update(interactive=m == "sample")),
                  method, [beam, sample_temperature], queue=False,
                  show_progress="hidden", api_visibility="private")  # fmt: skip
    # Another model chosen: its card and map are the last model's until Describe runs again,
    # and would read as the new one's (model A's samples too).
    model_a.input(model_changed("A"), [model_a, menu_a], [card_a, looked_a, samples, menu_a],
                  queue=False, show_progress="hidden", api_visibility="private")  # fmt: skip
    model_b.input(model_changed("B"), [model_b, menu_b], [card_b, looked_b, menu_b],
                  queue=False, show_progress="hidden", api_visibility="private")  # fmt: skip
    return model_a, model_b, menu_a, menu_b


def _video_tab(ui: CapsightUI, app: FastAPI, models: list[str]) -> gr.Dropdown:
    """The Video tab: a clip, its settings, and the run's summary, plot, gallery, table and
    downloads; its events wired. -> the captioner menu, which the page fills in as it loads."""
    with gr.Tab("Video", id="video"):
        times = gr.State([])
        # the settings of the results on show, and of the run going on (below)
        ran, pending = gr.State(None), gr.State(None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=320):
                video = gr.Video(sources=["upload"], label="Video", height=300,
                                 elem_id="capsight-video")  # fmt: skip
                with gr.Row():
                    every = gr.Slider(*EVERY_SECONDS, value=1.0, step=0.25, label="Sample every (s)",
                                      info="how often a frame is read",
                                      elem_id="capsight-every")  # fmt: skip
                    # (the picks need a change that lasts and is unfamiliar too, so they move
                    # less than the curve: the same moments for 5 and 30 on the sample)
                    window = gr.Slider(*WINDOWS, value=5, step=1, label="Window (moments)",
                                       info="the curve's reference; picks move less",
                                       elem_id="capsight-window")  # fmt: skip
                with gr.Row():
                    metric = gr.Radio(["cosine", "euclidean"], value="cosine",
                                      label="Metric")  # fmt: skip
                    # (selection.FUSED_WEIGHTS: the captions' weight in fused picking is 0)
                    signal = gr.Radio(["fused", "visual", "text"], value="fused", label="Signal",
                                      info="fused and visual pick by the frames; text by the captions")  # fmt: skip
                with gr.Row():
                    sensitivity = gr.Slider(*SENSITIVITIES, value=0.5, step=0.05, label="Sensitivity",
                                            elem_id="capsight-sensitivity")  # fmt: skip
                    video_model = gr.Dropdown(models, value="default", label="Captioner")
                analyze_btn = gr.Button(
                    "Find novel moments",
                    variant="primary",
                    interactive=False,
                    elem_id="capsight-analyze",
                )  # on with a clip
            with gr.Column(scale=7, min_width=360):
                stale = gr.HTML("", elem_id="capsight-stale")  # STALE_VIDEO, or nothing
                summary = gr.HTML(EMPTY_VIDEO, elem_id="capsight-video-summary")
                gallery = gr.Gallery(
                    label=GALLERY_LABEL,
                    columns=3,
                    height="auto",
                    object_fit="contain",
                    allow_preview=False,
                    fit_columns=False,
                    buttons=[],  # the files are in Downloads
                    elem_id="capsight-gallery",
                )
                downloads = gr.HTML("", elem_id="capsight-downloads")
        plot = gr.Image(type="filepath", interactive=False, show_label=False,
                        elem_id="capsight-plot", buttons=["download", "fullscreen"])  # fmt: skip
        with gr.Accordion("Every moment", open=False):
            # Widths that fit a phone: the caption column wraps, the numbers stay in view
            # (the time needs 25% for "00:00.0" on one line; at 23% it took two).
            table = gr.Dataframe(headers=TABLE_HEADERS,
                                 column_widths=["25%", "28%", "27%", "20%"],
                                 wrap=True, interactive=False,
                                 elem_id="capsight-moments")  # fmt: skip

    # The last run's results go first: next to a new clip's error they would read as its own.
    analyzing = analyze_btn.click(
        cleared_video_results,
        None,
        [summary, plot, gallery, table, downloads, times],
        queue=False,
        show_progress="hidden",
    ).then(
        ui.analyze,
        [video, every, window, metric, signal, sensitivity, video_model],
        [summary, plot, gallery, table, downloads, times, video],
        concurrency_limit=app.state.settings.queue_size,
        show_progress_on=[gallery],
        preprocess=False,
    )
    # The settings of the results on show (ran), so that moving one afterwards says the
    # results are not its own (stale_note); pending: those of the run going on.
    video_settings = [every, window, metric, signal, sensitivity, video_model]
    analyze_btn.click(lambda *now: (list(now), None, ""), video_settings, [pending, ran, stale],
                      queue=False, show_progress="hidden", api_visibility="private")  # fmt: skip
    # (a setting moved during the run said nothing then, with no results to be stale)
    analyzing.success(lambda run, *now: (run, stale_note(run, *now)), [pending, *video_settings],
                      [ran, stale], queue=False, preprocess=False, show_progress="hidden",
                      api_visibility="private")  # fmt: skip
    # Raw values (preprocess=False): a number typed past a slider's range is clamped by
    # ui.js only when the box is left, and Gradio's check of it on every keystroke answered
    # 500 with a traceback in the server's log.
    for setting in video_settings:
        setting.change(stale_note, [ran, *video_settings], stale, queue=False, preprocess=False,
                       show_progress="hidden", api_visibility="private")  # fmt: skip
    analyzing.failure(ui.failed_video, None, summary, queue=False, show_progress="hidden",
                      api_visibility="private")  # fmt: skip
    # The button is off while a run goes on (a second press would be ignored without a
    # word), then on again for a clip a run can read.
    analyze_btn.click(lambda: gr.update(interactive=False), None, analyze_btn, queue=False,
                      show_progress="hidden", api_visibility="private")  # fmt: skip
    # (.failure as well as .then: Gradio 6.31 runs no .then step after a run that raised,
    # and the button stayed off after "The server is busy ... retry in 9 s")
    for ended in (analyzing.then, analyzing.failure):
        ended(ui.find_button, video, analyze_btn, queue=False, preprocess=False,
              show_progress="hidden", api_visibility="private")  # fmt: skip
    # A new clip, or clearing it, takes the last run along: its results, and the run itself.
    after_upload = [summary, plot, gallery, table, downloads, times, analyze_btn, video]
    # Find off at once, then the clip checked in the queue (an unqueued event's gr.Warning
    # never reached the page, so a file that is no video was named only in the summary
    # card, a screen below the player on a phone). Pressed before the queued check ran, Find
    # had started a run that the check then dropped without a word.
    video.upload(lambda: gr.update(interactive=False), None, analyze_btn, queue=False,
                 show_progress="hidden", api_visibility="private",
                 cancels=[analyzing]).then(
        ui.video_uploaded, video, after_upload, show_progress="hidden", preprocess=False,
        api_visibility="private", concurrency_limit=4)  # fmt: skip
    video.clear(ui.video_uploaded, video, after_upload, queue=False, show_progress="hidden",
                preprocess=False, api_visibility="private", cancels=[analyzing])  # fmt: skip
    for cleared in (video.upload, video.clear):  # no results, so nothing to be stale
        cleared(lambda: (None, ""), None, [ran, stale], queue=False, show_progress="hidden",
                api_visibility="private")  # fmt: skip
    gallery.select(ui.seek, [times], video).then(None, js=PLAY_JS)  # play from the moment
    return video_model


def build_ui(app: FastAPI) -> gr.Blocks:
    ui = CapsightUI(app)
    models = model_choices()  # narrowed to the installed ones when the page loads
    # Gradio keeps a copy of every upload and every file it shows; without delete_cache it
    # never removes them. They go as the jobs do (a day when jobs are kept for ever), checked
    # hourly.
    ttl_hours = app.state.settings.job_ttl_hours
    keep_s = int(ttl_hours * 3600) if ttl_hours > 0 else 86400
    with gr.Blocks(
        title="capsight", analytics_enabled=False, fill_width=False, delete_cache=(3600, keep_s)
    ) as blocks:
        gr.HTML(HERO.format(models_link="" if app.state.settings.api_key else MODELS_LINK))
        with gr.Tabs():
            menus = _image_tab(ui, models)
            video_model = _video_tab(ui, app, models)
            classify_tab(app)  # capsight.server.classify_tab

        model_a, model_b, menu_a, menu_b = menus
        blocks.load(ui.model_menus, None, [model_a, model_b, video_model, menu_a, menu_b])
        blocks.unload(ui.page_closed)
    return blocks


def mount_ui(app: FastAPI) -> None:
    """Mount the page at ``/ui`` (login with the API key as password when one is set)."""
    settings = app.state.settings
    auth = None
    if settings.api_key:
        key = settings.api_key
        auth = lambda _user, password: hmac.compare_digest(  # noqa: E731
            password.encode(), key.encode()
        )  # constant time, as the API's check
    job_dir = Path(settings.job_dir)
    blocks = build_ui(app)
    with warnings.catch_warnings():
        # Gradio warns that favicon_path is ignored under a sub-path; it does serve it at
        # /ui/favicon.ico, which the page's tab shows, so the warning only clutters the log.
        warnings.filterwarnings("ignore", message=".*favicon_path.*", category=UserWarning)
        gr.mount_gradio_app(
            app,
            blocks,
            path="/ui",
            theme=theme(),
            css=CSS_PATH.read_text() if CSS_PATH.is_file() else None,
            head=f"<script>{JS_PATH.read_text()}</script>" if JS_PATH.is_file() else None,
            allowed_paths=[str(job_dir)],  # the jobs' outputs, which the page links to
            blocked_paths=[str(job_dir / f"jobs.sqlite3{end}") for end in ("", "-wal", "-shm")],
            max_file_size=settings.max_upload_bytes,
            ssr_mode=False,
            auth=auth,
            auth_message="Log in with the server's API key as the password (any user name, or none).",
            footer_links=[],
            favicon_path=str(FAVICON_PATH) if FAVICON_PATH.is_file() else None,
            show_error=False,  # only user_error()'s messages reach the page, never internals
            i18n=gr.I18n(en=MISSING_TRANSLATIONS),
        )
    # The page's own app, whose stop_event ends the tabs' heartbeat streams: `capsight serve`
    # sets it on SIGTERM (Gradio's launch() does as much; a mounted page is left to its host).
    app.state.ui_app = next((route.app for route in app.routes
                             if getattr(route, "path", None) == "/ui" and hasattr(route, "app")),
                            None)  # fmt: skip
    # mount_gradio_app leaves has_launched False, and Gradio then skips its check that a file
    # handed to an event was uploaded by a user: a client could name any path on the server
    # and have it read and served back. With it set, only uploads (and, as outputs, the files
    # the handlers return from the job folder) pass.
    blocks.has_launched = True
