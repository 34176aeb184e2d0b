"""Built-in class sets, class lists and the WordNet lookup behind the offline engine."""

from __future__ import annotations

import pytest

from capsight.classify.class_sets import BUILTIN_SETS, builtin_set, parse_classes
from capsight.classify.templates import fill_template, resolve_templates
from capsight.classify.wordnet import alternatives, imagenet_cover
from capsight.errors import InputNotFound, InvalidParameter


@pytest.mark.parametrize("name", BUILTIN_SETS)
def test_builtin_sets_load_with_unique_labels(name):
    classes = builtin_set(name)
    assert len(classes.labels) >= 20
    assert len(set(classes.labels)) == len(classes.labels)
    assert all(label == label.strip() and "#" not in label for label in classes.labels)


def test_imagenet_set_has_1000_unique_names_in_index_order():
    classes = parse_classes("imagenet")
    assert len(classes.labels) == 1000 and classes.imagenet_indices == tuple(range(1000))
    assert classes.labels[0] == "tench"
    assert sum(label.startswith("crane (") for label in classes.labels) == 2
    # Unique whatever the case, as a list takes them: written out (plus a class of one's own),
    # "Cardigan" (the corgi) and "cardigan" (the sweater) had been refused as one name twice.
    assert {"Cardigan (corgi)", "cardigan (sweater)"} <= set(classes.labels)
    assert len(parse_classes([*classes.labels, "tabby cat in a box"]).labels) == 1001


def test_a_renamed_imagenet_class_typed_in_a_list_is_that_class():
    """ "crane (device)" is the built-in set's name for class 517; typed in a list of one's own,
    WordNet knew no such name and both cranes had scored alike."""
    import numpy as np

    from capsight.classify.offline import OfflineConfig, wordnet_rows

    rows = wordnet_rows(["crane (wading bird)", "Crane (Device)", "cat"], OfflineConfig())
    assert np.flatnonzero(rows[0]).tolist() == [134] and np.flatnonzero(rows[1]).tolist() == [517]
    assert rows[2].sum() > 0


def test_tied_classes_keep_the_order_they_were_listed_in():
    import torch

    from capsight.classify.classifier import top_k

    probs = torch.tensor([[0.1, 0.3, 0.3, 0.3]])
    assert [label for label, _ in top_k(probs, ["a", "b", "c", "d"], 4)[0]] == ["b", "c", "d", "a"]


def test_class_file_and_list(tmp_path):
    path = tmp_path / "mine.txt"
    path.write_text("# kitchen\nmug\n\nteapot  # with a lid\nkettle\n")
    assert parse_classes(str(path)).labels == ("mug", "teapot", "kettle")
    assert parse_classes(path).labels == ("mug", "teapot", "kettle")  # a Path too, as elsewhere
    assert parse_classes(" a, b ,c ").labels == ("a", "b", "c")
    # The file's text pasted into a form (the web page, the HTTP API's classes): its comments
    # are not classes; commas still separate; "#" on a single line is part of a name ("C#").
    pasted = path.read_text().replace("\n", "\r\n") + "toaster, oven\n"
    assert parse_classes(pasted).labels == ("mug", "teapot", "kettle", "toaster", "oven")
    assert parse_classes("C#, Java").labels == ("C#", "Java")


def test_a_blank_name_in_a_list_is_refused_not_dropped():
    """Scores come back in the list's order: a blank dropped had put "dog" at index 1 for a
    caller who reads them by its own list. Typed lists and class files still skip blanks."""
    for names in (["cat", "  ", "dog"], ("cat", "\u200b", "dog")):
        with pytest.raises(InvalidParameter, match=r"^classes\[1\] is blank"):
            parse_classes(names)
    assert parse_classes("cat, , dog").labels == ("cat", "dog")


@pytest.mark.parametrize("spec", ["cat,dog,cat", "cat, Cat", "Dog,DOG,bird", "hot dog, hot  dog"])
def test_a_class_named_twice_is_refused_whatever_its_case(spec):
    with pytest.raises(InvalidParameter, match="each class once"):
        parse_classes(spec)


def test_wordnet_cover():
    assert len(imagenet_cover("dog")) >= 118
    assert set(imagenet_cover("dogs")) == set(imagenet_cover("dog"))  # plurals
    assert imagenet_cover("Egyptian cat") == {285: 1.0}
    assert imagenet_cover("no such thing here") == {}
    tv, monitor = imagenet_cover("television"), imagenet_cover("monitor")
    assert set(imagenet_cover("television or monitor")) == set(tv) | set(monitor)
    assert alternatives("salt or pepper shaker")[:2] == ["salt shaker", "pepper shaker"]
    # WordNet closes some compounds up, and knows a breed under another name: as typed, these
    # matched nothing and fell back on text similarity, which spread them over every photo.
    assert imagenet_cover("flower pot") == imagenet_cover("flowerpot") == {738: 1.0}
    assert imagenet_cover("wine glasses") == imagenet_cover("wineglass") != {}
    assert imagenet_cover("Egyptian Mau") == {285: 1.0}  # as the cat-breeds set lists it
    assert imagenet_cover("hot dog") == {934: 1.0}  # a compound WordNet keeps open stays one


def test_templates():
    assert fill_template("a photo of a {}.", "apple") == "a photo of an apple."
    assert fill_template("art of the {}.", "apple") == "art of the apple."
    assert resolve_templates(None, ("{}",)) == ("{}",)
    assert resolve_templates("itap of a {}.", ("{}",)) == ("itap of a {}.",)


def test_a_class_file_saved_with_a_byte_order_mark(tmp_path):
    # Windows editors start UTF-8 files with U+FEFF; it is not part of the first class's name.
    path = tmp_path / "mine.txt"
    path.write_bytes("cat\r\n\r\n  \r\ndog\r\ncar\r\n".encode("utf-8-sig"))
    assert parse_classes(str(path)).labels == ("cat", "dog", "car")
    assert parse_classes(["\ufeffcat", "dog"]).labels == ("cat", "dog")  # pasted into the API


def test_invisible_characters_are_no_part_of_a_name():
    """ "cat\u200b" and "cat" were two classes that printed alike (cat 0.538, cat 0.460)."""
    with pytest.raises(InvalidParameter, match="class list repeats cat; each class once"):
        parse_classes("cat\u200b, cat, dog")
    assert parse_classes("\u202ecat, d\u2066og").labels == ("cat", "dog")
    for mark in "\u200e\u200f\u061c\u2060\u00ad":  # direction marks, word joiner, soft hyphen
        assert parse_classes(f"ca{mark}t, dog").labels == ("cat", "dog")
    assert (
        parse_classes("👨\u200d👩\u200d👧, dog").labels[0] == "👨\u200d👩\u200d👧"
    )  # a joiner stays


def test_one_class_is_let_through_only_when_asked():
    with pytest.raises(InvalidParameter, match="single class"):
        parse_classes("kettle")
    assert parse_classes("kettle", at_least=1).labels == ("kettle",)


@pytest.mark.parametrize("relative", [True, False])
def test_a_folder_given_as_the_class_list_is_named_as_one(tmp_path, monkeypatch, relative):
    (tmp_path / "photos").mkdir()
    monkeypatch.chdir(tmp_path)
    spec = "./photos" if relative else str(tmp_path / "photos")
    with pytest.raises(InvalidParameter, match="is a folder"):
        parse_classes(spec)
    # A bare name stays a class name, even beside a folder called so (few-shot adds classes),
    # but as the whole class list it was meant as the folder.
    assert parse_classes("photos", at_least=1).labels == ("photos",)
    with pytest.raises(InvalidParameter, match="photos: is a folder"):
        parse_classes("photos")
    (tmp_path / "mine.txt").write_text("mug\nteapot\n")
    with pytest.raises(InvalidParameter, match="did you mean the class file 'mine.txt'"):
        parse_classes("mine")


def test_an_empty_class_file_is_named(tmp_path):
    path = tmp_path / "kitchen.txt"
    path.write_text("# to fill in\n\n")
    with pytest.raises(InvalidParameter, match="kitchen.txt: the class list is empty"):
        parse_classes(str(path))


def test_messages_quote_a_huge_list_in_part():
    with pytest.raises(InvalidParameter) as single:
        parse_classes("a" * 100_000)
    assert len(str(single.value)) < 300 and "aaa...'" in str(single.value)
    with pytest.raises(
        InvalidParameter, match=r"repeats c0, c1, .* and 49,990 more; each class once"
    ):
        parse_classes([f"c{i}" for i in range(50_000)] * 2)


def test_a_long_class_list_typed_inline_is_a_list_not_a_crash():
    """Past 255 bytes the text cannot be a file name: the file test raised ENAMETOOLONG."""
    names = [f"class number {i}" for i in range(60)]
    assert parse_classes(",".join(names)).labels == tuple(names)
    with pytest.raises(InvalidParameter, match="has 949 characters; at most 200"):
        parse_classes("/".join(names) + ",dog")  # a "/" in a long list: a long name, not a path


def test_duplicates_in_a_huge_list_are_found_without_comparing_every_pair():
    names = [f"c{i}" for i in range(60_000)] + ["C7"]
    with pytest.raises(InvalidParameter, match="class list repeats C7, c7; each class once"):
        parse_classes(names)


def test_a_class_file_that_repeats_a_class_is_named(tmp_path):
    path = tmp_path / "dup.txt"
    path.write_text("cat\ndog\nCAT\n")
    with pytest.raises(InvalidParameter) as raised:
        parse_classes(str(path))
    assert str(raised.value) == f"{path}: class list repeats CAT, cat; each class once"


def test_class_files_that_hold_one_line_or_do_not_exist_are_named_as_files(tmp_path, monkeypatch):
    one_line = tmp_path / "mine.txt"
    one_line.write_text("cat, dog, car\n")
    with pytest.raises(
        InvalidParameter,
        match="mine.txt: holds one class, 'cat, dog, car'; a class file has one name per line",
    ):
        parse_classes(str(one_line))
    monkeypatch.chdir(tmp_path)
    from capsight.errors import InputNotFound

    with pytest.raises(InputNotFound, match="missing.csv: no such class file"):
        parse_classes("missing.csv")


def test_names_that_look_the_same_are_one_class_and_control_characters_are_refused():
    """'café' and 'cafe' + a combining accent were two classes shown alike; 'ant\\x01' lost its
    WordNet match to 'bee' on an ant photo without a word."""
    with pytest.raises(InvalidParameter, match="class list repeats café; each class once"):
        parse_classes("caf\u00e9, cafe\u0301, ant")
    assert parse_classes(["cafe\u0301", "tea"]).labels == ("caf\u00e9", "tea")
    with pytest.raises(InvalidParameter, match=r"class name 'ant\\x01' holds a control character"):
        parse_classes("ant\x01, bee, cat")
    # Bytes of the command line that were not UTF-8 (kept as lone surrogates): a
    # UnicodeEncodeError traceback when the names were embedded.
    with pytest.raises(InvalidParameter, match=r"class name 'dog\\udcff' is not valid UTF-8 text"):
        parse_classes(b"cat,dog\xff".decode("utf-8", "surrogateescape"))
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # joined by zero-width joiners: one emoji
    assert parse_classes([family, "cat"]).labels == (family, "cat")


def test_a_class_name_has_at_most_200_characters(tmp_path):
    assert len(parse_classes(["x" * 200, "cat"]).labels[0]) == 200
    with pytest.raises(
        InvalidParameter, match=r"class name 'xxx.*' has 100,000 characters; at most 200"
    ):
        parse_classes(["x" * 100_000, "cat"])
    path = tmp_path / "long.txt"
    path.write_text("cat\n" + "y" * 201 + "\n")
    with pytest.raises(InvalidParameter, match=f"^{path}: class name 'yyy"):
        parse_classes(str(path))


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no named pipes here")
def test_a_pipe_named_as_the_class_file_is_not_called_missing(tmp_path, monkeypatch):
    import os

    fifo = tmp_path / "classes.txt"
    os.mkfifo(fifo)
    with pytest.raises(
        InputNotFound, match="classes.txt: not a regular file .a device, pipe or socket."
    ):
        parse_classes(str(fifo))
    monkeypatch.chdir(tmp_path)  # a folder named like a class file, without a slash
    (tmp_path / "names.txt").mkdir()
    with pytest.raises(InvalidParameter, match="names.txt: is a folder; give a class file"):
        parse_classes("names.txt")
