"""What the dataset readers refuse or say of files they cannot take as they are (from a fuzz of
every layout: each case was a traceback, a silent loss, or a write outside the cache)."""

from __future__ import annotations

import json

import pytest

from capsight.errors import DatasetError, InputNotFound
from capsight.training.datasets import load_corpus
from capsight.training.readers import (
    read_coco_captions,
    read_conceptual_captions,
    read_karpathy_split,
)


def _karpathy(tmp_path, **changes):
    entries = [{"filename": f"{i}.jpg", "split": "train" if i < 3 else "test",
                "sentences": [{"raw": f"a photo number {i}"}]} for i in range(5)]  # fmt: skip
    for i, change in changes.items():
        entries[int(i[1:])].update(change) if change is not None else entries[int(i[1:])].pop(
            "split"
        )
    path = tmp_path / "dataset_x.json"
    path.write_text(json.dumps({"dataset": "x", "images": entries}))
    return path


@pytest.mark.parametrize(("change", "fragment"), [
    ({"split": None}, r"image #0 \(0.jpg\) has a 'split' that is not a name \(None\)"),
    ({"split": ["test"]}, "has a 'split' that is not a name"),
    ({"split": 3}, "has a 'split' that is not a name"),
    ({"filepath": 2014}, r"has a 'filepath' that is not a folder name \(2014\)"),
])  # fmt: skip
def test_a_karpathy_entry_of_the_wrong_kind_is_one_line(tmp_path, change, fragment):
    with pytest.raises(DatasetError, match=fragment):
        read_karpathy_split(_karpathy(tmp_path, e0=change))


def test_karpathy_entries_without_a_split_are_said_to_be_taken_as_train(tmp_path):
    """The 4 test photos of a file whose splits were lost were trained on without a word."""
    corpus = read_karpathy_split(_karpathy(tmp_path, e3=None, e4=None))
    assert (
        len(corpus.splits["train"]) == 5
        and "2 images name no 'split' and are taken as 'train'" in corpus.notes
    )


def _coco(tmp_path, images, annotations):
    path = tmp_path / "annotations" / "captions_val2017.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"images": images, "annotations": annotations}))
    return path


def test_coco_file_names_of_the_wrong_kind_or_listed_twice_are_one_line(tmp_path):
    annotations = [{"id": i, "image_id": i, "caption": f"photo {i}"} for i in (1, 2)]
    with pytest.raises(
        DatasetError, match=r"image id 2 has a 'file_name' that is not a file name \(139\)"
    ):
        read_coco_captions(_coco(tmp_path, [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": 139}],
                                 annotations), tmp_path)  # fmt: skip
    (tmp_path / "annotations" / "captions_val2017.json").unlink()
    (tmp_path / "annotations").rmdir()
    # Two ids, one file: the second's captions went to the first's photo, and its own were lost.
    with pytest.raises(DatasetError, match="file_name a.jpg is listed for image ids 1 and 2"):
        read_coco_captions(_coco(tmp_path, [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "a.jpg"}],
                                 annotations), tmp_path)  # fmt: skip


def test_a_damaged_coco_file_is_said_before_its_photo_folder_is_looked_for(tmp_path):
    """It had said "cannot find the photo folder beside it", and only with the folder given
    that the file itself was damaged."""
    path = _coco(
        tmp_path, [{"id": 1, "file_name": "a.jpg"}], [{"id": 9, "image_id": 1, "caption": 7}]
    )
    with pytest.raises(DatasetError, match=r"annotation 9 has no caption text \(7\)"):
        read_coco_captions(path)  # no folder given, and none beside it
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "a.jpg"}],
                                "annotations": [{"id": 9, "image_id": 1, "caption": "a dog"}]}))  # fmt: skip
    with pytest.raises(InputNotFound, match="cannot find the photo folder beside it; name the "
                                            "folder of the photos with --images"):  # fmt: skip
        read_coco_captions(path)  # a sound file without its folder is still said so


def test_coco_says_what_it_leaves_out(tmp_path):
    images = [{"id": i, "file_name": f"{i}.jpg"} for i in (1, 2, 3)]
    annotations = [
        {"id": 1, "image_id": 1, "caption": "a dog"},
        {"id": 2, "image_id": 1, "caption": "  "},
    ]
    corpus = read_coco_captions(_coco(tmp_path, images, annotations), tmp_path)
    assert corpus.notes == ["1 blank caption left out", "2 images without a caption left out"]
    # captions of image ids 'images' does not list (trimmed to a subset): left out, not refused
    orphans = [
        {"id": 3, "image_id": 1000, "caption": "a cat"},
        {"id": 4, "image_id": 9, "caption": "a"},
    ]
    corpus = read_coco_captions(_coco(tmp_path, images, annotations + orphans), tmp_path)
    assert list(corpus.images) == ["1.jpg"]
    assert "2 captions of 2 image ids not in 'images' left out (first: 9)" in corpus.notes
    with pytest.raises(DatasetError, match="its captions all refer to image ids not in 'images'"):
        read_coco_captions(_coco(tmp_path, images, orphans), tmp_path)


def test_split_lists_in_other_encodings_and_with_a_bom_keep_their_photos(tmp_path):
    """A BOM made the token file's first photo "\\ufeff1.jpg" (missing) and the first listed
    train photo "without captions"; a Latin-1 byte in a list was a UnicodeDecodeError."""
    (tmp_path / "Flickr8k.token.txt").write_bytes(
        "\ufeff".encode() + b"".join(f"{i}.jpg#0\ta photo number {i}\n".encode() for i in range(6))
    )
    (tmp_path / "Flickr_8k.trainImages.txt").write_bytes(
        b"\xef\xbb\xbf0.jpg\n1.jpg\n2.jpg\ncaf\xe9.jpg\n"
    )
    (tmp_path / "Flickr_8k.devImages.txt").write_text("3.jpg\n")
    (tmp_path / "Flickr_8k.testImages.txt").write_text("4.jpg\n5.jpg\n")
    corpus = load_corpus(tmp_path)
    assert "0.jpg" in corpus.images and [i.key for i in corpus.split("train")] == [
        "0.jpg",
        "1.jpg",
        "2.jpg",
    ]
    assert any("1 of the 4 photos listed for 'train' have no captions" in n for n in corpus.notes)


def test_a_split_list_that_repeats_or_leaves_out_photos_says_so(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (tmp_path / "captions.json").write_text(
        json.dumps({f"{i}.jpg": [f"a photo number {i}"] for i in range(6)})
    )
    (tmp_path / "splits.json").write_text(json.dumps({"train": ["0.jpg", "1.jpg", "0.jpg", "0.jpg"],
                                                      "val": ["2.jpg"], "test": ["3.jpg"]}))  # fmt: skip
    corpus = load_corpus(tmp_path)
    assert [i.key for i in corpus.split("train")] == ["0.jpg", "1.jpg"]  # once each, not 3 times
    assert "splits.json: 2 photos listed again for 'train'; each counted once" in corpus.notes
    assert (
        "splits.json: 2 photos with captions in no split list, so not used (first: 4.jpg)"
        in corpus.notes
    )


def test_json_that_repeats_a_key_or_nests_too_deeply_is_one_line(tmp_path):
    (tmp_path / "captions.json").write_text('{"a.jpg": ["a dog", "a cat"], "a.jpg": ["one line"]}')
    with pytest.raises(DatasetError, match="'a.jpg' appears twice in one object"):
        load_corpus(tmp_path)
    (tmp_path / "captions.json").write_text("[" * 200_000 + "]" * 200_000)
    with pytest.raises(DatasetError, match="nested too deeply"):
        load_corpus(tmp_path)


def test_a_bad_row_is_left_out_and_said_and_a_url_without_its_scheme_is_no_header(tmp_path):
    """One bad row (here a URL without its scheme, on line 1: no header either) had stopped
    the whole file, where the Flickr8k reader skips and counts such lines."""
    from PIL import Image

    from capsight.training.readers.conceptual_captions import cache_file_name

    tsv = tmp_path / "train.tsv"
    tsv.write_text("a dog\texample.com/x.jpg\nmore\thttp://example.com/y.jpg\n")
    (tmp_path / "cache").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "cache" / cache_file_name("http://example.com/y.jpg"),
                                  "JPEG")  # fmt: skip
    corpus = read_conceptual_captions(tsv, tmp_path / "cache")
    assert len(corpus.images) == 1 and corpus.notes == [
        "train.tsv: 1 row not 'caption<TAB>http(s) URL' left out (first: line 1: expected "
        "'caption<TAB>http(s) URL')"
    ]
    tsv.write_text("just some words\nand more\n")  # no row of it is one: not this format
    with pytest.raises(DatasetError, match=r"train.tsv:1: expected 'caption<TAB>http\(s\) URL'; "
                                           r"is this the Conceptual Captions TSV\?"):  # fmt: skip
        read_conceptual_captions(tsv, tmp_path / "cache")
    tsv.write_text("caption\turl\na dog\thttp://example.com/z.jpg\n")  # a real header: skipped
    with pytest.raises(DatasetError, match="fetch them first"):
        read_conceptual_captions(tsv, tmp_path / "cache")


def test_a_latin_1_tsv_is_read_and_said_to_be_so(tmp_path):
    """Its "café" became "caf\ufffd" in training captions without a word."""
    from capsight.training.readers.conceptual_captions import cache_file_name

    tsv = tmp_path / "train.tsv"
    tsv.write_bytes(
        b"a caf\xe9 on a street\thttp://example.com/a.jpg\na dog\thttp://example.com/b.jpg\n"
    )
    cache = tmp_path / "cache"
    cache.mkdir()
    for url in ("http://example.com/a.jpg", "http://example.com/b.jpg"):
        (cache / cache_file_name(url)).write_bytes(b"x")  # (an empty file is no photo)
    corpus = read_conceptual_captions(tsv, cache)
    assert len(corpus) == 2 and corpus.notes == [
        "train.tsv: 1 caption with bytes that are not UTF-8 (read with \ufffd in their place; save the file as UTF-8)"
    ]


def test_a_karpathy_file_without_its_images_is_named_as_one(tmp_path):
    """{"dataset": "x"} was read as captions: one photo named "dataset", captioned "x"."""
    from capsight.training.readers import read_corpus

    (tmp_path / "dataset_flickr8k.json").write_text('{"dataset": "flickr8k"}')
    with pytest.raises(DatasetError, match="not a Karpathy split file .no 'images' list"):
        read_corpus(tmp_path / "dataset_flickr8k.json")


def test_a_token_file_in_latin_1_says_its_bytes_were_replaced(tmp_path):
    """ "A café woman" became "A caf\ufffd woman" without a word."""
    (tmp_path / "Flickr8k.token.txt").write_bytes(
        b"0.jpg#0\tA caf\xe9 woman\n1.jpg#0\ta dog\n2.jpg#0\ta cat\n"
    )
    corpus = load_corpus(tmp_path)
    assert any("1 line with bytes that are not UTF-8" in note for note in corpus.notes)


def test_a_bom_and_extra_columns_stay_out_of_the_captions(tmp_path):
    """A TSV saved with a BOM had "\ufeffa" as its first caption's first word (the Python
    tokenizer kept it, so it never matched); a token file's third column joined the caption."""
    from capsight.training.readers.conceptual_captions import cache_file_name

    tsv = tmp_path / "train.tsv"
    tsv.write_bytes("\ufeffa dog\thttp://example.com/a.jpg\n".encode())
    (cache := tmp_path / "cache").mkdir()
    (cache / cache_file_name("http://example.com/a.jpg")).write_bytes(b"x")
    corpus = read_conceptual_captions(tsv, cache)
    assert [c for image in corpus.images.values() for c in image.captions] == ["a dog"]
    (tmp_path / "Flickr8k.token.txt").write_text(
        "0.jpg#0\tA dog .\textra\n1.jpg#0\ta dog\n2.jpg#0\ta cat\t\n"
    )
    corpus = load_corpus(tmp_path)
    assert corpus.images["0.jpg"].captions == ("A dog .",)
    assert corpus.images["2.jpg"].captions == ("a cat",)
    assert any("1 line with columns after the caption" in note for note in corpus.notes)
