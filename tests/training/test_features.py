import json
from pathlib import Path

import numpy as np
import pytest

from capsight.errors import CapsightError
from capsight.training.datasets import load_corpus
from capsight.training.features import FeatureCache


@pytest.mark.slow
def test_feature_cache_builds_resumes_and_flips(caption_folder, tmp_path, encoder):
    corpus = load_corpus(caption_folder)
    cache = FeatureCache.build(corpus, encoder, tmp_path / "cache", batch_size=5, progress=False)
    assert cache.grid.shape == (12, 49, 1280) and cache.grid.dtype == np.float16
    assert np.allclose(
        cache.pooled.astype(np.float32), cache.grid.astype(np.float32).mean(1), atol=2e-2
    )
    row = cache.rows(["red-square-0.jpg"])[0]
    assert cache.keys[row] == "red-square-0.jpg"

    # An interrupted extraction resumes: pretend only 5 photos were done and wipe the rest.
    meta_file = cache.folder / "meta.json"
    meta = json.loads(meta_file.read_text())
    expected = np.array(cache.grid[5:])
    meta["done"] = 5
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(CapsightError, match="incomplete"):
        FeatureCache.open(cache.folder)
    again = FeatureCache.build(corpus, encoder, tmp_path / "cache", batch_size=5, progress=False)
    assert np.allclose(np.array(again.grid[5:]), expected, atol=1e-3)

    flipped = FeatureCache.build(corpus, encoder, tmp_path / "cache", flip=True, progress=False)
    assert flipped.folder.name.endswith("-flip")
    assert not np.allclose(np.array(flipped.grid[row]), np.array(cache.grid[row]))


@pytest.mark.slow
def test_an_old_cache_gets_its_hidden_maps_added(caption_folder, tmp_path, encoder):
    corpus = load_corpus(caption_folder)
    cache = FeatureCache.build(corpus, encoder, tmp_path / "cache", batch_size=5, progress=False)
    assert cache.features("hidden").shape == (12, 192, 7, 7)
    grid, hidden = np.array(cache.grid), np.array(cache.hidden)
    # A cache from before hidden maps were kept: no hidden.npy, no progress recorded for it.
    meta_file = cache.folder / "meta.json"
    meta = json.loads(meta_file.read_text())
    del meta["hidden_done"]
    meta_file.write_text(json.dumps(meta))
    (cache.folder / "hidden.npy").unlink()
    old = FeatureCache.open(cache.folder)
    assert old.hidden is None
    with pytest.raises(CapsightError, match="no hidden maps"):
        old.features("hidden")
    upgraded = FeatureCache.build(corpus, encoder, tmp_path / "cache", batch_size=5, progress=False)
    assert np.array_equal(np.array(upgraded.grid), grid)
    assert np.allclose(np.array(upgraded.hidden), hidden, atol=1e-3)


@pytest.mark.slow
def test_a_failed_build_or_other_photos_never_reuse_stale_features(
    caption_folder, tmp_path, encoder
):
    import shutil

    from PIL import Image

    from capsight.errors import InputNotFound

    corpus = load_corpus(caption_folder)
    first = np.array(FeatureCache.build(corpus, encoder, tmp_path / "cache", progress=False).grid)

    # Another corpus under the same name whose build fails (a photo is missing) ...
    other = tmp_path / "other" / caption_folder.name
    shutil.copytree(caption_folder, other)
    (other / "images" / "blue-square-0.jpg").unlink()
    with pytest.raises(InputNotFound):
        FeatureCache.build(load_corpus(other), encoder, tmp_path / "cache", progress=False)
    # ... leaves nothing the first corpus could mistake for its features.
    again = FeatureCache.build(corpus, encoder, tmp_path / "cache", progress=False)
    assert np.array_equal(np.array(again.grid), first) and np.abs(first).max() > 0

    # The same file names with other photos (file sizes differ) are encoded afresh, into a
    # folder of their own: the first corpus's complete cache is kept, not evicted.
    for path in (other / "images").glob("*.jpg"):
        Image.new("RGB", (40, 40), (10, 200, 10)).save(path)
    Image.new("RGB", (40, 40), (10, 200, 10)).save(other / "images" / "blue-square-0.jpg")
    changed = FeatureCache.build(load_corpus(other), encoder, tmp_path / "cache", progress=False)
    assert not np.allclose(np.array(changed.grid, np.float32), first.astype(np.float32), atol=0.1)
    assert (
        changed.folder.name.startswith(again.folder.name + "-") and changed.folder != again.folder
    )
    kept = FeatureCache.open(FeatureCache.folder_of(tmp_path / "cache", corpus, encoder.name, 224))
    assert np.array_equal(np.array(kept.grid), first)
    found = FeatureCache.folder_of(tmp_path / "cache", load_corpus(other), encoder.name, 224)
    assert found == changed.folder  # and each finds its own when opening


def test_a_photo_unreadable_when_cached_is_recorded_and_never_batched(
    caption_folder, tmp_path, encoder
):
    from capsight.captioning.vocabulary import Vocabulary
    from capsight.errors import DatasetError
    from capsight.training.batches import CaptionBatches

    (caption_folder / "images" / "red-square-0.jpg").write_bytes(b"\xff\xd8\xff\xe0 cut short")
    (caption_folder / "images" / "red-square-1.jpg").write_bytes(b"")  # a failed copy
    corpus = load_corpus(caption_folder)
    cache = FeatureCache.build(corpus, encoder, tmp_path / "cache", progress=False)
    assert list(cache.unreadable) == ["red-square-0.jpg", "red-square-1.jpg"]
    assert FeatureCache.open(cache.folder).unreadable == cache.unreadable  # kept in meta.json
    images = [corpus.images[k] for k in sorted(corpus.images)]
    with pytest.raises(
        DatasetError, match="2 of these photos could not be read .*red-square-0.jpg"
    ):
        CaptionBatches.from_corpus(images, cache, Vocabulary(["a"]))
    readable = [im for im in images if im.key not in cache.unreadable]
    assert len(CaptionBatches.from_corpus(readable, cache, Vocabulary(["a"]))) == len(images) - 2


@pytest.mark.parametrize("flip", [False, True])
def test_a_photo_unreadable_then_made_readable_is_encoded_on_the_next_build(
    caption_folder, tmp_path, encoder, monkeypatch, flip
):
    """The note says "make the file readable"; done, the photo had stayed left out (the same
    name and size: the cache was reused, its rows a black image's)."""
    from capsight.errors import ImageLoadError
    from capsight.training import features

    corpus = load_corpus(caption_folder)
    real_load = features.load_image

    def refused(path):  # as a file without read permission is, for a user who is not root
        if Path(path).name == "red-square-0.jpg":
            raise ImageLoadError(f"{path}: permission denied; make the file readable")
        return real_load(path)

    build = dict(flip=flip, batch_size=5, progress=False)
    monkeypatch.setattr(features, "load_image", refused)
    first = FeatureCache.build(corpus, encoder, tmp_path / "cache", **build)
    assert list(first.unreadable) == ["red-square-0.jpg"]
    row = first.rows(["red-square-0.jpg"])[0]
    black = np.array(first.grid[row])
    again = FeatureCache.build(corpus, encoder, tmp_path / "cache", **build)  # still refused
    assert list(again.unreadable) == ["red-square-0.jpg"]
    monkeypatch.setattr(features, "load_image", real_load)  # the file made readable
    again = FeatureCache.build(corpus, encoder, tmp_path / "cache", **build)
    assert again.folder == first.folder and again.unreadable == {}
    assert FeatureCache.open(again.folder).unreadable == {}  # kept so in meta.json
    fresh = FeatureCache.build(corpus, encoder, tmp_path / "fresh", **build)
    for name in ("grid", "pooled", "probs", "hidden"):
        ours, theirs = getattr(again, name), getattr(fresh, name)
        assert np.allclose(np.array(ours[row]), np.array(theirs[row]), atol=1e-3), name
    assert not np.allclose(np.array(again.grid[row]), black)


def test_a_cache_folder_that_cannot_be_made_is_one_line(
    caption_folder, tmp_path, encoder, monkeypatch
):
    (tmp_path / "file").write_text("x")
    with pytest.raises(CapsightError, match="--cache-dir .*: cannot create"):
        FeatureCache.build(
            load_corpus(caption_folder), encoder, tmp_path / "file" / "c", progress=False
        )
    # The default (from $CAPSIGHT_CACHE) is no --cache-dir the user gave: said as what it is.
    monkeypatch.setenv("CAPSIGHT_CACHE", str(tmp_path / "file"))  # after import: still read
    with pytest.raises(
        CapsightError, match=r"^the feature cache \(under \$CAPSIGHT_CACHE, or ~/.cache/capsight; "
    ):
        FeatureCache.build(
            load_corpus(caption_folder), encoder, tmp_path / "file" / "features", progress=False
        )


@pytest.mark.slow
def test_a_cut_short_or_damaged_cache_is_refused_and_built_again(
    caption_folder, tmp_path, encoder, capsys
):
    """A grid.npy cut to 1,000 bytes was padded with zeros by numpy and trained on."""
    corpus = load_corpus(caption_folder)
    cache = FeatureCache.build(corpus, encoder, tmp_path / "cache", progress=False)
    expected = np.array(cache.grid)
    folder = cache.folder
    del cache
    with open(folder / "grid.npy", "r+b") as f:
        f.truncate(1000)
    with pytest.raises(CapsightError, match=r"damaged \(grid.npy is cut short"):
        FeatureCache.open(folder)
    rebuilt = FeatureCache.build(corpus, encoder, tmp_path / "cache", progress=False)
    assert "grid.npy cut short or damaged; encoding the photos again" in capsys.readouterr().err
    assert np.allclose(
        np.array(rebuilt.grid).astype(np.float32), expected.astype(np.float32), atol=1e-2
    )
    assert np.abs(np.array(rebuilt.grid[-1])).max() > 0  # the last photo's row is no longer zeros

    del rebuilt
    (folder / "meta.json").write_text("{")
    with pytest.raises(CapsightError, match=r"damaged \(meta.json\)"):
        FeatureCache.open(folder)
    assert (
        FeatureCache.build(corpus, encoder, tmp_path / "cache", progress=False).grid.shape
        == expected.shape
    )


def test_the_features_command_reads_what_train_reads_and_says_mistakes_in_one_line(
    caption_folder, tmp_path, capsys
):
    from capsight._cli.tools.features import main

    for argv, fragment in (
        ([str(tmp_path / "gone")], "no such caption file or dataset folder"),
        (
            [str(caption_folder), "--resolution", "5000"],
            "--resolution must be 0 (the encoder's own size) or 32-1024",
        ),
        ([str(caption_folder), "--encoder", "nope"], "nope"),
    ):
        with pytest.raises(SystemExit) as exit_:
            main([*argv, "--cache-dir", str(tmp_path / "cache")])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and fragment in err and "Traceback" not in err, err
        assert err.startswith("python -m capsight.training.features: error: ")
    # A Karpathy split file with its photo folder, as capsight train takes it.
    images = [{"filename": name, "split": "train", "sentences": [{"raw": "a shape"}]}
              for name in sorted(p.name for p in (caption_folder / "images").iterdir())]  # fmt: skip
    (tmp_path / "dataset_shapes.json").write_text(
        json.dumps({"dataset": "shapes", "images": images})
    )
    main([str(tmp_path / "dataset_shapes.json"), "--images", str(caption_folder / "images"),
          "--cache-dir", str(tmp_path / "cache")])  # fmt: skip
    assert "(12, 49, 1280)" in capsys.readouterr().out
    # A test split alone (what cached_eval scores) is cached too: nothing is trained on it here.
    splits = json.loads((caption_folder / "splits.json").read_text())
    (caption_folder / "splits.json").write_text(json.dumps({"test": splits["test"]}))
    main([str(caption_folder), "--cache-dir", str(tmp_path / "cache")])
    assert "(12, 49, 1280)" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/elsewhere", "a/b", "{'x': 1}", "..", ""])
def test_a_dataset_name_is_one_folder_inside_the_cache(tmp_path, name):
    """A Karpathy file's "dataset": "../../escaped" put its features outside --cache-dir."""
    folder = FeatureCache.folder_for(tmp_path / "cache", name, "efficientnet-lite0", 224)
    assert (
        folder.parent == tmp_path / "cache" and ".." not in folder.name and "/" not in folder.name
    )
    assert FeatureCache.folder_for(tmp_path, "flickr8k", "efficientnet-lite0", 224).name == (
        "flickr8k-efficientnet-lite0-224"
    )  # an ordinary name, as before


@pytest.mark.slow
def test_building_a_cache_says_where_it_goes_and_how_large_it_is(
    caption_folder, tmp_path, encoder, capsys
):
    """The cache takes disk (137 MB after five small runs) and had never been named."""
    corpus = load_corpus(caption_folder)
    cache = FeatureCache.build(corpus, encoder, tmp_path / "cache", batch_size=6)
    err = capsys.readouterr().err
    assert f"{cache.folder}: caching the encoder's features of 12 photos here (" in err
    assert " MB; later runs on these photos reuse them)" in err
    FeatureCache.build(corpus, encoder, tmp_path / "cache", batch_size=6)  # found: nothing said
    assert "caching" not in capsys.readouterr().err


def test_the_default_feature_cache_follows_capsight_cache_set_after_import(tmp_path, monkeypatch):
    """The default was read once, at import: a library user who set $CAPSIGHT_CACHE afterwards
    still had features written under ~/.cache."""
    from capsight.training.ensemble_scst import EnsembleScstConfig
    from capsight.training.features import default_cache_dir
    from capsight.training.train import TrainConfig

    monkeypatch.setenv("CAPSIGHT_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "features"
    assert TrainConfig(data="d", out="o").cache_dir == str(tmp_path / "features")
    assert EnsembleScstConfig(data="d", members=[], out="o").cache_dir == str(tmp_path / "features")
