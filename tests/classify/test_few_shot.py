"""One-shot and few-shot classifiers from generated example folders."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from capsight.classify.class_sets import parse_classes
from capsight.classify.classifier import predict
from capsight.classify.engines import create_engine
from capsight.classify.few_shot import build_from_examples, read_examples
from capsight.errors import InputNotFound, InvalidParameter


def _stripes(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (96, 96), (230, 230, 230))
    draw = ImageDraw.Draw(img)
    for x in range(0, 96, 12):
        draw.rectangle([x, 0, x + 5, 95], fill=(200, 30 + int(rng.integers(0, 40)), 30))
    return img


def _disc(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (96, 96), (20, 20, 60))
    r = 25 + int(rng.integers(0, 10))
    draw = ImageDraw.Draw(img)
    draw.ellipse([48 - r, 48 - r, 48 + r, 48 + r], fill=(40, 200 + int(rng.integers(0, 40)), 60))
    return img


@pytest.fixture
def examples(tmp_path):
    for name, make in (("red_stripes", _stripes), ("green_disc", _disc)):
        folder = tmp_path / "examples" / name
        folder.mkdir(parents=True)
        for i in range(2):
            make(i).save(folder / f"{i}.png")
    (tmp_path / "examples" / "green_disc" / "notes.txt").write_text("not a photo")
    return tmp_path / "examples"


def test_read_examples(examples):
    found = read_examples(examples)
    assert sorted(found) == ["green disc", "red stripes"]
    assert all(len(paths) == 2 for paths in found.values())


def test_few_shot_classifies_new_photos(examples):
    engine = create_engine("offline")
    clf = build_from_examples(engine, examples)
    assert clf.labels == ["green disc", "red stripes"]
    probs = predict(clf, [_disc(7), _stripes(7)])  # unseen variations
    assert [clf.labels[i] for i in probs.argmax(-1).tolist()] == ["green disc", "red stripes"]


def test_examples_combine_with_class_names(examples, photo, fake_text_embedder):
    engine = create_engine("offline")
    heard = []
    clf = build_from_examples(
        engine, examples, parse_classes("cat, dog"), progress=lambda f, m: heard.append((f, m))
    )
    fractions = [f for f, _ in heard]
    assert fractions == sorted(fractions) and 0 <= fractions[0] and fractions[-1] <= 0.5
    assert heard[0][1] == "encoding 4 example photos"  # the photos' half of the bar
    assert clf.labels == ["cat", "dog", "green disc", "red stripes"]
    probs = predict(clf, [photo("chelsea"), _disc(9)])
    assert clf.labels[int(probs[0].argmax())] == "cat"  # named only: WordNet mapping decides
    assert clf.labels[int(probs[1].argmax())] == "green disc"  # photo examples decide


def test_bad_example_folders(tmp_path):
    with pytest.raises(InputNotFound):
        read_examples(tmp_path / "missing")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(InvalidParameter, match="no example photos"):
        read_examples(tmp_path / "empty")


def test_photos_in_a_class_folders_own_folders_count_and_hidden_files_do_not(examples):
    """cat/2019/*.jpg had been left out without a word, and a macOS ._ copy beside the photos
    had stopped the build ("not an image file"), where capsight classify skips it."""
    (examples / "red_stripes" / "2019").mkdir()
    _stripes(7).save(examples / "red_stripes" / "2019" / "7.png")
    (examples / "red_stripes" / "._0.png").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (examples / "red_stripes" / ".thumbs").mkdir()
    _stripes(8).save(examples / "red_stripes" / ".thumbs" / "8.png")
    found = read_examples(examples)
    assert [p.relative_to(examples).as_posix() for p in found["red stripes"]] == [
        "red_stripes/0.png", "red_stripes/1.png", "red_stripes/2019/7.png"]  # fmt: skip


def test_a_class_folder_without_photos_is_named_not_left_out(examples, tmp_path):
    import shutil

    shutil.copytree(examples, tmp_path / "ex")
    (tmp_path / "ex" / "zebra").mkdir()
    (tmp_path / "ex" / "zebra" / "notes.txt").write_text("photos to come\n")
    with pytest.raises(InvalidParameter, match="zebra has no photos"):
        read_examples(tmp_path / "ex")


def test_one_folder_is_refused_even_with_other_names(tmp_path):
    # Its prototype, centred on the mean of the example photos (its own), was noise scaled up
    # to a unit vector: a random few logits on every photo.
    folder = tmp_path / "one" / "green_disc"
    folder.mkdir(parents=True)
    _disc(0).save(folder / "0.png")
    engine = create_engine("offline")
    for classes in (None, parse_classes("red stripes", at_least=1)):
        with pytest.raises(InvalidParameter, match="one class only \\('green disc'\\)"):
            build_from_examples(engine, tmp_path / "one", classes)


def test_a_named_class_and_its_folder_are_one_class_whatever_the_case(examples, fake_text_embedder):
    clf = build_from_examples(create_engine("offline"), examples, parse_classes("Green Disc, cat"))
    assert clf.labels == ["Green Disc", "cat", "red stripes"]
    for classes in ("Green Disc, cat", ["Green Disc", "cat"]):  # as engine.build takes them
        assert build_from_examples(create_engine("offline"), examples, classes).labels == clf.labels
    with pytest.raises(InvalidParameter, match="must be a path"):
        build_from_examples(create_engine("offline"), None)
    assert clf.prototypes[0].abs().sum() > 0  # the folder's photos went to the named class
    assert clf.prototypes[1].abs().sum() == 0  # "cat" has no photos


def test_an_empty_examples_path_is_not_the_current_folder(tmp_path, monkeypatch, examples):
    monkeypatch.chdir(examples)  # would be read as examples if "" meant "."
    with pytest.raises(InvalidParameter, match="examples folder name is empty"):
        read_examples("")


@pytest.mark.parametrize(
    "twins", [("Mug", "mug"), ("green_disc", "green disc"), ("hot__dog", "hot dog")]
)
def test_folders_that_name_the_same_class_are_refused(tmp_path, twins):
    for name in (*twins, "plate"):
        (tmp_path / "ex" / name).mkdir(parents=True)
        _disc(0).save(tmp_path / "ex" / name / "0.png")
    with pytest.raises(InvalidParameter, match="name the same class"):
        read_examples(tmp_path / "ex")


def test_a_file_given_as_the_examples_folder_is_named_a_file(tmp_path):
    path = tmp_path / "clf.pt"
    path.write_bytes(b"x")
    with pytest.raises(InvalidParameter, match="clf.pt: is a file; give a folder"):
        read_examples(path)
