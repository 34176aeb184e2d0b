"""What a file is, told from its first bytes: image formats, video containers, and a short
guess for anything else (the server's 415 answers and the CLI's "not an image" line).

    >>> sniff_image(b"\\x89PNG\\r\\n\\x1a\\n...")
    'png'
    >>> sniff_video(open("clip.mp4", "rb").read(64))
    'mp4'
    >>> describe_content(b"%PDF-1.7")
    'a PDF'
"""

from __future__ import annotations

SNIFF_BYTES = 512  # enough for every signature below (MPEG-TS needs 3 packets of 188)

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
    (0, b"qoif", "qoi"),  # (the CLI read a QOI file the server had refused as unknown data)
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
    """A short guess of what a file that is not what was wanted is ("a PDF", "text")."""
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
    if b"\x00" in head:  # valid UTF-8, but no text has NULs: zeros of an unfinished download
        return "binary data of an unknown type"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError as exc:  # text whose head was cut inside a character is text
        if exc.start >= len(head) - 3 and exc.reason == "unexpected end of data":
            return "text"
        return "binary data of an unknown type"
