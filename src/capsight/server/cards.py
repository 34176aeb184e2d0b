"""The web page's HTML cards: a caption with its model and details, or what went wrong.

    >>> caption_card("show-attend-tell-pair", "a dog runs", "120 ms on this server")
    >>> failure_card("notes.jpg: not an image (it looks like text)", "Nothing was described.")

Styled by ``static/ui.css`` (``cap-card``, ``cap-failed``); shared by the page's tabs
(``server.ui``, ``server.classify_tab``).
"""

from __future__ import annotations

import html


def caption_card(model: str, text: str, meta: str) -> str:
    return (
        f'<div class="cap-card"><div class="cap-model">{html.escape(model)}</div>'
        f'<div class="cap-text">{html.escape(text[:1].upper() + text[1:])}</div>'
        f'<div class="cap-meta">{html.escape(meta)}</div></div>'
    )


def failure_card(message: str, heading: str = "") -> str:
    lead = f"<b>{html.escape(heading)}</b> " if heading else ""
    return f'<div class="cap-card cap-failed">{lead}{html.escape(message)}</div>'
