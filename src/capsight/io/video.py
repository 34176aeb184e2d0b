"""Frame sampling with PyAV: one upright RGB frame every ``every`` seconds, in bounded memory.

    >>> info = probe_video("clip.mp4")
    >>> info.duration, info.width, info.height, info.rotation
    (70.0, 1280, 720, 0)
    >>> for frame in sample_frames("clip.mp4", every=1.0, max_side=384):
    ...     frame.time, frame.image.size          # (0.0, (384, 216)), (1.0, (384, 216)), ...

Times are seconds from the start of the file as a player shows it: presentation time
(``pts * time_base``) minus the container's start time, so the first frame of a file whose video
starts at 1.075 s (``pyscenedetect__delayed_start.mp4``) is at 0.0. ``VideoInfo.start_time``
keeps the offset.

For each target time ``k * every`` the first frame whose time is >= the target is taken; when a
gap in a variable-frame-rate stream puts that frame more than ``every / 2`` past the target and
the frame before it is nearer, the nearer frame is taken instead. A frame is never returned
twice, so gaps longer than ``every`` yield fewer moments, not duplicates.

Frames are decoded sequentially (faster than seeking at one sample per second unless keyframes
are dense), with FFmpeg's frame threads (or, with ``lean=True``, more cheaply: see
``sample_frames``). Frames that nothing references and that lie far from
any target are not decoded at all (``skip_frame``), and only sampled frames are converted to RGB,
downscaled by swscale. Rotation metadata (the display matrix) is applied, so a phone video
recorded upright comes out upright, and so is the sample aspect ratio: non-square pixels are
stretched to the shape a player shows.
"""

from __future__ import annotations

import functools
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from capsight.errors import InvalidParameter, VideoOpenError
from capsight.io.images import check_input_file
from capsight.novelty.analysis import VideoInfo

# Demuxers that read still images (PyAV opens a JPEG as a one-frame "video") or plain text.
_IMAGE_DEMUXERS = {"image2", "image2pipe"}
_TEXT_DEMUXERS = {"tty", "srt", "webvtt", "ass", "subviewer", "subviewer1", "microdvd"}

# Packets whose frames lie within this many frame durations of a target are always decoded, so
# the first frame at or after each target (and the one before it) is never skipped. The duration
# is the larger of the file's average and the last packets' (_RECENT_PACKETS): in a sparse
# stretch of variable-frame-rate video (2 fps inside 30) the frame nearest a target lies farther
# off than the file's average makes it, and was skipped when B-frames made it skippable. (The
# first target of such a stretch may still see the dense spacing and take the frame just before
# it, where decoding every frame would take the one after: none is lost.)
_DECODE_MARGIN_FRAMES = 1.5
_RECENT_PACKETS = 8
# Above this frame area (1080p) a lean decode still uses frame threads: one core is too slow.
_LEAN_MAX_AREA = 1920 * 1088
# Any ``every`` shorter than a frame samples every frame; below this one the arithmetic on
# target times would overflow (``--every 1e-320``), so it stands for all of them.
MIN_EVERY = 1e-6


@dataclass(frozen=True)
class SampledFrame:
    time: float  # seconds from the start of the video (see module docstring)
    image: Image.Image  # RGB, upright, at most max_side pixels on its longer side


def _other_content(path: Path) -> str | None:
    """What a file FFmpeg cannot open looks like ("text", "a PDF"), when it is plainly something
    other than a video; None for a damaged video or unknown bytes."""
    from capsight.io.sniff import SNIFF_BYTES, describe_content

    try:
        with open(path, "rb") as f:
            what = describe_content(f.read(SNIFF_BYTES))
    except OSError:
        return None
    return None if what in ("a video", "binary data of an unknown type") else what


def _open(path: str | os.PathLike) -> tuple[av.container.InputContainer, Path]:
    p = check_input_file(path)
    try:
        container = av.open(str(p), metadata_errors="ignore")
    except av.FFmpegError as exc:
        if looks_like := _other_content(p):  # notes.md, a PDF: say what it is, not FFmpeg's words
            raise VideoOpenError(f"{p}: not a video (it looks like {looks_like})") from None
        raise VideoOpenError(
            f"{p}: not a readable video ({_reason(exc)}); the file may be truncated, corrupt "
            "or not a video"
        ) from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise VideoOpenError(f"{p}: cannot open as a video ({exc})") from None
    name = container.format.name
    if name in _TEXT_DEMUXERS:
        container.close()
        raise VideoOpenError(f"{p}: is a text file, not a video")
    if name in _IMAGE_DEMUXERS or name.endswith("_pipe"):
        container.close()
        if not _is_image(p):  # FFmpeg picks its image reader by the name: notes.jpg is text
            raise VideoOpenError(f"{p}: not a readable video, nor an image; the file may be "
                                 "corrupt or of another kind")  # fmt: skip
        raise VideoOpenError(
            f"{p}: is a still image, not a video; caption it instead (`capsight caption`, or "
            "capsight.caption in Python)"
        )
    if video_stream(container) is None:
        kinds = sorted({s.type for s in container.streams})
        pictures = len(container.streams.video)  # all of them attached pictures
        container.close()
        if pictures:  # an MP3 or M4A with its cover art: a picture, not moving video
            others = [kind for kind in kinds if kind != "video"]
            what = ("an audio file with a cover picture" if others == ["audio"] else
                    f"a cover picture{' and ' + ', '.join(others) + ' streams' if others else ''}")  # fmt: skip
            raise VideoOpenError(f"{p}: has no video stream (it is {what}); give a file with video")
        found = f"only {', '.join(kinds)} streams" if kinds else "no streams at all"
        cut = _CUT_SHORT if set(kinds) <= {"data"} else ""  # (audio alone is an audio file)
        raise VideoOpenError(f"{p}: has no video stream ({found}); give a file with video{cut}")
    if video_stream(container).codec_context is None:  # its codec's parameters were cut off
        container.close()
        raise VideoOpenError(f"{p}: not a readable video (its video stream names no codec); the "
                             "file may be truncated, corrupt or not a video")  # fmt: skip
    return container, p


def video_stream(container: av.container.InputContainer) -> av.VideoStream | None:
    """The file's first moving video stream: not a cover picture (an MP3's or M4A's album art is
    a one-frame "video" stream, which had been read as a video cut short at 0.0 s)."""
    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    return None


# A video cut short (a download or copy that stopped) loses its index, where an MP4 keeps it at
# the end: FFmpeg then finds no streams, data streams only, or no frames.
_CUT_SHORT = " (a video cut short can look so: is the file whole?)"


def _is_image(path: Path) -> bool:
    """True when Pillow recognises the file as an image (its header only)."""
    from capsight.io.images import open_image

    try:
        with open_image(path):
            return True
    except Image.DecompressionBombError:  # an image all the same, only a huge one
        return True
    except (OSError, ValueError, SyntaxError):  # UnidentifiedImageError is an OSError
        return False


def _reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[0].strip() if isinstance(text, str) else str(exc)


def _display_rotation(frame: av.VideoFrame) -> int:
    """Degrees clockwise to turn the decoded frame so it displays upright (0, 90, 180, 270)."""
    try:
        ccw = frame.rotation  # counter-clockwise angle of the display matrix, [-180, 180]
    except (AttributeError, ValueError):
        return 0
    return int(round(-float(ccw) / 90.0)) % 4 * 90


def _sample_aspect(stream: av.VideoStream) -> Fraction:
    """Width over height of one stored pixel (1 when unset): the container's, else the codec's,
    as FFmpeg guesses it."""
    sar = stream.sample_aspect_ratio or stream.codec_context.sample_aspect_ratio
    return Fraction(sar) if sar and sar > 0 else Fraction(1)


def _display_size(width: int, height: int, sar: Fraction) -> tuple[int, int]:
    """Stored size -> the size a player shows before rotation: non-square pixels (anamorphic
    video, many phone and DVD clips) stretch the width, as FFmpeg does."""
    return (max(2, round(width * sar)), height) if sar != 1 else (width, height)


def _seconds(value: int | None, time_base: Fraction | None) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _container_start(container: av.container.InputContainer, stream: av.VideoStream) -> float:
    if container.start_time is not None:
        return container.start_time / av.time_base
    return _seconds(stream.start_time, stream.time_base) or 0.0


def _first_frame(container: av.container.InputContainer, stream: av.VideoStream, p: Path):
    try:
        for frame in container.decode(stream):
            return frame
    except av.FFmpegError as exc:
        raise VideoOpenError(f"{p}: corrupt video, cannot decode ({_reason(exc)})") from None
    raise VideoOpenError(f"{p}: the video stream contains no frames{_CUT_SHORT}")


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Read a video's duration, frame rate, display size and rotation; decode only its first frame.

    Raises InputNotFound for a missing path, a directory or an empty file, and VideoOpenError for
    anything that is not a decodable video (an image, text, audio only, zero frames, corrupt).
    """
    container, p = _open(path)
    with container:
        stream = video_stream(container)
        stream.thread_type = "AUTO"
        # before decoding
        _check_frame_size(stream.codec_context.width, stream.codec_context.height, p)
        start = _container_start(container, stream)
        frame = _first_frame(container, stream, p)
        _check_frame_size(frame.width, frame.height, p)  # a header that left the size out
        rotation = _display_rotation(frame)
        width, height = _display_size(frame.width, frame.height, _sample_aspect(stream))
        if rotation in (90, 270):
            width, height = height, width
        duration = _duration(container, stream, p)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        first_time = (frame.time if frame.time is not None else start) - start
        return VideoInfo(
            path=str(p),
            duration=round(max(duration, first_time), 6),
            fps=round(fps, 6),
            width=width,
            height=height,
            rotation=rotation,
            start_time=round(start, 6),
        )


MAX_FRAME_PIXELS = 64_000_000  # as for images (io.images.MAX_IMAGE_PIXELS): 8K is 33 million


def _check_frame_size(width: int | None, height: int | None, path: Path) -> None:
    """VideoOpenError for frames over ``MAX_FRAME_PIXELS``: a 6 MB clip of 121-megapixel MJPEG
    frames took 400 MB to sample, and a decoder keeps several frames in flight."""
    if width and height and width * height > MAX_FRAME_PIXELS:
        raise VideoOpenError(f"{path}: its frames are {width}x{height} px, over "
                             f"{MAX_FRAME_PIXELS // 1_000_000} megapixels; downscale it first")  # fmt: skip


def _duration(container: av.container.InputContainer, stream: av.VideoStream, path: Path) -> float:
    """The video stream's length in seconds from the container's start. A stream that declares
    none (Matroska, WebM) is measured by its last packets where the file is whole: the
    container's duration is its longest stream's (12 s of audio beside 5 s of video had the
    video refused as truncated), counts a start offset in some files, and a browser's
    MediaRecorder WebM declares none at all (its length had been 0)."""
    stream_duration = _seconds(stream.duration, stream.time_base)
    start = _container_start(container, stream)
    if stream_duration:
        stream_start = _seconds(stream.start_time, stream.time_base) or 0.0
        return stream_duration + stream_start - start
    declared = container.duration / av.time_base if container.duration else 0.0
    video_end, data_end = _packet_ends(path, stream.index, start, declared)
    if video_end is None:
        return declared
    if not declared:
        return video_end
    # Whole when some stream's packets reach the declared end, counted from 0 or from the
    # start; a file cut short keeps the declared length, and is said to be cut.
    rate = stream.average_rate or stream.guessed_rate
    slack = max(0.5, 2.0 / float(rate)) if rate else 0.5
    return video_end if data_end >= min(declared, declared - start) - slack else declared


def _packet_ends(
    path: Path, index: int, start: float, declared: float
) -> tuple[float | None, float]:
    """(where the video stream's packets end, where any stream's do), in seconds from
    ``start``, read from the file's end on a container of its own (the caller's is left where
    it is); (None, 0) where the file cannot be read so. Measured once per version of the file:
    the probe and the sampling both ask, and a WebM that declares no length is read whole."""
    try:
        stat = path.stat()
        return _measured_ends(str(path), stat.st_mtime_ns, stat.st_size, index, start, declared)
    except (av.FFmpegError, OSError, ValueError):  # (not kept: it may pass, as "too many files")
        return None, 0.0


@functools.lru_cache(maxsize=16)
def _measured_ends(
    path: str, mtime_ns: int, size: int, index: int, start: float, declared: float
) -> tuple[float | None, float]:
    """``_packet_ends``' measure, kept per file version; a failure raises and is not kept."""
    video_end, data_end = None, 0.0
    with av.open(path, metadata_errors="ignore") as c:
        if declared:  # (from the last keyframe before the end; without one, the whole file)
            c.seek(int((declared + max(start, 0.0)) * av.time_base), backward=True)
        for packet in c.demux():
            if packet.pts is None or packet.time_base is None or not packet.size:
                continue
            end = float((packet.pts + (packet.duration or 0)) * packet.time_base) - start
            data_end = max(data_end, end)
            if packet.stream.index == index:
                video_end = end if video_end is None else max(video_end, end)
    return video_end, data_end


def _rgb_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if not max_side or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    return max(2, round(width * scale)), max(2, round(height * scale))


def _to_image(
    frame: av.VideoFrame, rotation: int, max_side: int | None, sar: Fraction = Fraction(1)
) -> Image.Image:
    width, height = _display_size(frame.width, frame.height, sar)
    if rotation in (90, 270):
        h, w = _rgb_size(height, width, max_side)  # size before the quarter turn
    else:
        w, h = _rgb_size(width, height, max_side)
    interpolation = "AREA" if (w, h) != (frame.width, frame.height) else None
    rgb = frame.to_ndarray(
        format="rgb24", width=w, height=h, interpolation=interpolation
    )  # (h, w, 3)
    if rotation:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=-rotation // 90))  # k<0 turns clockwise
    return Image.fromarray(rgb, "RGB")


def _sampled(
    t: float, frame: av.VideoFrame, max_side: int | None, sar: Fraction = Fraction(1)
) -> SampledFrame:
    return SampledFrame(round(t, 6), _to_image(frame, _display_rotation(frame), max_side, sar))


def sample_frames(
    path: str | os.PathLike, every: float, max_side: int | None = None, lean: bool = False
) -> Iterator[SampledFrame]:
    """Yield one upright RGB frame per ``every`` seconds, in time order, decoding sequentially.

    Memory stays bounded by the decoder's few reference frames, whatever the video's length.
    ``lean`` is for callers that keep the other cores busy with models: up to 1080p the decoder
    uses slice threads only (one core for the usual one-slice H.264, no frame-thread overhead),
    the same frames for ~15% less CPU. (Skipping the deblocking filter as well saves another
    ~15% but its blocking artefacts cost the novelty benchmark 2 points of recall and doubled
    its false alarms, so frames are always fully decoded.)
    Raises InvalidParameter for ``every <= 0`` and VideoOpenError for bad or corrupt input (a
    corrupt packet in the middle raises when decoding reaches it).
    """
    if not every or every <= 0 or not np.isfinite(every):
        raise InvalidParameter(f"every must be a positive number of seconds, got {every}", "every")
    if max_side is not None and max_side < 2:
        raise InvalidParameter(f"max_side must be at least 2 pixels, got {max_side}")
    container, p = _open(path)
    with container:
        stream = video_stream(container)
        stream.thread_type = "AUTO"
        if lean and stream.width * stream.height <= _LEAN_MAX_AREA:
            stream.thread_type = "SLICE"
        yield from _sample(container, stream, p, max(float(every), MIN_EVERY), max_side)


def _sample(
    container, stream, p: Path, every: float, max_side: int | None
) -> Iterator[SampledFrame]:
    time_base = stream.time_base
    start = _container_start(container, stream)
    rate = stream.average_rate or stream.guessed_rate
    frame_step = 1.0 / float(rate) if rate else 0.04
    margin = _DECODE_MARGIN_FRAMES * frame_step
    expected_end = _duration(container, stream, p)
    sar = _sample_aspect(stream)
    codec = stream.codec_context
    skipping = False

    def in_tail(t: float) -> bool:
        # Within the last half second (two frames, if longer) of the length the file declares.
        return expected_end > 0 and t >= expected_end - max(0.5, 2 * frame_step)

    def cut_off() -> tuple[bool, bool]:
        # (short, surely): the data ends before the frames the file's index counts, so the file
        # was cut short; surely, when the rest of it was read without an error (otherwise the
        # damage may lie inside the file). (A decoding error surfaces frames after its packet
        # when decoding runs on threads, so where demuxing had got to cannot tell damage near
        # the end from a file cut there.)
        rest = 0
        try:
            rest = sum(1 for packet in container.demux(stream) if packet.size)
        except av.FFmpegError:
            return bool(stream.frames), False
        return 0 < packets + rest < stream.frames, True

    recent: deque[float] = deque(maxlen=_RECENT_PACKETS)  # presentation times, decode order

    def needed(packet_time: float) -> bool:
        # True when a frame at this time could be the one taken for some target k * every.
        spacing = (max(recent) - min(recent)) / (len(recent) - 1) if len(recent) > 1 else 0.0
        near = max(margin, _DECODE_MARGIN_FRAMES * spacing)
        k = round(packet_time / every)
        return abs(packet_time - k * every) <= near or packet_time < near

    target = 0.0
    previous = None  # (time, frame): the last decoded frame before the pending target
    last_emitted = -np.inf
    decoded_any = False
    demuxed_until = -np.inf
    packets = 0  # with data, demuxed so far
    try:
        for packet in container.demux(stream):
            packets += bool(packet.size)
            if packet.pts is not None and packet.dts is not None:
                t_packet = float(packet.pts * time_base) - start
                demuxed_until = max(demuxed_until, t_packet)
                recent.append(t_packet)
                # Frames nothing references and no target wants are not decoded at all.
                skip = not packet.is_keyframe and not needed(t_packet)
                if skip != skipping:
                    codec.skip_frame = "NONREF" if skip else "DEFAULT"
                    skipping = skip
            elif skipping:
                codec.skip_frame = "DEFAULT"
                skipping = False
            for frame in codec.decode(packet):
                decoded_any = True
                # (probe_video checks the header and the first frame: an MJPEG stream whose later
                # frames were 256 megapixels had been sampled to its end; now the first such frame,
                # decoded, fails the run)
                _check_frame_size(frame.width, frame.height, p)
                if frame.pts is None:
                    continue
                t = float(frame.pts * time_base) - start
                # damage the decoder patched over: smeared blocks read as novel
                if frame.is_corrupt:
                    if in_tail(t):
                        continue  # the last frame of a file cut short: left out, not refused
                    raise VideoOpenError(f"{p}: corrupt video data near {max(t, 0):.1f} s (a damaged "
                                         "frame); repair or re-encode the file")  # fmt: skip
                while t >= target - 1e-6:  # this is the first frame at or after the target
                    if (
                        previous is not None
                        and previous[0] > last_emitted
                        and t - target > every / 2
                        and target - previous[0] < t - target
                    ):  # a gap: the frame before the target is nearer
                        yield _sampled(*previous, max_side, sar)
                        last_emitted, previous = previous[0], None
                        target += every
                        continue
                    yield _sampled(t, frame, max_side, sar)
                    last_emitted = t
                    target = max(target + every, (np.floor(t / every + 1e-9) + 1) * every)
                    break
                else:
                    previous = (t, frame)
    except av.FFmpegError as exc:
        short, surely = cut_off()
        if decoded_any and in_tail(demuxed_until) and short:
            return  # a file cut off in its last frames: the frames before them are all there is
        if short and surely and expected_end > 0:  # seconds lost, not a frame: named as a cut
            raise VideoOpenError(
                f"{p}: truncated video, data ends near {max(demuxed_until, 0):.1f} s of "
                f"{expected_end:.1f} s ({_reason(exc)}); repair or re-encode the file"
            ) from None
        raise VideoOpenError(
            f"{p}: corrupt video data near {max(demuxed_until, 0):.1f} s ({_reason(exc)}); "
            "repair or re-encode the file"
        ) from None
    if not decoded_any:
        raise VideoOpenError(f"{p}: the video stream contains no decodable frames")
    if expected_end > 0 and demuxed_until < expected_end - max(2.0, 0.1 * expected_end):
        raise VideoOpenError(
            f"{p}: truncated video, data ends at {max(demuxed_until, 0):.1f} s of "
            f"{expected_end:.1f} s; repair or re-encode the file"
        )
