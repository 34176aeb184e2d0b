"""Uploads: a request-size limit, file types told by content, and names that never become paths.

    >>> app.add_middleware(BodySizeLimit, max_bytes=200 * 2**20)   # 413 past 200 MB
    >>> sniff_image(b"\\x89PNG\\r\\n\\x1a\\n...")
    'png'
    >>> sniff_video(open("clip.mp4", "rb").read(64))
    'mp4'

The client's file name is only ever *displayed* (``display_name``); files are stored under
server-chosen names (``input.<detected extension>``) inside a job's own folder.
"""

from __future__ import annotations

import json
import re
import unicodedata

from starlette.types import ASGIApp, Message, Receive, Scope, Send

SNIFF_BYTES = 512  # enough for every signature below (MPEG-TS needs 3 packets of 188)


class UploadTooLarge(Exception):
    """Raised from ``receive`` when the body passes the limit; the middleware answers 413."""


def too_large_message(max_bytes: int) -> str:
    return (
        f"upload is larger than this server's {max_bytes / 2**20:.3g} MiB limit; "
        "send a smaller file (or raise CAPSIGHT_MAX_UPLOAD_MB)"
    )


class BodySizeLimit:
    """ASGI middleware: answer 413 (JSON) for request bodies over ``max_bytes``.

    A declared Content-Length over the limit is refused before a byte is read; a chunked body is
    counted as it streams and cut off the moment it passes the limit, so memory and disk stay
    bounded whatever the client claims.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await _send_413(send, self.max_bytes)
            return

        received = 0
        exceeded = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    exceeded = True
                    raise UploadTooLarge
            return message

        async def tracked_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # whatever the app makes of the cut-off body, the answer is 413
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except UploadTooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await _send_413(send, self.max_bytes)


def _content_length(scope: Scope) -> int | None:
    for key, value in scope.get("headers", []):
        if key == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_413(send: Send, max_bytes: int) -> None:
    body = json.dumps({"error": too_large_message(max_bytes)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# -- content sniffing ------------------------------------------------------------------------

_IMAGE_SIGNATURES: list[tuple[int, bytes, str]] = [
    (0, b"\xff\xd8\xff", "jpeg"),
    (0, b"\x89PNG\r\n\x1a\n", "png"),
    (0, b"GIF87a", "gif"),
    (0, b"GIF89a", "gif"),
    (0, b"BM", "bmp"),
    (0, b"II*\x00", "tiff"),
    (0, b"MM\x00*", "tiff"),
    (0, b"\x00\x00\x01\x00", "ico"),
    (0, b"P1", "ppm"),
    (0, b"P2", "ppm"),
    (0, b"P3", "ppm"),
    (0, b"P4", "ppm"),
    (0, b"P5", "ppm"),
    (0, b"P6", "ppm"),
    (0, b"\x00\x00\x00\x0cjP  ", "jp2"),
    (0, b"\xffO\xffQ", "jp2"),
    (0, b"8BPS", "psd"),
    (0, b"\x76\x2f\x31\x01", "exr"),
    (0, b"#?RADIANCE", "hdr"),
    (0, b"DDS ", "dds"),
]


def sniff_image(head: bytes) -> str | None:
    """The image format ``head`` (the first bytes of a file) starts like, or None."""
    for offset, magic, name in _IMAGE_SIGNATURES:
        if head[offset : offset + len(magic)] == magic:
            return name
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis", b"heic", b"heix", b"mif1"):
        return "heif"
    return None


_VIDEO_EXTENSIONS = {
    "mp4": ".mp4",
    "mov": ".mov",
    "mkv": ".mkv",
    "avi": ".avi",
    "mpeg-ts": ".ts",
    "mpeg-ps": ".mpg",
    "flv": ".flv",
    "ogg": ".ogv",
    "asf": ".wmv",
    "gif": ".gif",
    "y4m": ".y4m",
}


def sniff_video(head: bytes) -> str | None:
    """The video container ``head`` starts like, or None (animated GIFs count as video)."""
    if head[4:8] == b"ftyp":
        return "mov" if head[8:10] == b"qt" else "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "mkv"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if head[:4] == b"\x00\x00\x01\xba":
        return "mpeg-ps"
    if len(head) > 376 and head[0] == head[188] == head[376] == 0x47:
        return "mpeg-ts"  # a sync byte at the start of three 188-byte packets
    if head[:3] == b"FLV":
        return "flv"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x30\x26\xb2\x75":
        return "asf"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:9] == b"YUV4MPEG2":
        return "y4m"
    return None


def video_extension(kind: str) -> str:
    return _VIDEO_EXTENSIONS[kind]


def describe_content(head: bytes) -> str:
    """A short guess of what a refused upload is, for the 415 message."""
    if not head:
        return "an empty file"
    if sniff_image(head):
        return f"a {sniff_image(head).upper()} image"
    if sniff_video(head):
        return "a video"
    if head[:5] == b"%PDF-":
        return "a PDF"
    if head[:2] == b"PK":
        return "a ZIP archive"
    if head[:3] == b"ID3" or head[:4] == b"fLaC" or (head[:4] == b"RIFF" and head[8:12] == b"WAVE"):
        return "an audio file"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "binary data of an unknown type"


_WANTED_FORMATS = {
    "image": "JPEG, PNG, WebP, GIF, BMP or TIFF",
    "video": "MP4, MOV, MKV, WebM, AVI or another container FFmpeg reads",
}


def upload_refusal(name: str, head: bytes, wanted: str) -> str | None:
    """Why an upload starting with ``head`` is not a ``wanted`` ("image"/"video"), in one line.

    None when it looks like one. An empty file and a file of another kind (a PDF, text, an
    image sent as a video...) are told apart, in the words the API's 400 and 415 answers use.
    """
    if not head:
        return f"{name}: file is empty"
    sniff = sniff_image if wanted == "image" else sniff_video
    if sniff(head) is not None:
        return None
    article = "an" if wanted[0] in "aeiou" else "a"
    return (
        f"{name}: not {article} {wanted} (it looks like {describe_content(head)}); "
        f"send {_WANTED_FORMATS[wanted]}"
    )


_UNSAFE = re.compile(r"[^\w.\- ()\[\]+,]")


def display_name(filename: str | None, fallback: str = "upload") -> str:
    """A client's file name made safe to show (never used as a path): base name, 120 chars."""
    if not filename:
        return fallback
    name = unicodedata.normalize("NFC", filename).replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    return name[:120] or fallback
