"""The *Classify* tab of the web page: a photo, classes typed or picked from a set, top-5 bars.

Built inside ``build_ui``'s ``gr.Tabs()`` by one call, ``classify_tab(app)``; it classifies with
the same cached classifiers as ``POST /v1/classify``.
"""

from __future__ import annotations

import html

import gradio as gr
from fastapi import FastAPI

from capsight.classify.class_sets import BUILTIN_SETS
from capsight.classify.standout import stands_out, top_two
from capsight.errors import CapsightError
from capsight.server.cards import failure_card
from capsight.server.ui_inputs import browser_copy, photo_from_upload, user_error

TYPED = "type your own"
TOP_LABEL = "Top 5 classes"  # the bars' heading before a run, and over 5 of more classes
# What the offline engine can and cannot tell apart (docs/classify.md), under every result.
ENGINE_NOTE = (
    "Offline engine: ImageNet's 1,000 classes mapped to yours through WordNet and text similarity. "
    "Classes ImageNet has no photos of (jobs, most scenes, colours) are guesses."
)
WEAK_SETS = {"professions": "people's jobs", "scenes": "scenes"}  # built-in sets it does poorly on


def classify_photo(upload, class_set: str, typed: str, template: str) -> tuple[dict, list[str]]:
    """({label: score} of the 6 likeliest classes, notes on classes the engine cannot tell
    apart); every failure a user can cause becomes a gr.Error. The page shows 5: a sixth says
    whether those 5 are all the classes.

    ``upload`` is the photo box's raw upload (the click runs with ``preprocess=False``) or a path.
    """
    from capsight.classify.engines import predictions
    from capsight.server.http_errors import ApiError
    from capsight.server.routers.classify import (
        _classifier,
        _notes,
        client_classes,
        client_templates,
    )

    image = photo_from_upload(upload)
    try:
        classes = client_classes(typed if class_set == TYPED else class_set)
        templates = client_templates([t for t in template.splitlines() if t.strip()], classes)
        classifier = _classifier(classes, templates)
        (found,) = predictions(classifier, [image], ["photo"], top=6)
    except CapsightError as exc:
        raise user_error(str(exc)) from None
    except ApiError as exc:  # the API's own limits (at most 5,000 classes)
        raise user_error(str(exc.detail)) from None
    # (a blank photo, an icon, an animation's first frame: as the API notes them)
    photo = [found.note] if found.note else []
    return {label: score for label, score in found.top}, [*photo, *_notes(classes, templates)]


def no_bars() -> dict:
    """The bars cleared, their heading back to the first one (a failed run after a two-class
    list had left "All 2 classes" over no bars)."""
    return gr.update(value=None, label=TOP_LABEL)


def shown_classes(upload, class_set: str, typed: str, template: str) -> tuple[dict, str]:
    """``classify_photo`` for the page: (bars, the note under them); a failure is the note,
    the bars cleared (raised, it would leave the last photo's bars under an "Error" badge).
    The bars come as an update whose headline (the top class in large type) shows only for a
    class that stands out, ``standout.stands_out``:
    over a near tie it would read as the answer."""
    try:
        bars, notes = classify_photo(upload, class_set, typed, template)
    except gr.Error as exc:
        # "the class list is empty"
        return no_bars(), failure_card(str(exc.message), "Nothing was classified:")
    weak = WEAK_SETS.get(class_set)
    caveat = (
        f" This set is {weak}, which ImageNet has few photos of: read its top class as a guess."
        if weak
        else ""
    )
    top, second = top_two(bars.values())
    clear = stands_out(bars.values())
    if not clear:
        caveat += (f" No class stands out: the best takes {top:.0%}, the next {second:.0%} (the "
                   "scores are shares of your classes, adding up to 100%); the photo may show "
                   "none of them, or several.")  # fmt: skip
    # Notes first, in bold: a blank photo's note had been the ninth line of a grey paragraph,
    # after the engine's boilerplate (a UI check, 2026-12-08)
    said = " ".join(f"Note: {note[0].upper()}{note[1:]}." for note in notes)
    # "Top 5 classes" over the 2 of a two-class list read as 3 missing, and over 5 as more
    label = TOP_LABEL if len(bars) > 5 else f"All {len(bars)} classes"
    bars = dict(sorted(bars.items(), key=lambda item: -item[1])[:5])
    shown = gr.update(value=bars, show_heading=clear, label=label)
    first = f"<strong>{html.escape(said)}</strong> " if said else ""
    return shown, f'<p class="cap-note">{first}{html.escape(ENGINE_NOTE + caveat)}</p>'


def shown_photo(upload):
    """The photo box after an upload: a PNG copy of a photo the browser cannot show (TIFF ...).
    A file that is not a usable photo is named in a toast and taken out of the box, as the Image
    tab does (kept, it showed as a broken-image icon)."""
    try:
        photo_from_upload(upload)
        return browser_copy(upload) or gr.update()
    except gr.Error as exc:
        gr.Warning(str(exc.message), duration=10, title="This file cannot be classified")
        return None


def set_classes(class_set: str) -> str:
    """What a built-in set holds, shown where the typed classes were ("" for typed classes)."""
    from capsight.classify.class_sets import parse_classes

    if class_set == TYPED:
        return ""
    labels = parse_classes(class_set).labels
    return f"{len(labels):,} classes: " + ", ".join(labels)


def classify_tab(app: FastAPI) -> None:
    with gr.Tab("Classify", id="classify"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=320):
                photo = gr.Image(type="filepath", sources=["upload", "clipboard"], label="Photo",
                                 height=300, elem_id="capsight-classify-photo")  # fmt: skip
                class_set = gr.Dropdown([TYPED, *BUILTIN_SETS], value=TYPED, label="Classes",
                                        elem_id="capsight-class-set")  # fmt: skip
                typed = gr.Textbox("cat, dog, car, bicycle, cup of coffee", lines=2,
                                   label="Your classes (comma or one per line)",
                                   elem_id="capsight-classes")  # fmt: skip
                # (the set's classes, in view: choosing a set had hidden the box and shown nothing)
                in_set = gr.Textbox("", lines=2, max_lines=6, interactive=False, visible=False,
                                    label="The set's classes (scroll for them all)",
                                    elem_id="capsight-set-classes")  # fmt: skip
                with gr.Accordion("Prompt templates", open=False):
                    template = gr.Textbox("", lines=3, placeholder="a photo of a {}.", label="Templates, one per line",
                                          info="Empty: the engine's default set. The offline engine reads them "
                                               "only for names WordNet does not know or maps alike")  # fmt: skip
                button = gr.Button("Classify", variant="primary", elem_id="capsight-classify")
            with gr.Column(scale=7, min_width=360):
                bars = gr.Label(num_top_classes=5, label=TOP_LABEL, elem_id="capsight-top5")
                note = gr.HTML("", elem_id="capsight-classify-note")
        class_set.change(lambda s: (gr.update(visible=s == TYPED), gr.update(visible=s != TYPED, value=set_classes(s))),
                         class_set, [typed, in_set], show_progress="hidden", api_visibility="private")  # fmt: skip
        classifying = button.click(shown_classes, [photo, class_set, typed, template], [bars, note],
                                   concurrency_limit=4, preprocess=False)  # fmt: skip
        # Bars belong to one photo and one class list: either changing clears them and cancels
        # a run still going, whose late bars would read as the new ones'. (.change, not .input:
        # a paste or a filled-in value sends no input event, and "cat 99%" stayed beside a new list.)
        for changed in (photo.change, class_set.change, typed.change, template.change):
            changed(lambda: (no_bars(), ""), None, [bars, note], queue=False, show_progress="hidden",
                    api_visibility="private", cancels=[classifying])  # fmt: skip
        photo.upload(
            shown_photo,
            photo,
            photo,
            show_progress="hidden",
            preprocess=False,
            api_visibility="private",
            concurrency_limit=4,
        )  # queued: see build_ui's
