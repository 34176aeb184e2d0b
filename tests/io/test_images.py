"""load_image: every odd-but-valid image becomes RGB; every bad file a CapsightError saying why."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from capsight.errors import CapsightError, ImageLoadError, InputNotFound
from capsight.io.images import MAX_IMAGE_PIXELS, full_size, load_image


def encoded(img: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


def rgb(source: bytes | Path) -> np.ndarray:
    img = load_image(source)
    assert img.mode == "RGB"
    return np.asarray(img).astype(int)  # (H, W, 3)


# Odd but valid images ------------------------------------------------------------------------


def test_a_large_jpeg_is_decoded_at_a_smaller_scale_and_a_small_one_whole():
    """An 8000x6000 photo decoded whole took 144 MB, and a batch of 32 of them 6.8 GB."""
    gradient = np.linspace(0, 255, 4096, dtype=np.uint8)[None, :, None].repeat(2100, 0).repeat(3, 2)
    big = load_image(encoded(Image.fromarray(gradient), "JPEG"))  # (2100, 4096, 3)
    assert big.size == (2048, 1050)  # half scale: both sides still >= 1024
    assert full_size(big) == (4096, 2100)  # what the API reports as the photo's size
    turned = Image.fromarray(gradient).getexif()
    turned[0x0112] = 6  # EXIF orientation: a quarter turn
    upright = load_image(encoded(Image.fromarray(gradient), "JPEG", exif=turned))
    assert upright.size == (1050, 2048) and full_size(upright) == (2100, 4096)
    assert abs(int(np.asarray(big)[500, 1024, 0]) - 127) <= 3  # the same picture, smaller
    assert load_image(encoded(Image.fromarray(gradient[:, :2000]), "JPEG")).size == (2000, 2100)
    # Other kinds are decoded whole, then reduced: a server kept 16 such photos of a request.
    png = load_image(encoded(Image.fromarray(gradient), "PNG"))
    assert png.size == (2048, 1050) and full_size(png) == (4096, 2100)
    assert abs(int(np.asarray(png)[500, 1024, 0]) - 127) <= 3
    upright = load_image(encoded(Image.fromarray(gradient), "PNG", exif=turned))
    assert upright.size == (1050, 2048) and full_size(upright) == (2100, 4096)
    assert load_image(encoded(Image.fromarray(gradient[:, :2000]), "PNG")).size == (2000, 2100)


def test_sixteen_bit_grey_keeps_its_levels():
    levels = np.array([[0, 1024, 4095, 2048]], np.uint16)  # 12-bit data in a 16-bit file
    arr = rgb(encoded(Image.fromarray(levels), "PNG"))
    assert arr[0, :, 0].tolist() == [0, 64, 255, 128]


def test_grey_becomes_equal_channels():
    arr = rgb(encoded(Image.new("L", (4, 3), 77), "PNG"))
    assert arr.shape == (3, 4, 3) and (arr == 77).all()


def test_one_bit_image():
    img = Image.new("1", (8, 8), 0)
    img.putpixel((0, 0), 1)
    arr = rgb(encoded(img, "PNG"))
    assert arr[0, 0].tolist() == [255, 255, 255] and arr[1, 1].tolist() == [0, 0, 0]


def test_palette_keeps_colours():
    img = Image.new("P", (2, 1))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putpixel((1, 0), 1)
    arr = rgb(encoded(img, "PNG"))
    assert arr[0, 0].tolist() == [255, 0, 0] and arr[0, 1].tolist() == [0, 0, 255]


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_transparency_composited_on_white(fmt):
    img = Image.new("P", (2, 1))
    img.putpalette([0, 0, 0, 0, 128, 0] + [0] * 762)  # index 0 black (transparent), 1 green
    img.putpixel((1, 0), 1)
    arr = rgb(encoded(img, fmt, transparency=0))
    assert arr[0, 0].tolist() == [255, 255, 255]
    assert arr[0, 1].tolist() == [0, 128, 0]


def test_rgba_alpha_composited_on_white():
    img = Image.new("RGBA", (3, 1))
    img.putdata([(255, 0, 0, 0), (0, 0, 255, 255), (0, 0, 0, 128)])
    arr = rgb(encoded(img, "PNG"))
    assert arr[0, 0].tolist() == [255, 255, 255]  # fully transparent red -> white
    assert arr[0, 1].tolist() == [0, 0, 255]  # opaque blue stays
    assert np.abs(arr[0, 2] - 127).max() <= 1  # half-transparent black -> mid grey


def test_grey_with_alpha():
    img = Image.new("LA", (2, 1))
    img.putdata([(0, 0), (0, 255)])
    arr = rgb(encoded(img, "PNG"))
    assert arr[0, 0].tolist() == [255, 255, 255] and arr[0, 1].tolist() == [0, 0, 0]


def test_cmyk_jpeg():
    img = Image.new("CMYK", (16, 16), (0, 0, 0, 0))  # no ink: white
    img.paste((0, 255, 255, 0), (0, 0, 8, 16))  # magenta + yellow: red
    arr = rgb(encoded(img, "JPEG", quality=95))
    assert (arr[:, 12:] > 235).all()
    assert arr[4, 2, 0] > 200 and arr[4, 2, 1] < 60 and arr[4, 2, 2] < 60


def test_sixteen_bit_grey_png_uses_full_range():
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    source = encoded(Image.fromarray(values), "PNG")
    assert Image.open(io.BytesIO(source)).mode in ("I;16", "I")
    assert rgb(source)[0, :, 0].tolist() == [0, 128, 255]


def test_dark_sixteen_bit_photo_stays_dark():
    """A 16-bit value of 200 is nearly black, not white (it once was stretched to 254)."""
    dark = np.full((4, 4), 200, dtype=np.uint16)
    darker = np.full((4, 4), 300, dtype=np.uint16)
    assert rgb(encoded(Image.fromarray(dark), "PNG")).max() <= 1
    assert rgb(encoded(Image.fromarray(darker), "PNG")).max() <= 2


@pytest.mark.parametrize("bits", [10, 12, 14])
def test_fewer_bits_in_a_sixteen_bit_file_use_their_own_range(bits):
    """12-bit camera or scanner data in a 16-bit PNG is a photo, not a near-black one."""
    top = 2**bits - 1
    values = np.array([[0, (top + 1) // 2, top]], dtype=np.uint16)
    assert rgb(encoded(Image.fromarray(values), "PNG"))[0, :, 0].tolist() == [0, 128, 255]


@pytest.mark.parametrize("values", [[1000, 1100, 1200], [3000, 3500, 4000], [0, 100, 1500]])
def test_values_that_do_not_fill_a_narrower_range_keep_the_sixteen_bit_meaning(values):
    """Too narrow a span, or not reaching the upper half of any narrower range: a dim image."""
    grey = rgb(encoded(Image.fromarray(np.array([values], dtype=np.uint16)), "PNG"))
    assert grey.max() == round(max(values) * 255 / 65535)


def test_thirty_two_bit_integer_outside_sixteen_bits_is_stretched():
    values = np.array([[-1000, 0, 3_000_000]], dtype=np.int32)
    source = encoded(Image.fromarray(values), "TIFF")
    assert Image.open(io.BytesIO(source)).mode == "I"
    grey = rgb(source)[0, :, 0]
    assert grey[0] == 0 and grey[2] == 255 and 0 <= grey[1] <= 1


def test_float_image_in_unit_range():
    values = np.array([[0.0, 0.5, 1.0], [0.5, 0.5, np.nan]], dtype=np.float32)
    source = encoded(Image.fromarray(values), "TIFF")
    assert Image.open(io.BytesIO(source)).mode == "F"
    grey = rgb(source)[..., 0]
    assert grey[0].tolist() == [0, 128, 255]
    assert grey[1, 2] == 0  # NaN -> black, not garbage


def test_exif_orientation_is_applied(tmp_path):
    img = Image.new("RGB", (40, 20), "blue")
    img.paste((255, 0, 0), (0, 0, 10, 10))  # red corner at the top left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    path = tmp_path / "rotated.jpg"
    img.save(path, "JPEG", exif=exif.tobytes(), quality=95)
    loaded = load_image(path)
    assert loaded.size == (20, 40)  # width and height swap
    arr = np.asarray(loaded).astype(int)
    assert arr[2, 17, 0] > 200 and arr[2, 17, 2] < 60  # top-left corner went to the top right
    assert arr[2, 2, 2] > 200  # the top left is blue now


def test_bytes_and_path_give_the_same_image(tmp_path):
    source = encoded(Image.new("RGB", (5, 5), (10, 200, 30)), "PNG")
    path = tmp_path / "x.png"
    path.write_bytes(source)
    assert np.array_equal(rgb(source), rgb(path))


# Bad input -------------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(InputNotFound, match="nope.jpg: no such file"):
        load_image(tmp_path / "nope.jpg")


def test_directory(tmp_path):
    """A Python caller is told how to name a folder's files (the CLI expands folders itself)."""
    with pytest.raises(InputNotFound, match=r"is a directory, expected a file; name the files "
                                            r"in it, e.g. sorted\(Path\("):  # fmt: skip
        load_image(tmp_path)
    for name in ("a.mp4", "b.MP4", "n1.txt", "n2.txt", "n3.txt"):  # videos: their own kind
        (tmp_path / name).write_bytes(b"x")
    with pytest.raises(InputNotFound, match=r"glob\('\*\.mp4'\)\)$"):  # (it said '*.jpg')
        load_image(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.touch()
    # an ImageLoadError, as empty bytes are: code that skips unreadable photos by it had
    # stopped at an empty file (an audit, 2026-12-08)
    with pytest.raises(ImageLoadError, match="empty.png: file is empty"):
        load_image(path)
    with pytest.raises(ImageLoadError, match="upload.png: file is empty"):
        load_image(b"", name="upload.png")


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.jpg"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(
        ImageLoadError,
        match=r"noise.jpg: not an image file.*\(it looks like binary data of an unknown type\).*JPEG or PNG",
    ):
        load_image(path)


def test_text_file_named_like_an_image(tmp_path):
    with pytest.raises(ImageLoadError, match=r"notes.png: not an image.*\(it looks like text\)"):
        load_image(b"just some words, not pixels\n" * 20, name="notes.png")
    pdf = tmp_path / "scan.jpg"
    pdf.write_bytes(b"%PDF-1.7\n" + b"x" * 100)
    with pytest.raises(ImageLoadError, match=r"scan.jpg: not an image.*\(it looks like a PDF\)"):
        load_image(pdf)


def test_what_an_unreadable_file_looks_like_leads_to_the_right_advice(tmp_path):
    clip = tmp_path / "clip.jpg"  # a video named as a photo
    clip.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 200)
    with pytest.raises(
        ImageLoadError, match="clip.jpg: is a video, not an image; use `capsight video`"
    ):
        load_image(clip)
    notes = tmp_path / "notes.mp4"  # text named as a video: what it is, not what its name says
    notes.write_text("hello")
    with pytest.raises(
        ImageLoadError, match=r"notes.mp4: not an image file.*\(it looks like text\)"
    ):
        load_image(notes)
    zeros = tmp_path / "partial.mp4"  # an unfinished download: zeros are no text
    zeros.write_bytes(b"\x00" * 4096)
    with pytest.raises(ImageLoadError, match="partial.mp4: is a video, not an image"):
        load_image(zeros)
    odd = tmp_path / "odd.mp4"  # bytes that say nothing: the name decides
    odd.write_bytes(bytes(range(1, 200)))
    with pytest.raises(ImageLoadError, match="odd.mp4: is a video, not an image"):
        load_image(odd)
    heif = b"\x00\x00\x00\x18ftypheic" + b"\x00" * 200  # a format Pillow cannot decode here
    with pytest.raises(
        ImageLoadError, match="photo.heic: starts like a HEIF image but cannot be read"
    ):
        load_image(heif, name="photo.heic")
    cut_text = ("é" * 300).encode()[:511]  # the sniffed head ends inside a character
    with pytest.raises(ImageLoadError, match=r"\(it looks like text\)"):
        load_image(cut_text, name="notes.png")


def test_damaged_exif_data_warns_nothing(tmp_path):
    """Pillow warned "Truncated File Read" without naming the photo; the pixels are fine."""
    import warnings

    exif = Image.Exif()
    exif[0x010E] = "a description"
    for suffix in ("jpg", "png", "webp"):  # JPEG reads its EXIF on opening, the others later
        path = tmp_path / f"badexif.{suffix}"
        Image.new("RGB", (16, 16), "red").save(path, exif=exif.tobytes()[:-4])
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert load_image(path).size == (16, 16)


def test_damaged_exif_data_with_an_orientation_warns_nothing_and_turns_the_photo():
    """Turning the photo had parsed its EXIF a second time, outside the warning filter."""
    import warnings

    tiff = b"II*\x00" + struct.pack("<I", 8)
    entries = [(0x0112, 3, 1, 6), (0x010F, 2, 12, 38)]  # orientation 6; Make: 12 bytes, cut off
    ifd = struct.pack("<H", 2) + b"".join(struct.pack("<HHII", *e) for e in entries) + bytes(4)
    exif = b"Exif\x00\x00" + tiff + ifd + b"abcdefgh"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        img = load_image(encoded(Image.new("RGB", (40, 20), "red"), "JPEG", exif=exif))
    assert img.size == (20, 40) and full_size(img) == (20, 40)


def test_a_corrupt_avif_is_an_image_load_error():
    """libavif raises RuntimeError ("Failed to decode image"), which stopped a whole folder."""
    from PIL import features

    if not features.check("avif"):
        pytest.skip("this Pillow has no AVIF codec")
    data = bytearray(encoded(Image.new("RGB", (32, 32), "red"), "AVIF"))
    data[data.index(b"iinf") + 1] = ord("X")  # the item information box, renamed
    with pytest.raises(ImageLoadError, match="^bad.avif: "):
        load_image(bytes(data), name="bad.avif")


def test_a_colour_key_is_transparency_composited_on_white():
    """A PNG's tRNS colour key in RGB and grey images (only a palette's had been honoured)."""
    for mode, key, other in (("RGB", (0, 0, 0), (9, 200, 9)), ("L", 0, 90)):
        img = Image.new(mode, (2, 1), key)
        img.putpixel((1, 0), other)
        arr = rgb(encoded(img, "PNG", transparency=key))
        assert arr[0, 0].tolist() == [255, 255, 255]
        assert arr[0, 1].tolist() == (list(other) if mode == "RGB" else [90] * 3)


def test_a_colour_key_left_on_an_image_made_rgb_in_python_is_not_transparency():
    """Pillow keeps a GIF's transparency key on the image `.convert("RGB")` gives back, whose
    pixels of that colour are all opaque: they had all turned white."""
    from capsight.io.image_inputs import as_rgb_image

    img = Image.new("P", (2, 1))
    img.putpalette([0, 0, 0, 0, 0, 0] + [0] * 762)  # index 0 black (transparent), 1 black
    img.putpixel((1, 0), 1)
    flat = Image.open(io.BytesIO(encoded(img, "GIF", transparency=0))).convert("RGB")
    assert "transparency" in flat.info and flat.format is None
    assert np.asarray(as_rgb_image(flat)).reshape(-1, 3).tolist() == [[0, 0, 0], [0, 0, 0]]


def test_a_phones_jpeg_with_a_second_image_in_it_is_no_animation():
    """Pillow reads a JPEG carrying a gain map or a depth map as MPO, "animated": every such
    photo had a note saying only its first frame was described."""
    from capsight.io.images import ANIMATED

    first, second = Image.new("RGB", (32, 32), "red"), Image.new("RGB", (16, 16), "blue")
    mpo = encoded(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(mpo)).is_animated
    assert ANIMATED not in load_image(mpo).info
    gif = encoded(first, "GIF", save_all=True, append_images=[second.resize((32, 32))])
    assert load_image(gif).info[ANIMATED] == "GIF"


def test_premultiplied_alpha_images_from_python():
    from capsight.io.image_inputs import as_rgb_image

    for mode in ("La", "RGBa"):
        img = Image.new(mode, (2, 2))
        assert as_rgb_image(img).mode == "RGB"


def test_truncated_jpeg():
    noise = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    whole = encoded(Image.fromarray(noise), "JPEG", quality=90)
    for cut in (len(whole) // 2, 400):  # Pillow: "(N bytes not processed)", "Truncated File Read"
        with pytest.raises(ImageLoadError) as caught:
            load_image(whole[:cut], name="cut.jpg")
        assert str(caught.value) == ("cut.jpg: truncated image (the file ends before its pixels "
                                     "do); re-export or re-download it")  # fmt: skip


def test_broken_png_chunk():
    source = bytearray(encoded(Image.new("RGB", (32, 32), "red"), "PNG"))
    idat = source.index(b"IDAT")
    source[idat + 6 : idat + 12] = b"\x00" * 6  # damage the compressed pixels, keep the size
    with pytest.raises(ImageLoadError, match="bad.png: corrupt or truncated"):
        load_image(bytes(source), name="bad.png")


def test_oversized_image_refused_before_decoding(tmp_path):
    side = 9000  # 81 megapixels, over capsight's limit; stored in a few kB as a 1-bit PNG
    assert side * side > MAX_IMAGE_PIXELS
    path = tmp_path / "huge.png"
    Image.new("1", (side, side)).save(path, optimize=False)
    assert path.stat().st_size < 2_000_000
    with pytest.raises(ImageLoadError, match="9000x9000 is too large.*downscale"):
        load_image(path)


def test_a_108_megapixel_phone_jpeg_is_decoded_at_a_reduced_size_not_refused(tmp_path):
    """Over the limit as stored, but a JPEG decodes at 1/8 of its size for what a 2-megapixel
    photo costs: it had been refused with "downscale it first"."""
    path = tmp_path / "phone.jpg"
    Image.new("L", (12000, 9000), 128).save(path, quality=50)
    loaded = load_image(path)
    assert loaded.size == (1500, 1125) and full_size(loaded) == (12000, 9000)


@pytest.mark.parametrize("kind", ["JPEG", "MPO"])
def test_a_jpeg_over_the_limit_as_stored_passes_by_path_and_as_an_opened_image(
    tmp_path, monkeypatch, kind
):
    """The limit is held at the size a JPEG decodes at, whichever way it comes; an MPO (a
    phone's JPEG with a second picture) is a JPEG."""
    import capsight.io.images as images
    from capsight.io.image_inputs import as_rgb_image

    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 4_000_000)  # 7.2 MP stored, 1.8 decoded
    path = tmp_path / "photo.jpg"
    first = Image.new("RGB", (3000, 2400), "red")
    first.save(path, format=kind, **({"save_all": True, "append_images": [first]}
                                       if kind == "MPO" else {}))  # fmt: skip
    with Image.open(path) as opened:
        assert opened.format == kind
        assert as_rgb_image(opened).size == (1500, 1200)
    assert load_image(path).size == (1500, 1200)
    Image.new("RGB", (3000, 2400)).save(tmp_path / "photo.png")  # no draft: refused
    with pytest.raises(ImageLoadError, match="3000x2400 is too large"):
        load_image(tmp_path / "photo.png")


def _png_claiming_size(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` (Pillow's own bomb guard fires)."""
    source = bytearray(encoded(Image.new("L", (1, 1)), "PNG"))
    ihdr = source.index(b"IHDR")
    source[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(source[ihdr : ihdr + 17]))
    source[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    return bytes(source)


def test_decompression_bomb_header():
    with pytest.raises(ImageLoadError, match="bomb.png: .*too large .over 179 megapixels"):
        load_image(_png_claiming_size(40_000, 40_000), name="bomb.png")


def test_every_failure_is_a_capsight_error(tmp_path):
    """The contract the CLI and API rely on: no raw Pillow/OS exception escapes."""
    bad = [b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, b"GIF89a" + b"\xff" * 30, b"BM" + b"\x00" * 60]
    for i, source in enumerate(bad):
        with pytest.raises(CapsightError):
            load_image(source, name=f"bad{i}")


def test_a_module_another_thread_is_still_importing_is_no_answer_yet(monkeypatch):
    """Two threads' first calls: one still importing torch, the other asked whether its photo
    was a torch.Tensor and met "partially initialized module 'torch' has no attribute
    'Tensor'" (an AttributeError, not a capsight error)."""
    import sys
    import types

    from capsight.io.image_inputs import _is_tensor, is_array

    photo = Image.new("RGB", (4, 4))
    monkeypatch.setitem(sys.modules, "torch", types.ModuleType("torch"))  # no Tensor yet
    monkeypatch.setitem(sys.modules, "numpy", types.ModuleType("numpy"))  # no ndarray yet
    assert _is_tensor(photo) is False and is_array(photo) is False


@pytest.mark.parametrize("levels, decoded", [(5, (1200, 1100)), (0, (2400, 2200))])
def test_a_large_jpeg_2000_is_decoded_at_a_stored_lower_resolution(monkeypatch, levels, decoded):
    """A flat 64-megapixel JPEG 2000 of 3.7 KB took 5 s and 0.7 GB to decode whole; one that
    stores no lower resolution (a halving asked of it fails to decode) is decoded whole."""
    import capsight.io.images as images

    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (22, 24, 3), np.uint8))
    buffer = io.BytesIO()
    photo.resize((2400, 2200)).save(buffer, "JPEG2000", num_resolutions=levels + 1)
    monkeypatch.setattr(images, "_reduced", lambda img: img)  # (the decoded size, as it came)
    out = images.load_image(buffer.getvalue(), "big.jp2")
    assert out.size == decoded and out.info[images.FULL_SIZE] == (2400, 2200)


def test_a_jpeg_2000_storing_fewer_levels_than_it_could_use_is_reduced_after_decoding():
    """Its `reduce`, set to the levels it decodes at, had shadowed Image.reduce: ('int' object
    is not callable) for a valid file."""
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (21, 21, 3), np.uint8))
    buffer = io.BytesIO()
    photo.resize((4200, 4200)).save(buffer, "JPEG2000", num_resolutions=2)
    assert load_image(buffer.getvalue(), "big.jp2").size == (1050, 1050)


def test_a_link_to_nothing_and_an_eps_without_ghostscript_say_so(tmp_path, monkeypatch):
    """A link to itself had been "no such file"; an EPS without Ghostscript "corrupt or
    truncated image (Unable to locate Ghostscript on paths)" (an audit, 2026-12-08)."""
    from capsight.io.images import no_such_file

    loop = tmp_path / "loop.jpg"
    loop.symlink_to(loop)
    assert no_such_file(loop).endswith(
        "a link to nothing (its target is gone, or it leads back to itself)"
    )
    assert no_such_file(tmp_path / "absent.jpg").endswith("absent.jpg: no such file")
    from PIL import EpsImagePlugin

    monkeypatch.setattr(EpsImagePlugin, "gs_binary", False)  # as on a machine without it
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: False)
    eps = tmp_path / "figure.eps"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 48\nshowpage\n%%EOF\n")
    with pytest.raises(ImageLoadError, match="an EPS file, which needs Ghostscript"):
        load_image(eps)


def test_a_png_with_huge_text_metadata_says_so(tmp_path):
    """It had been "corrupt or truncated image (Decompressed data too large for
    PngImagePlugin.MAX_TEXT_CHUNK)" (an audit, 2026-12-08)."""
    import os

    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("comment", os.urandom(8).hex() * 200_000, zip=True)  # 3.2 MB unpacked
    Image.new("RGB", (40, 30), "red").save(tmp_path / "meta.png", pnginfo=info)
    with pytest.raises(ImageLoadError, match="meta.png: a PNG whose text metadata is too large"):
        load_image(tmp_path / "meta.png")
