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
