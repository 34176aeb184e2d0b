"""Fixtures for the CLI tests: real photos, odd-but-valid images, bad files, tiny videos.

Everything is generated in a temp folder (photos come from scikit-image's bundled data).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from capsight._cli.main import main


@pytest.fixture
def run_cli(capsys):
    """Run ``capsight ARGS...`` in-process; return (exit status, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        try:
            status = main([str(a) for a in args])
        except SystemExit as exc:  # argparse usage errors and --help
            status = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return status, out, err

    return run


def _assert_one_error_line(err: str, *fragments: str) -> None:
    """stderr is exactly one ``capsight: error:`` line mentioning every fragment."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("capsight: error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment.lower() in lines[0].lower(), (fragment, lines[0])


@pytest.fixture
def one_error_line():
    """``one_error_line(stderr, *fragments)``: exactly one ``capsight: error:`` line, no traceback,
    mentioning every fragment (case-insensitive)."""
    return _assert_one_error_line


@pytest.fixture(scope="session")
def photo_dir(tmp_path_factory) -> Path:
    """cat.jpg (scikit-image's chelsea) and coffee.png, at a modest size."""
    from skimage import data

    folder = tmp_path_factory.mktemp("photos")
    Image.fromarray(data.chelsea()).save(folder / "cat.jpg", quality=90)
    Image.fromarray(data.coffee()).resize((300, 200)).save(folder / "coffee.png")
    return folder


@pytest.fixture(scope="session")
def odd_images(photo_dir, tmp_path_factory) -> dict[str, Path]:
    """The cat photo in every odd-but-valid form a user may hand over."""
    folder = tmp_path_factory.mktemp("odd")
    cat = Image.open(photo_dir / "cat.jpg").convert("RGB")
    paths = {}

    def save(name: str, img: Image.Image, **kwargs) -> None:
        paths[name] = folder / name
        img.save(paths[name], **kwargs)

    save("cmyk.jpg", cat.convert("CMYK"))
    grey16 = (np.asarray(cat.convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    save("grey16.png", Image.fromarray(grey16))
    save("palette.png", cat.convert("P", palette=Image.ADAPTIVE, colors=64))
    rgba = cat.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(cat.size))
    save("alpha.png", rgba)
    save("grey.jpg", cat.convert("L"))
    # Stored lying on its side, with EXIF orientation 6 ("rotate 90 clockwise to display").
    exif = Image.Exif()
    exif[0x0112] = 6
    save("exif_rotated.jpg", cat.rotate(90, expand=True), exif=exif.tobytes())
    return paths


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


@pytest.fixture(scope="session")
def bad_files(photo_dir, tmp_path_factory) -> dict[str, Path]:
    """Files no image or video reader should accept."""
    folder = tmp_path_factory.mktemp("bad")
    files = {
        "empty": folder / "empty.jpg",
        "text": folder / "notes.txt",
        "truncated_image": folder / "truncated.jpg",
        "random_bytes": folder / "noise.mp4",
        "bomb": folder / "bomb.png",
        "directory": folder / "a_folder",
    }
    files["empty"].write_bytes(b"")
    files["text"].write_text("these are notes, not pixels\n" * 20)
    files["truncated_image"].write_bytes((photo_dir / "cat.jpg").read_bytes()[:3000])
    files["random_bytes"].write_bytes(np.random.default_rng(0).bytes(50_000))
    # A real PNG header claiming 30000 x 30000 pixels (900 megapixels) with a tiny body.
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    files["bomb"].write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 30001 * 4))
        + _png_chunk(b"IEND", b"")
    )
    files["directory"].mkdir()
    return files


def write_video(path: Path, frames: list[np.ndarray], fps: int = 10) -> Path:
    """Encode RGB frames (H, W, 3) as H.264 in an mp4."""
    import av

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.fixture(scope="session")
def tiny_video(photo_dir, tmp_path_factory) -> Path:
    """4 s at 10 fps, 160x96: two seconds of the cat, then a hard cut to the coffee."""
    folder = tmp_path_factory.mktemp("video")
    cat = np.asarray(Image.open(photo_dir / "cat.jpg").convert("RGB").resize((160, 96)))
    cup = np.asarray(Image.open(photo_dir / "coffee.png").convert("RGB").resize((160, 96)))
    return write_video(folder / "tiny.mp4", [cat] * 20 + [cup] * 20)


@pytest.fixture(scope="session")
def broken_videos(tiny_video, tmp_path_factory) -> dict[str, Path]:
    import av

    folder = tmp_path_factory.mktemp("broken_video")
    whole = tiny_video.read_bytes()
    truncated = folder / "truncated.mp4"
    truncated.write_bytes(whole[: len(whole) // 2])  # the index (moov) sits at the end: gone
    audio_only = folder / "audio_only.mp4"
    with av.open(str(audio_only), "w") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for i in range(16):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 16000, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    corrupt = folder / "corrupt.mp4"
    # The container's header and index intact, every coded frame between them replaced by noise.
    noisy = bytearray(whole)
    data_start, index_start = whole.find(b"mdat") + 4, whole.find(b"moov") - 4
    assert 0 < data_start < index_start, "expected mdat before moov in PyAV's mp4"
    noisy[data_start:index_start] = np.random.default_rng(1).bytes(index_start - data_start)
    corrupt.write_bytes(bytes(noisy))
    return {"truncated": truncated, "audio_only": audio_only, "corrupt": corrupt}
