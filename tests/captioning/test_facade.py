"""The public Python API: ``capsight.caption`` and friends take what users pass and refuse the
rest with a ``CapsightError``, never a TypeError from deep inside torch."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

import capsight
from capsight.captioning import facade
from capsight.captioning.options import DecodingOptions
from capsight.errors import ImageLoadError, InvalidParameter, check_count
from capsight.io import image_inputs


@pytest.mark.parametrize(
    "options, fragment",
    [
        ({"beam_width": 2.5}, "beam width must be a whole number"),
        ({"beam_width": "3"}, "beam width must be a whole number"),
        ({"method": "sample", "top_k": 2.5}, "top-k must be a whole number"),
        ({"method": "sample", "seed": "1"}, "seed must be a whole number"),
        ({"num_captions": True}, "number of captions must be a whole number"),
        ({"method": "sample", "temperature": "0.8"}, "temperature must be a number"),
        ({"method": "sample", "top_p": None}, "top-p must be a number"),
        ({"method": "sample", "temperature": 10**400}, "temperature is too large"),
        ({"length_penalty": float("nan")}, "length penalty must be a finite number"),
        ({"no_repeat_trigram": "no"}, "no repeat trigram must be True or False"),
        ({"beam_width": 3.5}, "beam width must be a whole number"),
        (
            {"max_length": 1},
            r"between 2 and 100 \(it counts the end token: 2 allows one word\), got 1",
        ),
        ({"max_length": 10**6}, r"max length must be between 2 and 100"),
        ({"length_penalty": -1}, r"length penalty must be between 0 \(none\) and 5, got -1"),
    ],
)
def test_decoding_options_of_the_wrong_type_are_refused(options, fragment):
    with pytest.raises(InvalidParameter, match=fragment):
        DecodingOptions(**options)


def test_decoding_options_accept_numpy_and_json_numbers():
    options = DecodingOptions(
        method="sample",
        beam_width=np.int64(4),
        temperature=1,
        top_p=np.float32(0.5),
        seed=np.int32(7),
    )
    assert type(options.beam_width) is int and type(options.seed) is int
    assert type(options.temperature) is float and options.top_p == 0.5
    assert DecodingOptions(beam_width=3.0).beam_width == 3  # JSON may send 3 as 3.0


@pytest.mark.parametrize(
    "images, fragment",
    [
        (42, "cannot caption an int"),
        (None, "cannot caption a NoneType"),
        ([None], "cannot caption a NoneType"),
        ({"a.jpg", "b.jpg"}, "cannot caption a set: it has no order"),
        ({"a.jpg": "a cat"}, "cannot caption a dict: it has no order"),
        ([b"\xff\xd8", None], r"images\[1\]: cannot caption a NoneType"),
    ],
)
def test_what_is_not_an_image_is_refused_before_any_model_loads(images, fragment, monkeypatch):
    monkeypatch.setattr(
        facade, "resolve_captioner", lambda model: pytest.fail("a model was loaded")
    )
    with pytest.raises(InvalidParameter, match=fragment):
        capsight.caption(images)


def test_a_missing_file_is_named_before_any_model_loads(tmp_path, monkeypatch):
    """Not after every photo before it in the list was captioned."""
    from capsight.errors import InputNotFound

    monkeypatch.setattr(
        facade, "resolve_captioner", lambda model: pytest.fail("a model was loaded")
    )
    here = tmp_path / "here.jpg"
    here.write_bytes(b"\xff\xd8 not decoded yet")
    with pytest.raises(InputNotFound, match="nope.jpg: no such file"):
        capsight.caption([here, tmp_path / "nope.jpg"])
    with pytest.raises(InputNotFound, match="is a directory"):
        capsight.describe_images([here, tmp_path])


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"decoding": {"method": "greedy"}}, "decoding must be a DecodingOptions, not 'dict'"),
        ({"model": None}, "model must be a captioner name or a folder"),
        ({"batch_size": 2.5}, "batch size must be a whole number"),
    ],
)
def test_arguments_of_the_wrong_type_are_one_clear_error(kwargs, fragment):
    with pytest.raises(InvalidParameter, match=fragment):
        capsight.caption([Image.new("RGB", (8, 8))], **{"model": "labels", **kwargs})


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"decoding": {"method": "greedy"}}, "decoding must be a DecodingOptions, not 'dict'"),
        ({"num_labels": 2.5}, "num_labels must be a whole number"),
        ({"batch_size": 0}, "batch size must be a whole number >= 1"),
    ],
)
def test_wrong_arguments_are_refused_before_any_model_loads(kwargs, fragment, monkeypatch):
    monkeypatch.setattr(
        facade, "resolve_captioner", lambda model: pytest.fail("a model was loaded")
    )
    with pytest.raises(InvalidParameter, match=fragment):
        capsight.describe_images([Image.new("RGB", (8, 8))], **kwargs)


def test_no_images_give_no_rows_as_caption_does():
    assert capsight.caption([]) == [] and capsight.describe_images([]) == []
    encoded = capsight.encode_images([], model="labels")
    assert len(encoded) == 0 and encoded.grid.shape == (0, 49, 1280) and encoded.grid_size == (7, 7)
    assert encoded.probs.shape == (0, 1000)


def test_counts_may_be_numpy_integers_as_in_decoding_options():
    assert check_count("batch size", np.int64(2), 1) == 2
    assert type(check_count("num_labels", np.int32(0), 0)) is int
    with pytest.raises(InvalidParameter, match="batch size must be a whole number >= 1"):
        check_count("batch size", np.int64(0), 1)
    with pytest.raises(InvalidParameter, match="num_labels must be a whole number"):
        check_count("num_labels", True, 0)


def test_numpy_arrays_become_rgb_images():
    grey = np.full((6, 5), 200, np.uint8)
    rgba = np.zeros((6, 5, 4), np.uint8)  # fully transparent: composited on white
    assert (
        image_inputs.as_rgb_image(grey).size == (5, 6)
        and image_inputs.as_rgb_image(grey).mode == "RGB"
    )
    assert image_inputs.as_rgb_image(rgba).getpixel((0, 0)) == (255, 255, 255)
    assert image_inputs.as_rgb_image(np.zeros((6, 5, 3), np.uint8)[:, ::-1]).mode == "RGB"
    # Floats in [0, 1] (skimage, torchvision) and uint16 are pixels too; 12-bit grey data in a
    # uint16 array is read from its own range, as in a 16-bit file.
    assert (
        image_inputs.as_rgb_image(np.full((6, 5, 3), 0.5, np.float32)).getpixel((0, 0))
        == (128,) * 3
    )
    assert (
        image_inputs.as_rgb_image(np.full((6, 5, 3), 65535, np.uint16)).getpixel((0, 0))
        == (255,) * 3
    )
    twelve_bit = np.tile(np.arange(0, 4096, 64, dtype=np.uint16), (8, 1))
    assert image_inputs.as_rgb_image(twelve_bit).getpixel((63, 0))[0] > 240
    with pytest.raises(
        InvalidParameter, match=r"from 0 to 255, where floats must be in \[0, 1\] \(for 0-255, cast"
    ):
        image_inputs.as_rgb_image(np.linspace(0, 255, 90, dtype=np.float32).reshape(6, 5, 3))
    with pytest.raises(InvalidParameter, match="NaN or infinite"):
        image_inputs.as_rgb_image(np.full((6, 5, 3), np.nan, np.float32))
    with pytest.raises(InvalidParameter, match="pass pixels shaped"):
        image_inputs.as_rgb_image(np.zeros((6, 5, 2), np.uint8))
    with pytest.raises(InvalidParameter, match="0x0 pixels"):
        image_inputs.as_rgb_image(Image.new("RGB", (0, 0)))


def test_sixteen_bit_colour_arrays_read_their_range_and_either_byte_order():
    """0-255 in a uint16 colour array was divided by 257 into "a blank image" (grey read its
    own range); a big-endian uint16 array (FITS, some TIFF readers) was refused."""
    ramp = np.tile(np.arange(0, 256, 4, dtype=np.uint16), (8, 1))  # (8, 64), 0..252
    colour = np.stack([ramp] * 3, axis=-1)
    assert image_inputs.as_rgb_image(colour).getpixel((63, 0)) == (252,) * 3
    assert image_inputs.as_rgb_image(colour * 16).getpixel((63, 0))[0] > 240  # 12-bit data
    for shaped in (ramp * 257, colour * 257):
        big_endian = shaped.astype(">u2")
        assert image_inputs.as_rgb_image(big_endian).getpixel((63, 0))[0] == 252


def test_a_file_read_before_is_read_from_its_start_and_an_animation_is_noted_by_any_route(
    tmp_path,
):
    """A BytesIO or file read once (or passed twice) had been "file is empty" or "not an image",
    where Image.open reads it from its start; an opened GIF had no first-frame note."""
    import io

    from capsight.io.images import ANIMATED

    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 10, 10)).save(buffer, "PNG")
    buffer.read()  # at its end
    assert image_inputs.as_rgb_image(buffer).size == (40, 30)
    assert image_inputs.as_rgb_image(buffer).size == (40, 30)  # twice
    frames = [Image.new("RGB", (40, 30), c) for c in ((0, 0, 0), (200, 10, 10))]
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:])
    opened = Image.open(tmp_path / "a.gif")
    assert image_inputs.as_rgb_image(opened).info[ANIMATED] == "GIF"
    assert ANIMATED not in opened.info  # (the caller's image is left as it was)


def test_a_pil_image_whose_file_was_closed_before_it_was_read_is_one_line(tmp_path):
    from capsight.errors import ImageLoadError

    Image.new("RGB", (8, 6), (10, 200, 30)).save(tmp_path / "a.jpg")
    with Image.open(tmp_path / "a.jpg") as image:  # opened lazily, read only on use
        pass
    with pytest.raises(ImageLoadError, match=r"this PIL image cannot be read \(its file was closed "
                                             r"before it was read\); re-open or re-export it"):  # fmt: skip
        image_inputs.as_rgb_image(image)


def test_files_and_memoryviews_are_read_as_images(tmp_path):
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (10, 200, 30)).save(buffer, "PNG")
    data = buffer.getvalue()
    assert image_inputs.as_rgb_image(io.BytesIO(data)).getpixel((0, 0)) == (10, 200, 30)
    assert image_inputs.as_rgb_image(memoryview(data)).size == (8, 6)
    (tmp_path / "a.png").write_bytes(data)
    with open(tmp_path / "a.png", "rb") as f:
        assert image_inputs.image_list(f) == [f]  # one file, not a list of its lines
        assert image_inputs.as_rgb_image(f).size == (8, 6)
    with open(tmp_path / "a.png") as text, pytest.raises(InvalidParameter, match="binary mode"):
        image_inputs.as_rgb_image(text)
    with open(tmp_path / "a.png", "rb") as f:
        pass
    with pytest.raises(InvalidParameter, match="cannot read it"):
        image_inputs.as_rgb_image(f)  # closed
    with pytest.raises(ImageLoadError, match="notes.txt: not an image"):
        with open(tmp_path / "notes.txt", "w+b") as f:
            f.write(b"a shopping list")
            f.seek(0)
            image_inputs.as_rgb_image(f)


def test_a_pil_image_is_upright_and_within_the_limits_as_a_file_is(tmp_path):
    import io

    tall = Image.new("RGB", (4, 8))
    exif = tall.getexif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to show upright
    buffer = io.BytesIO()
    tall.save(buffer, "JPEG", exif=exif.tobytes())
    assert image_inputs.as_rgb_image(Image.open(io.BytesIO(buffer.getvalue()))).size == (8, 4)
    assert image_inputs.as_rgb_image(buffer.getvalue()).size == (8, 4)  # as bytes: the same
    turned = Image.open(io.BytesIO(buffer.getvalue())).transpose(Image.Transpose.ROTATE_180)
    assert image_inputs.as_rgb_image(turned).size == (4, 8)  # turned by the caller: taken as it is
    with pytest.raises(ImageLoadError, match="too large"):
        image_inputs.as_rgb_image(Image.new("1", (9000, 8000)))
    cut = tmp_path / "cut.jpg"
    noise = np.random.default_rng(0).integers(0, 255, (128, 128, 3), dtype=np.uint8)
    Image.fromarray(noise).save(cut, quality=95)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])  # the header whole, the pixels cut
    with pytest.raises(ImageLoadError, match="cannot be read"):
        image_inputs.as_rgb_image(Image.open(cut))  # opened lazily: it fails only when read
    closed = Image.open(io.BytesIO(buffer.getvalue()))
    closed.close()
    with pytest.raises(ImageLoadError, match="cannot be read"):
        image_inputs.as_rgb_image(closed)


def test_a_large_jpeg_opened_lazily_is_drafted_as_its_path_would_be(tmp_path):
    """Opened with Image.open and passed unread, an 8000x6000 photo was decoded whole (144 MB);
    the caller's image keeps its size and stays unread."""
    from capsight.io.images import full_size

    path = tmp_path / "big.jpg"
    Image.new("RGB", (2200, 2100), (200, 30, 10)).save(path, quality=80)
    with Image.open(path) as image:
        out = image_inputs.as_rgb_image(image)
        assert out.size == (1100, 1050) and full_size(out) == (2200, 2100)
        assert image.size == (2200, 2100) and image.tile  # not drafted, not read
        assert out.getpixel((5, 5))[0] > 180
    small = tmp_path / "small.jpg"
    Image.new("RGB", (2000, 3000)).save(small)  # one side under twice DECODE_SIDE: read whole
    with Image.open(small) as image:
        assert image_inputs.as_rgb_image(image).size == (2000, 3000)


def test_a_bad_image_in_a_list_is_named_by_its_place():
    good = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ImageLoadError, match=r"^images\[1\]: not an image"):
        image_inputs.rgb_images([good, b"not a photo"], 0, 8)


def test_one_image_alone_counts_as_a_list_of_one(tmp_path):
    pil, array = Image.new("RGB", (4, 4)), np.zeros((4, 4, 3), np.uint8)
    assert image_inputs.image_list(pil) == [pil]
    assert image_inputs.image_list(array)[0] is array
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"\xff\xd8")
    assert image_inputs.image_list(x for x in (str(photo),)) == [str(photo)]


@pytest.mark.slow  # loads the image encoder
def test_caption_takes_a_pil_image_or_a_numpy_array_alone(photo):
    from_pil = capsight.caption(photo("chelsea"), model="labels")
    from_array = capsight.caption(np.asarray(photo("chelsea")), model="labels")
    assert len(from_pil) == 1 and from_pil[0].text == from_array[0].text
    assert capsight.encode_images(photo("chelsea"), model="labels").grid.shape == (1, 49, 1280)
    with pytest.raises(InvalidParameter, match="has no word vectors"):
        capsight.word_vectors(["a", "cat"], model="labels")
    with pytest.raises(InvalidParameter, match="a list of words"):
        capsight.word_vectors("a cat", model="labels")


@pytest.mark.slow  # loads the image encoder
def test_decoding_options_given_to_labels_are_a_warning(photo):
    """labels names classes: a beam width or num_captions given to it had been ignored silently."""
    import warnings

    with pytest.warns(
        facade.DecodingIgnored, match="the labels model ignores decoding options"
    ) as said:
        described = capsight.caption(photo("chelsea"), model="labels",
                                     decoding=DecodingOptions(num_captions=3))  # fmt: skip
    assert described[0].alternatives == []
    assert said[0].filename == __file__  # the caller's line (it had been facade.py's)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        capsight.caption(photo("chelsea"), model="labels")
    labels, _ = facade.resolve_captioner("labels")
    assert facade.decoding_for(labels, DecodingOptions.partial(beam_width=5)) is None


@pytest.mark.slow  # loads the image encoder
def test_more_labels_than_classes_gives_every_class(photo):
    described = capsight.describe_images(photo("chelsea"), model="labels", num_labels=5000)
    labels = described[0].labels
    assert len(labels) == 1000 and labels[0][0] == "Egyptian cat"
    assert capsight.describe_images(photo("chelsea"), model="labels", num_labels=0)[0].labels == []


def test_the_package_lists_its_public_functions_for_help_and_completion():
    names = dir(capsight)
    for name in (
        "caption",
        "describe_images",
        "encode_images",
        "word_vectors",
        "DecodingOptions",
        "analyze_video",
        "analyze_videos",
        "write_outputs",
        "Analysis",
        "classify_images",
    ):
        assert name in names and name in capsight.__all__
    assert capsight.DecodingOptions is DecodingOptions and capsight.caption is facade.caption
    from capsight.classify.engines import classify

    assert capsight.classify_images is classify
    from capsight.batch import analyze_videos
    from capsight.novelty.analysis import Analysis
    from capsight.novelty.reports import write_outputs

    assert capsight.Analysis is Analysis and capsight.write_outputs is write_outputs
    assert capsight.analyze_videos is analyze_videos
    # the result types, for a user's type hints (they had to be read from internal modules)
    from capsight.batch.outcome import VideoOutcome
    from capsight.captioning.base import CaptionResult
    from capsight.classify.classifier import Prediction
    from capsight.novelty.analysis import AnalysisParams, Moment, VideoInfo
    from capsight.vision.encoder import EncodedImages

    for kind in (CaptionResult, facade.ImageDescription, Prediction, EncodedImages, Moment,
                 VideoInfo, AnalysisParams, VideoOutcome):  # fmt: skip
        assert getattr(capsight, kind.__name__) is kind and kind.__name__ in capsight.__all__
    with pytest.raises(TypeError, match=r"^classify_images\(\) got an unexpected keyword"):
        capsight.classify_images(["cat.jpg"], "cat, dog", tpo=1)  # it had named classify()
    with pytest.raises(AttributeError):
        capsight.no_such_function  # noqa: B018


def test_help_lists_the_public_functions_and_not_the_lazy_loading():
    import subprocess
    import sys

    # A fresh interpreter: importing capsight must not import torch, and help() shows no
    # __getattr__ / __dir__ of the lazy loading.
    code = ("import sys, capsight; assert 'torch' not in sys.modules; import pydoc; "
            "print(pydoc.render_doc(capsight, renderer=pydoc.plaintext))")  # fmt: skip
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "analyze_video(" in shown and "DecodingOptions" in shown
    assert "__getattr__" not in shown and "__dir__" not in shown and "_LazyModule" not in shown


def test_the_public_functions_let_openmp_threads_wait_without_spinning():
    """As the CLI does (its spinning threads ran capsight.caption 2x slower on a busy machine);
    a value of the caller's own wins, and DecodingOptions alone loads no torch to set it for."""
    import os
    import subprocess
    import sys

    code = ("import os, capsight; capsight.DecodingOptions; print(os.environ.get('OMP_WAIT_POLICY')); "
            "capsight.caption; print(os.environ.get('OMP_WAIT_POLICY'))")  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    assert run.stdout.split() == ["None", "PASSIVE"]
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**env, "OMP_WAIT_POLICY": "ACTIVE"})  # fmt: skip
    assert run.stdout.split() == ["ACTIVE", "ACTIVE"]


@pytest.mark.slow
def test_encode_images_works_in_batches_and_keeps_no_images(photo):
    cat = photo("chelsea")
    encoded = capsight.encode_images([cat, cat, cat], model="show-attend-tell", batch_size=2)
    assert tuple(encoded.grid.shape) == (3, 49, 1280) and tuple(encoded.probs.shape) == (3, 1000)
    assert encoded.images is None  # memory stays bounded by the batch
    assert torch.allclose(encoded.pooled[0], encoded.pooled[2], atol=1e-2)  # batches agree


@pytest.mark.slow  # loads the image encoder and a captioner
@pytest.mark.parametrize("model", ["show-attend-tell", "labels"])
def test_a_blank_image_is_captioned_as_blank_and_a_photo_is_not(photo, model):
    black, cat = Image.new("RGB", (320, 240)), photo("chelsea")
    described = capsight.describe_images([black, cat], model=model, decoding=None)
    assert described[0].blank and described[0].caption.text == "a blank image"
    assert described[0].caption.score is None and described[0].caption.attention is None
    assert described[0].labels == []  # a flat colour's ImageNet classes were noise (hook 0.013)
    assert not described[1].blank and described[1].caption.text != "a blank image"
    assert described[0].to_dict()["blank"] is True and described[1].to_dict()["blank"] is False


def test_results_print_short_and_turn_into_json():
    """The attention tensor made a result's repr 48 lines; asdict() could not be dumped."""
    import json

    import torch

    from capsight.captioning.base import CaptionResult
    from capsight.captioning.facade import ImageDescription

    result = CaptionResult("a dog runs", -0.5, ["a", "dog", "runs"], torch.rand(3, 49), ["a dog"])
    assert "attention" not in repr(result) and len(repr(result)) < 200
    described = ImageDescription(result, [("Labrador retriever", 0.9)], "show-attend-tell")
    data = json.loads(json.dumps(described.to_dict()))
    assert data["caption"]["text"] == "a dog runs" and len(data["caption"]["attention"]) == 3
    assert data["labels"] == [["Labrador retriever", 0.9]] and data["model"] == "show-attend-tell"


def test_an_empty_file_name_is_said_to_be_empty():
    """It was "InputNotFound: .: is a directory"."""
    from capsight.errors import InputNotFound

    with pytest.raises(InputNotFound, match="^an empty file name; name a file$"):
        capsight.caption("")


@pytest.mark.parametrize("options, fragment", [
    (DecodingOptions(method="beam", temperature=0.5), "beam search does not use temperature;"),
    (DecodingOptions(method="narrowing", top_p=0.9), "the narrowing schedule does not use top_p;"),
    (DecodingOptions(method="sample", beam_width=5, length_penalty=1.0),
     "sampling does not use beam_width or length_penalty; leave them out"),
    (DecodingOptions(method="greedy", seed=1), "greedy decoding does not use seed;"),
    # only the options given are explained (the message had listed all six)
    (DecodingOptions(method="greedy", beam_width=5), "does not use beam_width; leave it out, or "
                                                     "choose a method that does (beam_width: "
                                                     "method='beam')"),
    (DecodingOptions.partial(top_k=5), "beam search does not use top_k;"),  # the model's own: beam
])  # fmt: skip
def test_decoding_options_the_method_does_not_use_are_refused_as_by_the_cli(options, fragment):
    """They had been ignored silently, where the CLI and the HTTP API refuse them."""
    captioner, _ = facade.resolve_captioner("show-attend-tell")  # its own decoding: beam search
    with pytest.raises(InvalidParameter, match=re.escape(fragment)):
        facade.decoding_for(captioner, options)
    for fine in (DecodingOptions(method="sample", temperature=0.5, seed=1),
                 DecodingOptions(method="narrowing", top_k=3, seed=2),
                 DecodingOptions.partial(num_captions=3), DecodingOptions(method="greedy")):  # fmt: skip
        assert facade.decoding_for(captioner, fine) is not None


@pytest.mark.parametrize("method", ["sample", "greedy", "narrowing", "beam"])
def test_options_resolved_twice_or_a_captioners_own_are_not_refused(method):
    """The server resolves a request's options, then the library does again: the pair's own
    beam width 4 (not the class default 3) was then taken for a choice sampling ignores."""
    captioner, _ = facade.resolve_captioner("show-attend-tell-pair")
    assert captioner.default_decoding.beam_width == 4
    once = facade.decoding_for(captioner, DecodingOptions.partial(method=method))
    twice = facade.decoding_for(captioner, once)
    assert twice == once and twice.method == method
    own = facade.decoding_for(captioner, captioner.default_decoding)  # its stored temperature 1.0
    assert own.in_force() == captioner.default_decoding.in_force()
    with pytest.raises(InvalidParameter, match="does not use temperature"):  # still judged
        facade.decoding_for(captioner, facade.decoding_for(
            captioner, DecodingOptions.partial(method="beam", temperature=0.5)))  # fmt: skip


def test_type_errors_name_the_type_as_python_writes_it():
    """ "not a int", and encode_images(None) "cannot caption" though it only encodes."""
    with pytest.raises(
        InvalidParameter, match="model must be a captioner name or a folder, not 'int'"
    ):
        facade.resolve_captioner(3)
    with pytest.raises(InvalidParameter, match="cannot encode a NoneType"):
        capsight.encode_images(None)


def test_notebook_niceties_signature_repr_generators_and_urls(encoder, photo, tmp_path):
    """What a notebook user met: DecodingOptions' signature read (*args, **given); an encoding's
    repr printed 13,000 characters of tensors; word_vectors refused a generator that caption
    takes; a URL was "https:/example.com/a.jpg: no such file"."""
    import inspect

    import capsight
    from capsight.errors import InputNotFound

    assert list(inspect.signature(capsight.DecodingOptions).parameters)[:2] == [
        "method",
        "beam_width",
    ]
    text = repr(encoder.encode([photo("chelsea")]))
    assert (
        text.startswith("EncodedImages(1 image: pooled (1, 1280), grid (1, 49, 1280)")
        and len(text) < 200
    )
    words = capsight.word_vectors((w for w in ["a", "dog"]), model="show-attend-tell")
    assert words.shape[0] == 2
    with pytest.raises(
        InputNotFound, match=r"^https://example.com/a.jpg: a URL; capsight reads local files"
    ):
        capsight.caption("https://example.com/a.jpg")


def test_a_torch_tensor_is_refused_with_the_way_to_pass_it():
    """One tensor was iterated as a list: "images[0]: cannot caption a Tensor"."""
    import torch

    for given, prefix in (
        (torch.rand(3, 8, 8), ""),
        ([np.zeros((8, 8, 3), np.uint8), torch.rand(3, 8, 8)], "images[1]: "),
    ):
        with pytest.raises(
            InvalidParameter,
            match=rf"^{re.escape(prefix)}cannot caption a torch tensor; pass it as a NumPy",
        ):
            image_inputs.image_list(given)


def test_an_empty_file_is_an_image_load_error_by_path_as_by_bytes(tmp_path):
    """By path it had been InputNotFound, by bytes ImageLoadError (an audit, 2026-12-08)."""
    from capsight.errors import ImageLoadError

    (tmp_path / "zero.jpg").touch()
    for given in (tmp_path / "zero.jpg", str(tmp_path / "zero.jpg"), b""):
        with pytest.raises(ImageLoadError, match="file is empty"):
            capsight.caption([given], model="labels")
