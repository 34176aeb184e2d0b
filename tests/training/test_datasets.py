from pathlib import Path

import pytest

from capsight.errors import InputNotFound, InvalidParameter
from capsight.training.datasets import load_corpus, read_flickr8k_text


def test_caption_folder_reader(caption_folder):
    corpus = load_corpus(caption_folder)
    assert len(corpus) == 12
    assert [len(corpus.split(s)) for s in ("train", "val", "test")] == [8, 2, 2]
    image = corpus.split("train")[0]
    assert image.path.is_file() and len(image.captions) == 2
    with pytest.raises(InvalidParameter):
        corpus.split("holdout")


def test_caption_folder_without_splits_gets_a_seeded_split(caption_folder):
    (caption_folder / "splits.json").unlink()
    a, b = load_corpus(caption_folder), load_corpus(caption_folder)
    assert a.splits == b.splits
    assert sorted(sum(a.splits.values(), [])) == sorted(a.images)
    # A splits.json that names no split is as none: eval's "no 'test' split; it has" had
    # listed nothing, while train split at random.
    (caption_folder / "splits.json").write_text("{}")
    empty = load_corpus(caption_folder)
    assert empty.splits == a.splits and "splits.json: names no split" in empty.notes
    (caption_folder / "splits.json").write_text(" ")
    from capsight.errors import DatasetError

    with pytest.raises(DatasetError, match="is empty; it should hold the splits "):
        load_corpus(caption_folder)  # (not "the captions", which a split file does not hold)


def test_flickr8k_text_files(tmp_path):
    (tmp_path / "Flicker8k_Dataset").mkdir()
    lines = [f"{n}.jpg#{i}\tA dog number {n} runs ." for n in range(4) for i in range(5)]
    (tmp_path / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "Flickr_8k.trainImages.txt").write_text("0.jpg\n1.jpg\n")
    (tmp_path / "Flickr_8k.devImages.txt").write_text("2.jpg\n")
    (tmp_path / "Flickr_8k.testImages.txt").write_text("3.jpg\nmissing.jpg\n")
    corpus = load_corpus(tmp_path)
    assert corpus.splits == {"train": ["0.jpg", "1.jpg"], "val": ["2.jpg"], "test": ["3.jpg"]}
    assert len(corpus.images["1.jpg"].captions) == 5
    assert corpus.images["1.jpg"].path == tmp_path / "Flicker8k_Dataset" / "1.jpg"
    assert read_flickr8k_text(tmp_path).splits == corpus.splits
    # The token file twice over (two downloads concatenated): each photo had had 10 captions.
    (tmp_path / "Flickr8k.token.txt").write_text("\n".join(lines + lines) + "\n")
    twice = read_flickr8k_text(tmp_path)
    assert len(twice.images["1.jpg"].captions) == 5
    assert (
        "Flickr8k.token.txt: 20 lines given twice (the same photo#n and caption) left out"
        in twice.notes
    )


def test_unknown_layout_is_a_clear_error(tmp_path):
    with pytest.raises(InputNotFound, match="not a known caption dataset"):
        load_corpus(tmp_path)
    with pytest.raises(InputNotFound):
        load_corpus(tmp_path / "absent")


@pytest.mark.data
def test_shared_flickr8k_split_sizes(shared_data):
    corpus = load_corpus(shared_data / "flickr8k")
    assert [len(corpus.split(s)) for s in ("train", "val", "test")] == [6091, 1000, 875]
    assert all(len(im.captions) == 5 for im in corpus.split("test"))


def test_blank_captions_and_unknown_split_entries_are_left_out_with_a_note(caption_folder):
    import json

    captions = json.loads((caption_folder / "captions.json").read_text())
    captions["red-square-0.jpg"] = ["", "  a red square ."]
    captions["red-square-1.jpg"] = ["   "]
    (caption_folder / "captions.json").write_text("\ufeff" + json.dumps(captions))  # with a BOM
    splits = json.loads((caption_folder / "splits.json").read_text())
    splits["val"].append("not-there.jpg")
    (caption_folder / "splits.json").write_text(json.dumps(splits))
    corpus = load_corpus(caption_folder)
    assert corpus.images["red-square-0.jpg"].captions == ("a red square .",)
    assert "red-square-1.jpg" not in corpus.images
    assert [im.key for im in corpus.split("val")] == ["red-square-0.jpg"]  # (-1 had no caption)
    notes = " | ".join(corpus.notes)
    assert "2 blank captions" in notes and "1 photo with no caption" in notes
    assert "2 of the 3 photos listed for 'val'" in notes


@pytest.mark.parametrize(
    "captions, splits, fragment",
    [
        ("{not json", None, "not valid JSON"),
        ("", None, r"captions.json: is empty; it should hold the captions as JSON"),
        ("{}", None, r"captions.json: has no photos with captions \(an empty JSON object\)"),
        ('["a.jpg"]', None, "JSON object mapping each photo"),
        ('{"a.jpg": 5}', None, "list of caption strings"),
        ('{"a.jpg": ["a cat"]}', '["train"]', "mapping train/val/test to lists"),
    ],
)
def test_a_malformed_caption_folder_is_a_dataset_error(tmp_path, captions, splits, fragment):
    from capsight.errors import DatasetError

    (tmp_path / "captions.json").write_text(captions)
    if splits is not None:
        (tmp_path / "splits.json").write_text(splits)
    with pytest.raises(DatasetError, match=fragment):
        load_corpus(tmp_path)


def test_a_latin_1_caption_file_is_said_to_be_so_not_broken_json(tmp_path):
    """Its JSON was fine; "not valid JSON ('utf-8' codec can't decode ...)" sent users to fix it."""
    from capsight.errors import DatasetError

    (tmp_path / "captions.json").write_bytes('{"a.jpg": ["a café"]}'.encode("latin-1"))
    with pytest.raises(DatasetError, match=r"captions.json: not UTF-8 text \(byte 17: .*\), as "
                                           r"JSON must be: save the file as UTF-8$"):  # fmt: skip
        load_corpus(tmp_path)


def test_flickr8k_text_without_split_lists_is_split_in_proportion(tmp_path):
    lines = [f"{n}.jpg#{i}\tA dog number {n} runs ." for n in range(300) for i in range(2)]
    extra = "1.jpg#2 spaces, no tab\n\ta caption without a photo\n#3\tnor this one\n"
    (tmp_path / "Flickr8k.token.txt").write_text("\n".join(lines) + "\n" + extra)
    corpus = load_corpus(tmp_path)
    sizes = [len(corpus.splits[s]) for s in ("train", "val", "test")]
    assert sum(sizes) == 300 and all(20 <= n <= 40 for n in sizes[1:]), sizes  # a tenth each
    assert "" not in corpus.images  # (a photo of no name was the photo folder itself)
    assert "Flickr8k.token.txt: 1 line without a tab left out" in corpus.notes
    assert "Flickr8k.token.txt: 2 lines with no photo name left out" in corpus.notes
    assert any("split by a hash of each name" in n for n in corpus.notes)


def test_photos_added_to_a_folder_never_move_a_trained_photo_into_test_or_val():
    """The split was drawn anew from the folder's photos at each command: with 4 photos added,
    `capsight eval --split test` scored a model on 4 photos it had been trained on."""
    from capsight.training.datasets import CaptionCorpus, CaptionedImage, draw_splits

    def split(n):
        images = {f"{i}.jpg": CaptionedImage(f"{i}.jpg", Path(f"{i}.jpg"), ("a dog",))
                  for i in range(n)}  # fmt: skip
        return draw_splits(CaptionCorpus("mine", images)).splits

    before = split(40)
    assert all(before[s] for s in ("train", "val", "test"))
    for grown in (44, 60, 400):
        after = split(grown)
        assert not set(before["train"]) & {*after["val"], *after["test"]}, grown
    assert split(3)["val"] and split(3)["test"]  # a tiny folder still has one of each
    # ... and never an empty train split (three photos can all fall in the held bands)
    from capsight.training.datasets import val_from_train

    for start in range(0, 3000, 3):
        images = {f"{i}.jpg": CaptionedImage(f"{i}.jpg", Path(f"{i}.jpg"), ("a dog",))
                  for i in range(start, start + 3)}  # fmt: skip
        drawn = draw_splits(CaptionCorpus("mine", images)).splits
        assert len(drawn["train"]) >= 1 and sum(map(len, drawn.values())) == 3, start
        two = CaptionCorpus("coco", images, {"train": sorted(images)[:2]})
        assert len(val_from_train(two).splits["train"]) == 1, start


def test_a_split_train_makes_for_itself_is_explained_when_asked_for():
    """eval --split val of data with no val split: train had said it held some train photos
    out to validate on, and eval answered only "has no 'val' split"."""

    from capsight.training.datasets import CaptionCorpus, CaptionedImage

    images = {k: CaptionedImage(k, Path(k), ("a dog",)) for k in ("1.jpg", "2.jpg")}
    corpus = CaptionCorpus("mine", images, {"train": ["1.jpg", "2.jpg"]})
    with pytest.raises(InvalidParameter, match="has no 'val' split; it has train; capsight train "
                       "validates on a tenth of the train photos it holds out itself"):  # fmt: skip
        corpus.split("val")
    with pytest.raises(InvalidParameter, match="restval photos are part of its train split"):
        corpus.split("restval")


@pytest.mark.parametrize("photos", ["Flicker8k_Dataset", "Flickr8k_Dataset"])
def test_the_flickr8k_archives_unzipped_side_by_side_are_read(tmp_path, photos):
    """Flickr8k_text/ beside the photo folder, under either spelling, given as the text folder
    or the folder both unzipped into (that had been "not a known caption dataset", and the
    second spelling beside it "none of the photos could be read")."""
    from PIL import Image

    text = tmp_path / "Flickr8k_text"
    text.mkdir()
    (text / "Flickr8k.token.txt").write_text("1.jpg#0\tA dog runs .\n2.jpg#0\tA cat sits .\n")
    (tmp_path / photos).mkdir()
    for name in ("1.jpg", "2.jpg"):
        Image.new("RGB", (8, 8)).save(tmp_path / photos / name)
    for given in (text, tmp_path):
        corpus = load_corpus(given)
        assert all(image.path.is_file() for image in corpus.images.values()), given
