"""The web page's HTML cards: a caption with its model and details, or what went wrong.

    >>> caption_card("show-attend-tell-pair", "a dog runs", "120 ms on this server", side="A")
    >>> failure_card("notes.jpg: not an image (it looks like text)", "Nothing was described.")

Styled by ``static/ui.css`` (``cap-card``, ``cap-failed``); shared by the page's tabs
(``server.ui``, ``server.classify_tab``).
"""

from __future__ import annotations

import html


def sentence_case(text: str) -> str:
    """A caption as the page shows it: its first letter a capital."""
    return text[:1].upper() + text[1:]


def caption_card(
    model: str, text: str, meta: str, side: str = "", hint: str = "", note: str = ""
) -> str:
    """A caption with its model's name and details; ``side`` ("A", "B") heads it, so two cards
    of one model are told apart, and names it for a screen reader, which would otherwise read
    the name, caption and details as one run of text. ``hint``: what the details mean, shown
    on hover; ``note``: why the caption is a guess (an image too small), under it."""
    label = f' aria-label="Model {html.escape(side)}: {html.escape(model)}"' if side else ""
    heading = f"{side} · {model}" if side else model
    title = f' title="{html.escape(hint)}"' if hint else ""
    caveat = f'<p class="cap-meta cap-guess">Note: {html.escape(note)}.</p>' if note else ""
    return (
        f'<section class="cap-card"{label}><p class="cap-model">{html.escape(heading)}</p>'
        f'<p class="cap-text">{html.escape(sentence_case(text))}</p>'
        f'<p class="cap-meta"{title}>{html.escape(meta)}</p>{caveat}</section>'
    )


def failure_card(message: str, heading: str = "") -> str:
    """What went wrong; ``role="alert"`` has a screen reader say it as it appears."""
    lead = f"<b>{html.escape(heading)}</b> " if heading else ""
    return f'<div class="cap-card cap-failed" role="alert">{lead}{html.escape(message)}</div>'
