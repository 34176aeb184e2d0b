"""Frame sampling: times by presentation time (CFR, VFR, delayed start), rotation, every bad file."""

from __future__ import annotations

import av
import numpy as np
import pytest

from capsight.errors import InputNotFound, InvalidParameter, VideoOpenError
from capsight.io.synthetic_video import write_video
from capsight.io.video import probe_video, sample_frames


def _frames(n: int, h: int = 48, w: int = 64, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [(rng.random((h, w, 3)) * 255).astype(np.uint8) for _ in range(n)]


def _times(path, every, **kw) -> list[float]:
    return [round(f.time, 3) for f in sample_frames(path, every, **kw)]


@pytest.fixture(scope="module")
def cfr_video(tmp_path_factory):
    """5 s at 10 fps, 64x48."""
    path = tmp_path_factory.mktemp("video") / "cfr.mp4"
    write_video(path, _frames(50), fps=10)
    return path


def test_probe_reads_duration_rate_and_size(cfr_video):
    info = probe_video(cfr_video)
    assert (info.width, info.height, info.rotation) == (64, 48, 0)
    assert info.fps == pytest.approx(10)
    assert info.duration == pytest.approx(5.0, abs=0.11)
    assert info.start_time == 0


@pytest.mark.parametrize(
    ("every", "expected"),
    [(1.0, [0, 1, 2, 3, 4]), (0.5, [0, 0.5, 1, 1.5, 2, 2.5, 3, 3.5, 4, 4.5]), (2.5, [0, 2.5])],
)
def test_cfr_one_frame_per_every_seconds(cfr_video, every, expected):
    assert _times(cfr_video, every) == expected


@pytest.mark.parametrize("every", [0.03, 1e-320])  # 1e-320 overflowed the target arithmetic
def test_every_smaller_than_a_frame_gives_each_frame_once(cfr_video, every):
    times = _times(cfr_video, every)
    assert len(times) == 50 and times == sorted(set(times))


def test_frames_are_rgb_and_downscaled_to_max_side(cfr_video):
    frame = next(iter(sample_frames(cfr_video, 1.0, max_side=32)))
    assert frame.image.mode == "RGB" and frame.image.size == (32, 24)


def test_lean_decode_gives_the_same_moments_and_pixels(tmp_path):
    """lean=True (one-core slice threads) samples the same frames, decoded the same."""
    rng = np.random.default_rng(3)
    base = (rng.random((90, 160, 3)) * 255).astype(np.uint8)
    frames = [np.roll(base, 2 * i, axis=1) for i in range(60)]  # a panning shot, 6 s at 10 fps
    path = tmp_path / "pan.mp4"
    write_video(path, frames, fps=10)
    full = list(sample_frames(path, 1.0))
    lean = list(sample_frames(path, 1.0, lean=True))
    assert [f.time for f in lean] == [f.time for f in full] == [0, 1, 2, 3, 4, 5]
    for a, b in zip(full, lean, strict=True):
        assert np.array_equal(np.asarray(a.image), np.asarray(b.image))


def test_vfr_uses_presentation_times_and_nearest_frame_across_gaps(tmp_path):
    times = [0.0, 0.1, 0.2, 0.9, 1.6, 1.65, 3.0, 3.1, 3.2]
    path = tmp_path / "vfr.mp4"
    write_video(path, _frames(len(times)), fps=10, times=times)
    # target 1: first frame >= 1 is 1.6, but 0.9 is nearer; target 2: 1.65 beats 3.0; target 3: 3.0
    assert _times(path, 1.0) == [0.0, 0.9, 1.65, 3.0]


def test_a_sparse_stretch_of_vfr_video_with_b_frames_keeps_every_target(tmp_path, monkeypatch):
    """30 fps, then 2 fps (frames at x.25 and x.75), then 30 fps again, with B-frames: the
    frames nearest the targets in the sparse stretch are B-frames farther from them than the
    file's average frame duration, and were skipped undecoded (targets 7-13 s got no frame)."""
    from fractions import Fraction

    from av.video.frame import PictureType

    from capsight.io import video

    times = [k / 30 for k in range(150)] + [5.25 + k / 2 for k in range(20)]
    times += [15 + k / 30 for k in range(60)]
    base = (np.random.default_rng(4).random((48, 320, 3)) * 255).astype(np.uint8)
    path, time_base = tmp_path / "vfr_b.mp4", Fraction(1, 1000)
    with av.open(str(path), "w") as out:  # B-frames in a fixed pattern, none of them a reference
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.time_base = stream.codec_context.time_base = time_base
        stream.options = {"preset": "veryfast", "x264-params": "bframes=3:b-adapt=0:b-pyramid=none"}
        for i, t in enumerate(times):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(base[:, i : i + 64]), "rgb24")
            frame.pts, frame.time_base = round(t * 1000), time_base
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with av.open(str(path)) as container:  # (the encoder did make B-frames)
        assert PictureType.B in {f.pict_type for f in container.decode(video=0)}
    got = _times(path, 1.0)
    monkeypatch.setattr(video, "_DECODE_MARGIN_FRAMES", 1e9)  # decode every frame
    assert got == _times(path, 1.0)
    assert got == [0, 1, 2, 3, 4] + [k + 0.25 for k in range(5, 15)] + [15, 16]


def test_delayed_start_times_count_from_the_first_frame(tmp_path):
    path = tmp_path / "late.mp4"
    write_video(path, _frames(30), fps=10, times=[1.5 + i / 10 for i in range(30)])
    info = probe_video(path)
    assert info.start_time == pytest.approx(1.5, abs=0.01)
    assert _times(path, 1.0) == [0, 1, 2]


def test_rotation_metadata_turns_frames_upright(tmp_path):
    frame = np.zeros((40, 80, 3), np.uint8)
    frame[:10, :10] = (255, 0, 0)  # red block in the stored frame's top-left corner
    path = tmp_path / "rotated.mp4"
    write_video(path, [frame] * 10, fps=10, rotation=-90)  # display: a quarter turn clockwise
    info = probe_video(path)
    assert (info.width, info.height, info.rotation) == (40, 80, 90)
    image = next(iter(sample_frames(path, 1.0))).image
    assert image.size == (40, 80)
    pixels = np.asarray(image)  # (80, 40, 3): top-left went to the top-right corner
    assert pixels[2, -3, 0] > 200 and pixels[2, 2, 0] < 60


def test_non_square_pixels_are_stretched_to_the_display_shape(tmp_path):
    # an anamorphic stream (sample aspect ratio 2:1) stored 64x48 is shown 128x48 by players
    from fractions import Fraction

    path = tmp_path / "anamorphic.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.sample_aspect_ratio = Fraction(2, 1)
        for i, pixels in enumerate(_frames(10)):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts = i
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    info = probe_video(path)
    assert (info.width, info.height) == (128, 48)
    assert next(iter(sample_frames(path, 1.0))).image.size == (128, 48)
    assert next(iter(sample_frames(path, 1.0, max_side=64))).image.size == (64, 24)


def test_frame_count_is_bounded_by_duration_over_every(tmp_path):
    path = tmp_path / "long.mp4"
    write_video(path, _frames(120, 16, 16), fps=12)  # 10 s
    assert len(list(sample_frames(path, 1.0))) == 10
    assert len(list(sample_frames(path, 3.0))) == 4


@pytest.mark.parametrize("every", [0, -1, float("nan")])
def test_every_must_be_positive(cfr_video, every):
    with pytest.raises(InvalidParameter):
        list(sample_frames(cfr_video, every))


# ---------------------------------------------------------------- bad input


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, cfr_video):
    d = tmp_path_factory.mktemp("bad")
    data = cfr_video.read_bytes()
    (d / "half.mp4").write_bytes(data[: len(data) // 2])  # index (moov) at the end is lost
    # Cut inside that index: the video stream is listed, its codec's parameters are not (an
    # AttributeError traceback, and a 500 from the server).
    cut = _cut_without_codec(d / "no_codec.mp4", data)
    if cut is None:  # (this FFmpeg finds the codec, or nothing, at every cut)
        (d / "no_codec.mp4").unlink()
    else:
        (d / "no_codec.mp4").write_bytes(data[:cut])
    broken = bytearray(data)
    mid = len(broken) // 2
    broken[mid : mid + 2000] = np.random.default_rng(1).integers(0, 256, 2000, np.uint8).tobytes()
    (d / "garbage.mp4").write_bytes(bytes(broken))
    # Index first (faststart), then cut: opens fine, data stops half way.
    with (
        av.open(str(cfr_video)) as src,
        av.open(str(d / "fast.mp4"), "w", options={"movflags": "faststart"}) as dst,
    ):
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = out
                dst.mux(packet)
    fast = (d / "fast.mp4").read_bytes()
    (d / "fast_half.mp4").write_bytes(fast[: len(fast) // 2])
    from PIL import Image

    Image.fromarray(_frames(1)[0]).save(d / "photo.jpg")
    (d / "notes.txt").write_text("not a video\n" * 50)
    (d / "notes.jpg").write_text("not a photo either\n" * 50)  # FFmpeg goes by the name here
    (d / "notes.md").write_text("# Notes\n\n" + "a line of notes\n" * 50)  # FFmpeg: invalid data
    (d / "paper.mp4").write_bytes(b"%PDF-1.4\n" + bytes(range(256)) * 8)
    (d / "empty.mp4").write_bytes(b"")
    (d / "folder.mp4").mkdir()
    _write_audio(d / "audio.m4a", video_track=False)
    _write_audio(d / "no_frames.mkv", video_track=True)  # a video track with zero frames
    _write_song_with_cover(d / "song.mp3")
    return d


def _write_song_with_cover(path) -> None:
    """An MP3 with album art in its ID3 tag, which FFmpeg shows as a one-frame MJPEG "video"
    stream (disposition attached_pic)."""
    import io
    import struct

    from PIL import Image

    song = io.BytesIO()
    with av.open(song, "w", format="mp3") as out:
        audio = out.add_stream("mp3", rate=44100)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1152), np.float32), "fltp", "mono")
            frame.sample_rate, frame.pts = 44100, i * 1152
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in audio.encode():
            out.mux(packet)
    mp3 = song.getvalue()
    if mp3[:3] == b"ID3":  # the muxer's own tag: dropped for ours
        size = mp3[6:10]
        mp3 = mp3[10 + ((size[0] << 21) | (size[1] << 14) | (size[2] << 7) | size[3]) :]
    cover = io.BytesIO()
    Image.fromarray(_frames(1, 64, 64)[0]).save(cover, "JPEG")
    body = b"\x00image/jpeg\x00\x03cover\x00" + cover.getvalue()
    apic = b"APIC" + struct.pack(">I", len(body)) + b"\x00\x00" + body
    n = len(apic)
    tag_size = bytes([(n >> 21) & 127, (n >> 14) & 127, (n >> 7) & 127, n & 127])
    path.write_bytes(b"ID3\x03\x00\x00" + tag_size + apic + mp3)


def _cut_without_codec(scratch, data: bytes) -> int | None:
    for cut in range(len(data) - 1, len(data) - 4000, -7):
        scratch.write_bytes(data[:cut])
        try:
            with av.open(str(scratch), metadata_errors="ignore") as container:
                if container.streams.video and container.streams.video[0].codec_context is None:
                    return cut
        except av.FFmpegError:
            pass
    return None


def _write_audio(path, video_track: bool) -> None:
    with av.open(str(path), "w") as out:
        if video_track:
            video = out.add_stream("libx264", rate=10)
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = out.add_stream("aac", rate=16000)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in audio.encode():
            out.mux(packet)


@pytest.mark.parametrize(
    ("name", "error", "words"),
    [
        ("missing.mp4", InputNotFound, "no such file"),
        ("folder.mp4", InputNotFound, "directory"),
        ("empty.mp4", InputNotFound, "empty"),
        ("photo.jpg", VideoOpenError, "still image"),
        ("notes.txt", VideoOpenError, "not a video"),
        ("notes.jpg", VideoOpenError, "not a readable video, nor an image"),
        ("notes.md", VideoOpenError, "not a video (it looks like text)"),
        ("paper.mp4", VideoOpenError, "not a video (it looks like a PDF)"),
        ("half.mp4", VideoOpenError, "truncated"),
        ("no_codec.mp4", VideoOpenError, "names no codec); the file may be truncated"),
        ("audio.m4a", VideoOpenError, "no video stream"),
        ("song.mp3", VideoOpenError, "no video stream (it is an audio file with a cover picture)"),
        ("no_frames.mkv", VideoOpenError, "no frames (a video cut short can look so"),
    ],
)
def test_bad_files_fail_on_probe_with_one_clear_line(bad_files, name, error, words):
    if name == "no_codec.mp4" and not (bad_files / name).exists():
        pytest.skip("no cut of this FFmpeg's MP4 index leaves a video stream without its codec")
    with pytest.raises(error) as info:
        probe_video(bad_files / name)
    message = str(info.value)
    assert words in message and "\n" not in message and name in message


@pytest.mark.parametrize(
    ("name", "words"), [("garbage.mp4", "corrupt"), ("fast_half.mp4", "truncated")]
)
def test_damage_inside_the_stream_fails_while_sampling(bad_files, name, words):
    with pytest.raises(VideoOpenError, match=words):
        list(sample_frames(bad_files / name, 1.0))


# ---------------------------------------------------------------- real clips


def test_real_rotated_clip_is_portrait(shared_data):
    path = shared_data / "videos" / "pyscenedetect__issue-134-rotate.mp4"
    info = probe_video(path)
    assert (info.width, info.height, info.rotation) == (544, 1280, 90)
    frame = next(iter(sample_frames(path, 5.0, max_side=128)))
    assert frame.image.size == (54, 128)


def test_real_anamorphic_clip_has_its_display_shape(shared_data):
    # stored 340x256 with a 1024:765 sample aspect ratio: a 16:9 picture
    path = shared_data / "videos" / "mmaction2__tests_data_test.mp4"
    info = probe_video(path)
    assert (info.width, info.height) == (455, 256)
    assert next(iter(sample_frames(path, 5.0, max_side=160))).image.size == (160, 90)


def test_real_delayed_start_clip_starts_at_zero(shared_data):
    path = shared_data / "videos" / "pyscenedetect__delayed_start.mp4"
    info = probe_video(path)
    assert info.start_time == pytest.approx(1.075)
    # 25 fps from 1.075 s: frames at 0.00, 0.04, ... from the start; first ones >= each target
    assert _times(path, 0.25) == [0.0, 0.28, 0.52, 0.76]


@pytest.mark.parametrize("lean", [False, True], ids=["frame threads", "slice threads"])
def test_damage_the_decoder_would_conceal_is_refused(shared_data, tmp_path, lean):
    """Garbled bytes mid-stream that H.264 patches over (smeared frames, which read as a novel
    moment) are refused, naming where: the decoder is told to fail on them."""
    data = bytearray((shared_data / "videos" / "pyscenedetect__testvideo.mp4").read_bytes())
    mid = len(data) // 2
    data[mid : mid + 20000] = np.random.default_rng(0).integers(0, 256, 20000, np.uint8).tobytes()
    broken = tmp_path / "garbled.mp4"
    broken.write_bytes(bytes(data))
    with pytest.raises(VideoOpenError, match=r"garbled.mp4: corrupt video data near 1\d\.\d s"):
        list(sample_frames(broken, 1.0, max_side=64, lean=lean))


def test_a_file_cut_mid_group_of_pictures_is_not_refused(tmp_path):
    """A file that starts on a frame whose references were cut away (a packet-level cut) plays:
    the decoder drops those frames, and none of the frames it gives is damaged. (FFmpeg's
    err_detect=explode, tried first, refused it: "mmco: unref short failure".)"""
    whole = tmp_path / "whole.mp4"
    with av.open(str(whole), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.options = {"bf": "3", "preset": "medium", "b-pyramid": "normal"}
        x, rng = np.arange(160)[None, :], np.random.default_rng(0)
        for i in range(60):  # a drifting gradient with a bar moving across, and some noise
            rgb = np.zeros((120, 160, 3), np.uint8)
            rgb[..., 0], rgb[..., 1] = (x + 3 * i) % 256, (np.arange(120)[:, None] * 2 + i) % 256
            rgb[30:60, (7 * i) % 140 : (7 * i) % 140 + 20] = 255
            rgb += rng.integers(0, 20, rgb.shape, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    cut = tmp_path / "cut.mp4"
    with av.open(str(whole)) as src, av.open(str(cut), "w") as dst:
        out = dst.add_stream_from_template(src.streams.video[0])
        for packet in [p for p in src.demux(src.streams.video[0]) if p.dts is not None][7:]:
            packet.stream = out
            dst.mux(packet)
    assert len(list(sample_frames(cut, 0.5))) >= 2  # from the next keyframe on


def test_a_damaged_last_frame_of_a_file_cut_short_is_left_out(tmp_path):
    """A recording cut off mid-frame ends on a damaged frame: that frame is dropped, the
    video analysed (damage earlier on is refused: above)."""
    whole = tmp_path / "whole.ts"
    write_video(whole, _frames(60, 120, 160), fps=25)
    cut = tmp_path / "cut.ts"
    cut.write_bytes(whole.read_bytes()[:-3000])
    times = _times(cut, 0.5)
    assert times[0] == 0.0 and times[-1] >= 2.0


def test_an_indexed_file_cut_off_in_its_last_frame_is_analysed(tmp_path):
    """Index first (faststart), its last bytes lost: the decoder errors on the last packet
    instead of marking a frame damaged; the frames before it are the video."""
    from importlib.resources import files

    sample = files("capsight.data").joinpath("sample.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(sample[:-200])
    assert probe_video(cut).duration == pytest.approx(26.0, abs=0.1)  # the index still says 26 s
    times = _times(cut, 1.0)
    assert times[0] == 0.0 and times[-1] == pytest.approx(25.0, abs=0.1)
    earlier = tmp_path / "earlier.mp4"
    earlier.write_bytes(sample[:-60000])  # seconds lost, not a frame: refused, not shortened
    cut_short = r"earlier.mp4: truncated video, data ends near \d+\.\d s of 26\.0 s \("
    with pytest.raises(VideoOpenError, match=cut_short):  # it had said "corrupt video data"
        _times(earlier, 1.0)
    # Whole, but damaged in its last frames: refused. (Decoding on threads reports damage frames
    # late, so where demuxing had got to would call any damage near the end a cut.)
    with av.open(str(files("capsight.data").joinpath("sample.mp4"))) as whole:
        last = [p for p in whole.demux(whole.streams.video[0]) if p.size][-3]
        damaged = bytearray(sample)
        damaged[last.pos : last.pos + 4] = b"\xff" * 4
    (tmp_path / "damaged.mp4").write_bytes(bytes(damaged))
    with pytest.raises(VideoOpenError, match="corrupt video data near"):
        _times(tmp_path / "damaged.mp4", 1.0)


def test_frames_over_64_megapixels_are_refused_before_they_are_decoded(cfr_video, monkeypatch):
    """A 6 MB clip of 121-megapixel MJPEG frames took 400 MB to sample."""
    import capsight.io.video as video
    from capsight.errors import VideoOpenError

    decoded = []
    real_first = video._first_frame
    monkeypatch.setattr(video, "_first_frame", lambda *a: decoded.append(1) or real_first(*a))
    monkeypatch.setattr(video, "MAX_FRAME_PIXELS", 64 * 48 - 1)  # this clip's frames: 64x48
    with pytest.raises(
        VideoOpenError, match=r"its frames are 64x48 px, over 0 megapixels; downscale"
    ):
        video.probe_video(cfr_video)
    assert decoded == []  # told by the stream's header
    monkeypatch.setattr(video, "MAX_FRAME_PIXELS", 64 * 48)
    assert video.probe_video(cfr_video).width == 64


def test_each_sampled_frame_is_held_to_the_pixel_limit(cfr_video, monkeypatch):
    """Not the header and the first frame alone: an MJPEG stream whose later frames were 256
    megapixels had been sampled to its end (the first such frame is decoded, then refused)."""
    import capsight.io.video as video
    from capsight.errors import VideoOpenError

    monkeypatch.setattr(video, "MAX_FRAME_PIXELS", 64 * 48 - 1)
    with pytest.raises(VideoOpenError, match=r"its frames are 64x48 px, over 0 megapixels"):
        next(video.sample_frames(cfr_video, 1.0))


def _write_matroska(path, seconds: float, audio_seconds: float = 0, offset_ms: int = 0,
                    codec: str = "libx264", options: dict | None = None) -> None:  # fmt: skip
    """10 fps of 64x48 frames with millisecond timestamps from ``offset_ms``, and optionally
    silent audio; Matroska or WebM by the name (``options={"live": "1"}``: no Duration, as a
    browser's MediaRecorder writes it)."""
    from fractions import Fraction

    with av.open(str(path), "w", options=options or {}) as out:
        video = out.add_stream(codec, rate=10)
        video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = (
            out.add_stream("libopus" if codec == "libvpx" else "aac", rate=48000)
            if audio_seconds
            else None
        )
        for i, pixels in enumerate(_frames(int(seconds * 10))):
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            frame.pts, frame.time_base = offset_ms + i * 100, Fraction(1, 1000)
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        for k in range(0, int(audio_seconds * 48000), 960) if audio else ():
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 960), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 48000, k
            for packet in audio.encode(frame):
                out.mux(packet)
        for packet in audio.encode() if audio else ():
            out.mux(packet)


def test_matroska_and_webm_lengths_are_the_video_streams_own(tmp_path, monkeypatch):
    """Matroska gives its video stream no duration: the container's had been taken, which is the
    longest stream's (5 s of video beside 12 s of audio: refused as "truncated, data ends at
    5.0 s of 12.0 s"), counts a start offset (12 s from 5 s: "12.0 s of 17.0 s"), and is
    missing from a live WebM (a length of 0). A file cut short is still said to be one."""
    cases = {"audio.mkv": dict(seconds=5, audio_seconds=12), "offset.mkv": dict(seconds=12, offset_ms=5000),
             "live.webm": dict(seconds=12, codec="libvpx", options={"live": "1"}),
             "whole.mkv": dict(seconds=24, audio_seconds=24)}  # fmt: skip
    for name, made in cases.items():
        _write_matroska(tmp_path / name, **made)
        assert probe_video(tmp_path / name).duration == pytest.approx(made["seconds"], abs=0.11)
        assert _times(tmp_path / name, 1.0) == list(range(made["seconds"])), name
    from capsight.io import video

    video._measured_ends.cache_clear()
    probe_video(tmp_path / "live.webm")
    _times(tmp_path / "live.webm", 1.0)  # the probe's measure, not a second read of the file
    assert video._measured_ends.cache_info().hits == 1
    # A failure to measure (too many open files, on a busy server) is not kept for the file.
    video._measured_ends.cache_clear()
    real_open, failed = av.open, []

    def open_once_failing(*args, **kwargs):
        if not failed:
            failed.append(True)
            raise OSError(24, "Too many open files")
        return real_open(*args, **kwargs)

    monkeypatch.setattr(av, "open", open_once_failing)
    assert video._packet_ends(tmp_path / "live.webm", 0, 0.0, 0.0) == (None, 0.0)
    assert video._packet_ends(tmp_path / "live.webm", 0, 0.0, 0.0)[0] == pytest.approx(12, abs=0.11)
    monkeypatch.setattr(av, "open", real_open)
    whole = (tmp_path / "whole.mkv").read_bytes()
    (tmp_path / "cut.mkv").write_bytes(whole[: len(whole) // 2])
    with pytest.raises(
        VideoOpenError, match=r"cut.mkv: truncated video, data ends at 1\d.\d s of 24.0 s"
    ):
        _times(tmp_path / "cut.mkv", 1.0)
