"""Conceptual Captions: a TSV of ``caption<TAB>URL``; photos fetched once into a local cache.

    >>> report = fetch_conceptual_captions("Train_GCC-training.tsv", "cache/cc", limit=10_000)
    >>> report.fetched, report.cached, report.failed, report.failures
    (8172, 0, 1828, {'HTTP 404': 1210, 'timeout': 301, 'not an image': 317})
    >>> corpus = read_conceptual_captions("Train_GCC-training.tsv", "cache/cc")  # cached photos only

    $ python -m capsight.training.readers.conceptual_captions Train_GCC-training.tsv cache/cc --limit 10000
    $ capsight train Train_GCC-training.tsv --images cache/cc --out runs/cc ...

Many of the URLs are dead, so fetching is forgiving: each photo gets a short timeout (each read,
and six of them for the whole photo), redirects only to http(s) and, from a public address,
never to a host that resolves to a local one (a cloud's metadata service, localhost; checked
again on the address each connection reaches, so a name that resolves elsewhere by then is
caught too), failures
are skipped and counted by reason, and the run goes on. It is resumable: a photo already in the
cache is never fetched again, and permanent failures (HTTP 4xx, not an image, a redirect refused)
are remembered in ``<cache>/failures.tsv`` so a rerun does not retry them (``retry_failed=True``
does). Network errors, timeouts, HTTP 5xx and "try later" answers (408, 425, 429) are not
remembered: they are retried on the next run, and listed with their reasons in
``<cache>/retry.tsv`` (rewritten by each run). An empty file in the cache is fetched again, and
``verify=True`` (``--verify``) fetches again every cached photo that does not decode. After many network
errors in a row with no success (offline), fetching stops early and the report says so.

Photos are stored as ``<sha1 of the URL>.jpg``, re-encoded and shrunk to ``shorter_side``
pixels (256 by default; the encoder sees 224-260), written atomically so an interrupted run never
leaves half a file behind.
"""

from __future__ import annotations

import hashlib
import http.client
import ipaddress
import math
import os
import socket
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from PIL import Image

from capsight.errors import CapsightError, DatasetError, InputNotFound, InvalidParameter
from capsight.io.images import load_image
from capsight.progress import ProgressCallback, no_progress
from capsight.training.datasets import CaptionCorpus, CaptionedImage, counted

FAILURES_FILE = "failures.tsv"
# This run's failures that a rerun tries again (timeouts, network errors, 5xx, 429), each URL
# with its reason: they had been counted and named nowhere. Rewritten by each run.
RETRY_FILE = "retry.tsv"
_MAX_BYTES = 20_000_000
_USER_AGENT = "capsight-dataset-fetch/0.1 (research; Conceptual Captions)"


@dataclass(frozen=True)
class FetchReport:
    """What one ``fetch_conceptual_captions`` run did."""

    rows: int  # distinct URLs considered
    fetched: int  # downloaded now
    cached: int  # already in the cache
    failed: int  # failed now
    skipped_known_failures: int  # failed on an earlier run; not retried
    damaged: int = 0  # cached photos that did not decode (``verify``): fetched again
    failures: dict[str, int] = field(default_factory=dict)  # reason -> count, this run
    stopped_early: str | None = None  # why fetching stopped before the end, if it did
    notes: list[str] = field(default_factory=list)  # rows of the TSV left out, and why


def cache_file_name(url: str) -> str:
    return hashlib.sha1(url.encode("utf-8")).hexdigest() + ".jpg"


def read_tsv_rows(
    path: str | os.PathLike, limit: int | None = None, skipped: list[str] | None = None
) -> list[tuple[str, str]]:
    """``(caption, url)`` pairs of a Conceptual Captions TSV (extra columns are ignored). A row
    that is not ``caption<TAB>http(s) URL`` (an empty caption too) is skipped, and said in
    ``skipped`` (a line for the lot, naming the first): one bad row of 3.3 million had stopped the
    whole file. A file with no rows, or none that is one, raises DatasetError."""
    path = Path(path)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InvalidParameter(
            f"limit must be a whole number of rows >= 1 (None: all), got {limit!r}"
        )
    if not path.is_file():
        raise InputNotFound(f"{path}: no such Conceptual Captions TSV")
    rows, bad, first = [], 0, ""
    with path.open(encoding="utf-8-sig", errors="replace") as f:  # (a BOM joined the caption)
        for line_number, line in enumerate(f, 1):
            if limit is not None and len(rows) >= limit:
                break
            parts = line.rstrip("\r\n").split("\t")
            caption = " ".join(parts[0].split())
            url = parts[1].strip() if len(parts) >= 2 else ""  # (" http://...": a stray space)
            if not caption or not url.lower().startswith(("http://", "https://")):
                header = line_number == 1 and url.isidentifier()
                if not line.strip() or header:  # a blank line, or a header row ("caption<TAB>url");
                    continue  # (a URL without its scheme on line 1 was skipped as one)
                found = url.split("://")[0] + "://" if "://" in url else None
                bad += 1
                first = first or f"line {line_number}: expected 'caption<TAB>http(s) URL'" + (
                    f", got a {found} URL" if found and not url.lower().startswith("http")
                    else ", got an empty caption" if not caption and url else ""
                )  # fmt: skip
                continue
            rows.append((caption, url))
    if bad and not rows:
        raise DatasetError(
            f"{path}:{first.removeprefix('line ')}; is this the Conceptual Captions TSV?"
        )
    if not rows:
        raise DatasetError(
            f"{path}: no rows; a Conceptual Captions TSV has a caption<TAB>URL line per photo"
        )
    if bad and skipped is not None:
        skipped.append(
            f"{counted(bad, 'row')} not 'caption<TAB>http(s) URL' left out (first: {first})"
        )
    return rows


def _split_from_name(path: Path) -> str:
    return "val" if "valid" in path.name.lower() else "train"


class _PermanentFailure(Exception):
    """A URL that will not work on a retry either (HTTP 4xx, not an image)."""


def _is_local(url: str) -> bool:
    """A URL whose host is, or resolves to, an address of this machine or a private network
    (any of its addresses: ``127.1``, ``0x7f000001`` and ``metadata.google.internal`` too).
    A name that does not resolve is not local: its fetch fails anyway. (A name that resolves
    elsewhere by the time it is fetched is caught by ``_check_peer``.)"""
    host = (urllib.parse.urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        found = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    return any(_is_local_address(info[4][0]) for info in found)


def _is_local_address(address: str) -> bool:
    return not ipaddress.ip_address(address.split("%")[0]).is_global


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects only to http(s), and from a public address never to a local one (a photo URL
    of the TSV leading to a cloud's metadata service, 169.254.169.254, or to localhost)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
            raise _PermanentFailure("redirected off HTTP")
        if _is_local(newurl) and not _is_local(req.full_url):
            raise _PermanentFailure("redirected to a local address")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


# Whether the current photo's first connection reached a local address (None: none made yet).
_FIRST_PEER = threading.local()


def _check_peer(connection: http.client.HTTPConnection) -> None:
    """The address a connection reached, checked as a redirect's name was: a name can resolve
    to a public address when ``_CheckedRedirects`` looks it up and to a local one when it is
    connected to (DNS rebinding). A photo whose first connection was public never reaches a
    local address; a TSV of a local mirror stays local throughout. Checked before TLS or any
    request is sent, and the socket closed on refusal."""
    local = _is_local_address(connection.sock.getpeername()[0])
    first = getattr(_FIRST_PEER, "local", None)
    if first is None:
        _FIRST_PEER.local = local
    elif local and not first:
        connection.close()
        raise _PermanentFailure("redirected to a local address")


class _PeerCheckedHTTP(http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        _check_peer(self)


# HTTPSConnection.connect calls HTTPConnection.connect, then starts TLS: with this order of
# bases that call runs _PeerCheckedHTTP.connect, so the peer is checked before the handshake.
class _PeerCheckedHTTPS(http.client.HTTPSConnection, _PeerCheckedHTTP):
    pass


class _HTTPHandler(urllib.request.HTTPHandler):
    def do_open(self, http_class, req, **kwargs):
        # Through a proxy the connection reaches the proxy, not the photo's host: the names
        # are checked at each redirect as without one.
        proxied = req.has_proxy() or getattr(req, "_tunnel_host", None)
        return super().do_open(http_class if proxied else _PeerCheckedHTTP, req, **kwargs)


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def do_open(self, http_class, req, **kwargs):
        proxied = req.has_proxy() or getattr(req, "_tunnel_host", None)
        return super().do_open(http_class if proxied else _PeerCheckedHTTPS, req, **kwargs)


_OPENER = urllib.request.build_opener(_CheckedRedirects, _HTTPHandler, _HTTPSHandler)
_DEADLINE_FACTOR = 6  # a photo's whole fetch: this many timeouts (each read has one of its own)


# Client errors that a later run may not get: a timeout, a rate limit (the usual answer of a
# photo host to a fast fetch), "too early".
_RETRY_LATER = (408, 425, 429)


def _quoted(url: str) -> str:
    """``url`` as a browser sends it: spaces and other characters outside ASCII in its path and
    query percent-encoded as UTF-8, escapes already there kept (a space had been a "network
    error" on every run, and ``/café.jpg`` a permanent "bad URL")."""
    parts = urllib.parse.urlsplit(url)
    safe = "/%:@!$&'()*+,;=~"
    return urllib.parse.urlunsplit(parts._replace(path=urllib.parse.quote(parts.path, safe=safe),
                                                  query=urllib.parse.quote(parts.query, safe=safe + "?")))  # fmt: skip


def _fetch_one(url: str, target: Path, timeout: float, shorter_side: int | None) -> None:
    deadline = time.monotonic() + _DEADLINE_FACTOR * timeout
    _FIRST_PEER.local = None
    try:
        request = urllib.request.Request(_quoted(url), headers={"User-Agent": _USER_AGENT})
        with _OPENER.open(request, timeout=timeout) as response:
            data = _read_until(response, deadline)
    except urllib.error.HTTPError as exc:
        if 300 <= exc.code < 400:  # urllib refused to follow it: a loop, or to file:// or ftp://
            why = str(exc.reason).lower()
            raise _PermanentFailure("redirect loop" if "loop" in why else "redirected off HTTP"
                                    if "not allowed" in why else f"HTTP {exc.code}") from None  # fmt: skip
        if 400 <= exc.code < 500 and exc.code not in _RETRY_LATER:
            raise _PermanentFailure(f"HTTP {exc.code}") from None
        raise OSError(f"HTTP {exc.code}") from None
    except (ValueError, http.client.InvalidURL):  # a malformed URL (the timeout is checked)
        raise _PermanentFailure("bad URL") from None
    if len(data) > _MAX_BYTES:
        raise _PermanentFailure("too large")
    try:
        image = load_image(data, name=url)
    except CapsightError:
        raise _PermanentFailure("not an image") from None
    if shorter_side is not None and min(image.size) > shorter_side:
        scale = shorter_side / min(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.BICUBIC, reducing_gap=3.0)
    partial = target.with_name(target.name + ".part")
    image.save(partial, format="JPEG", quality=90)
    os.replace(partial, target)


def _read_until(response, deadline: float) -> bytes:
    """The body, up to ``_MAX_BYTES`` + 1 bytes; TimeoutError past ``deadline`` (a server that
    sends a byte a second never trips the per-read timeout)."""
    chunks, size = [], 0
    # read1: what has arrived, one socket read (read(n) waits for n bytes, past any deadline)
    read = getattr(response, "read1", response.read)
    while size <= _MAX_BYTES and (chunk := read(min(65536, _MAX_BYTES + 1 - size))):
        chunks.append(chunk)
        size += len(chunk)
        if time.monotonic() > deadline:
            raise TimeoutError("timed out")
    return b"".join(chunks)


def _reason(error: BaseException) -> str:
    if isinstance(error, _PermanentFailure):
        return str(error)
    if isinstance(error, (TimeoutError, socket.timeout)) or "timed out" in str(error):
        return "timeout"
    if isinstance(error, OSError) and str(error).startswith("HTTP "):
        return str(error)
    return "network error"


def _known_failures(cache_dir: Path) -> dict[str, str]:
    path = cache_dir / FAILURES_FILE
    if not path.is_file():
        return {}
    known = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        url, _, reason = line.partition("\t")
        if url:
            known[url] = reason
    return known


def _tidy_failures(cache_dir: Path, retried: set[str]) -> None:
    """failures.tsv with each URL once, as its last reason, and none whose photo is now cached
    (--retry-failed had listed every failure twice, and kept those that then worked) or that
    failed this time for a reason a rerun tries again (``retried``: retry.tsv lists them)."""
    path = cache_dir / FAILURES_FILE
    if not path.is_file():
        return
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    kept = {url: why for url, why in _known_failures(cache_dir).items()
            if url not in retried and not _is_cached(cache_dir / cache_file_name(url))}  # fmt: skip
    if len(kept) != len(lines):
        _write_rows(path, kept.items())


def _write_retry(cache_dir: Path, retry: list[tuple[str, str]]) -> None:
    """``<cache>/retry.tsv``: this run's failures a rerun tries again, or no file for none."""
    path = cache_dir / RETRY_FILE
    if retry:
        _write_rows(path, retry)
    else:
        path.unlink(missing_ok=True)


def _write_rows(path: Path, rows: Iterable[tuple[str, str]]) -> None:
    from capsight.io.new_files import write_whole

    text = "".join(f"{url}\t{why}\n" for url, why in rows).encode("utf-8")
    write_whole(path, lambda file: file.write(text))


def _is_cached(path: Path) -> bool:
    """A photo in the cache: a file with something in it (an empty one, a disk that filled up
    or a hand's ``truncate``, had counted as cached for good)."""
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


def _decodes(path: Path) -> bool:
    try:
        load_image(path)
    except CapsightError:
        return False
    return True


def fetch_conceptual_captions(
    tsv: str | os.PathLike,
    cache_dir: str | os.PathLike,
    *,
    timeout: float = 5.0,
    workers: int = 16,
    limit: int | None = None,
    retry_failed: bool = False,
    shorter_side: int | None = 256,
    max_network_errors_in_a_row: int = 64,
    verify: bool = False,
    progress: ProgressCallback = no_progress,
) -> FetchReport:
    """Download the photos of a Conceptual Captions TSV that are not cached yet. ``verify``:
    decode each cached photo first, and fetch again those that do not decode."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not timeout > 0
        or not math.isfinite(timeout)
    ):
        # (-1 had been a ValueError per URL, each remembered for good as a "bad URL")
        raise InvalidParameter(f"timeout must be a number of seconds > 0, got {timeout!r}")
    cache_dir = Path(cache_dir)
    if cache_dir.exists() and not cache_dir.is_dir():  # TSV and folder given the other way round?
        raise InvalidParameter(f"{cache_dir}: is a file; the photo cache is a folder (the TSV "
                               "comes first, then the folder)")  # fmt: skip
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidParameter(
            f"{cache_dir}: cannot make the photo cache folder ({exc.strerror})"
        ) from None
    notes: list[str] = []
    urls = list(dict.fromkeys(url for _, url in read_tsv_rows(tsv, limit, notes)))
    known = {} if retry_failed else _known_failures(cache_dir)
    (cache_dir / RETRY_FILE).unlink(missing_ok=True)  # this run's list, or none (not a stale one)
    todo, cached, skipped, damaged = [], 0, 0, 0
    for url in urls:
        photo = cache_dir / cache_file_name(url)
        here = _is_cached(photo)
        if here and verify and not _decodes(photo):
            photo.unlink()
            damaged += 1
            todo.append(url)
        elif here:
            cached += 1
        elif url in known:
            skipped += 1
        else:
            todo.append(url)

    pool = ThreadPoolExecutor(max_workers=max(1, workers))
    try:
        with (cache_dir / FAILURES_FILE).open("a", encoding="utf-8") as failure_log:
            fetched, failures, stopped_early, retry = _fetch_all(
                pool,
                todo,
                cache_dir,
                failure_log,
                timeout,
                shorter_side,
                workers,
                max_network_errors_in_a_row,
                progress,
            )
    except BaseException:  # Ctrl-C: drop the queued downloads; the few under way time out
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    _tidy_failures(cache_dir, {url for url, _ in retry})
    _write_retry(cache_dir, retry)
    return FetchReport(
        rows=len(urls),
        fetched=fetched,
        cached=cached,
        damaged=damaged,
        failed=sum(failures.values()),
        skipped_known_failures=skipped,
        failures=dict(sorted(failures.items())),
        stopped_early=stopped_early,
        notes=notes,
    )


def _fetch_all(
    pool: ThreadPoolExecutor, todo: list[str], cache_dir: Path, failure_log: IO[str],
    timeout: float, shorter_side: int | None, workers: int, max_network_errors_in_a_row: int,
    progress: ProgressCallback,
) -> tuple[int, dict[str, int], str | None, list[tuple[str, str]]]:  # fmt: skip
    """Fetch ``todo`` through ``pool``, a few per worker queued at a time; failures counted by
    reason, permanent ones logged; stops early after many network errors in a row."""
    fetched, failures, in_a_row = 0, {}, 0
    retry: list[tuple[str, str]] = []  # (URL, reason) of failures a rerun tries again
    stopped_early = None
    done = 0
    pending: dict[Future, str] = {}
    queue = iter(todo)
    while True:
        while stopped_early is None and len(pending) < 4 * max(1, workers):
            url = next(queue, None)
            if url is None:
                break
            target = cache_dir / cache_file_name(url)
            pending[pool.submit(_fetch_one, url, target, timeout, shorter_side)] = url
        if not pending:
            break
        finished, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in finished:
            url = pending.pop(future)
            done += 1
            error = future.exception()
            if error is None:
                fetched += 1
                in_a_row = 0
                continue
            reason = _reason(error)
            failures[reason] = failures.get(reason, 0) + 1
            if isinstance(error, _PermanentFailure):
                failure_log.write(f"{url}\t{reason}\n")
                failure_log.flush()
            if not isinstance(error, _PermanentFailure):
                retry.append((url, reason))
            if isinstance(error, _PermanentFailure) or reason.startswith("HTTP "):
                in_a_row = 0  # an answer: online (a 429 or 503 is not "offline?")
            else:
                in_a_row += 1
                if in_a_row >= max_network_errors_in_a_row and stopped_early is None:
                    stopped_early = (
                        f"{in_a_row} network errors in a row and no photo fetched since; "
                        "offline? Rerun when connected: cached photos are kept"
                    )
        progress(done / max(1, len(todo)), f"fetched {fetched}, failed {sum(failures.values())}")
    if done == len(
        todo
    ):  # every URL was tried all the same: nothing stopped early (it had said so)
        stopped_early = None
    return fetched, failures, stopped_early, retry


def read_conceptual_captions(
    tsv: str | os.PathLike,
    cache_dir: str | os.PathLike,
    split: str | None = None,
    limit: int | None = None,
) -> CaptionCorpus:
    """The rows of ``tsv`` whose photo is in the cache (run the fetch first)."""
    tsv = Path(tsv)
    cache_dir = Path(cache_dir)
    # (an empty file is no photo, as the fetch has it: fetched again, not trained on)
    present = {entry.name for entry in os.scandir(cache_dir)
               if entry.is_file() and entry.stat().st_size > 0} if cache_dir.is_dir() else set()  # fmt: skip
    images: dict[str, CaptionedImage] = {}
    skipped: list[str] = []
    rows = read_tsv_rows(tsv, limit, skipped)
    for caption, url in rows:
        key = cache_file_name(url)
        if key in images:  # the same photo listed twice: one image, two captions
            images[key] = CaptionedImage(key, images[key].path, (*images[key].captions, caption))
        elif key in present:
            images[key] = CaptionedImage(key, cache_dir / key, (caption,))
    if not images:
        where = cache_dir if cache_dir.is_dir() else (
            f"{cache_dir}, which is a file, not a folder" if cache_dir.exists()
            else f"{cache_dir}, which does not exist")  # fmt: skip
        raise DatasetError(
            f"{tsv}: none of its photos is in {where}; fetch them first "
            f"(python -m {__name__} TSV CACHE_DIR) or check the cache folder"
        )
    used = sum(len(image.captions) for image in images.values())
    notes = [f"{tsv.name}: {len(rows) - used} of {len(rows)} rows have no fetched photo in "
             f"{cache_dir}; left out"] if used < len(rows) else []  # fmt: skip
    notes += [f"{tsv.name}: {note}" for note in skipped]
    undecoded = sum("\ufffd" in caption for image in images.values() for caption in image.captions)
    # a Latin-1 "café": its byte replaced (read_tsv_rows), as the Flickr8k reader says
    if undecoded:
        notes.append(f"{tsv.name}: {counted(undecoded, 'caption')} with bytes that are not UTF-8 "
                     "(read with \ufffd in their place; save the file as UTF-8)")  # fmt: skip
    return CaptionCorpus(tsv.stem, images, {split or _split_from_name(tsv): list(images)}, notes)


if __name__ == "__main__":
    from capsight._cli.tools.conceptual_captions import main

    status = main()
    if status == 130:  # not waiting for the downloads under way (up to 6 timeouts, silent)
        sys.stdout.flush()
        sys.stderr.flush()
        # (a photo is written to a .part file, then renamed: none is left half-done, though a
        # .part file of one under way may stay, which nothing reads)
        os._exit(status)
    raise SystemExit(status)
