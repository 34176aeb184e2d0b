"""The original server's upload page (``GET /get_captions``), and the same page with an error
above the form for a browser whose upload was refused: a person who pressed Upload with no
file, or chose a PDF, reads one line and tries again, not a JSON body.

    >>> form_page()                      # the page as the original served it
    >>> form_page("image: field required")  # the same, with the error in a paragraph above

Behind an API key the page is open (it holds nothing), and says above its form that a browser's
form cannot send the key: the page at /ui logs in with it, curl sends it as a header. (It had
been the JSON 401 every keyed route answers, in a browser that can send no header.)
"""

from __future__ import annotations

import html

from starlette.requests import Request
from starlette.types import Scope

FORM_PATHS = frozenset({"/get_captions"})  # POSTed by the page's own form

_PAGE = """<!doctype html>
<title>capsight: caption an image</title>
<h1>Upload new File</h1>
{error}<form action="" method=post enctype=multipart/form-data>
  <p><input type=file name=image accept="image/*"> <input type=submit value=Upload>
</form>
<p>{nicer}The API is described at <a href="{root}/docs">/docs</a>.
"""
CURL = '<code>curl -H "X-API-Key: $KEY" -F image=@photo.jpg .../get_captions</code>'


def form_page(error: str | None = None, scope: Scope | None = None) -> str:
    """The page, with ``error`` above the form; ``scope`` (the request's) tells whether the
    server has a key and a web page, and under which prefix it is served."""
    settings = getattr(getattr((scope or {}).get("app"), "state", None), "settings", None)
    root = html.escape((scope or {}).get("root_path", ""), quote=True)
    ui = f'<a href="{root}/ui/">the web page</a>' if getattr(settings, "ui", False) else None
    shown = ""
    if getattr(settings, "api_key", None) is not None:
        way = f"log in with it on {ui}, or send it as a header" if ui else "send it as a header"
        shown += f"<p>This server takes an API key, which this form cannot send: {way}: {CURL}.\n"
    if error is not None:
        shown += f'<p role=alert style="color:#b00020">{html.escape(error)}\n'
    nicer = f'A nicer page is at <a href="{root}/ui/">/ui</a>. ' if ui else ""
    return _PAGE.format(error=shown, nicer=nicer, root=root)


def from_the_form(request: Request) -> bool:
    """A browser's POST to a form page: it asks for HTML first (``Accept: text/html,...``),
    where curl, requests and the original's clients send ``*/*`` and keep their JSON errors."""
    if request.method != "POST" or request.url.path not in FORM_PATHS:
        return False
    accept = request.headers.get("accept", "").lower()
    return "text/html" in accept.split(",")[0]
