"""Engines by name: checked before anything loads, and built once per process."""

from __future__ import annotations

import pytest

from capsight.errors import InvalidParameter


def test_an_engine_is_built_once_and_names_of_the_wrong_kind_are_one_line(monkeypatch):
    """A review moved the cache from create_engine onto its name check, so every classify call
    built its engine again (CLIP's weights loaded each time); a list as a name was a TypeError."""
    import capsight.classify.engines as engines

    assert engines.create_engine("offline") is engines.create_engine("offline")
    for name, clip in ((["offline"], None), ({}, None), ("clip", ["a"])):
        with pytest.raises(InvalidParameter, match="expected a name"):
            engines.create_engine(name, clip)
    with pytest.raises(InvalidParameter, match="unknown engine 'nope'"):
        engines.create_engine("nope")


def test_build_takes_the_class_names_as_classify_does(fake_text_embedder):
    """engine.build(["a", "b"]) was an AttributeError ('list' has no 'imagenet_indices')."""
    import capsight.classify.engines as engines

    engine = engines.create_engine("offline")
    assert engine.build(["cat", "dog"]).labels == engine.build("cat, dog").labels == ["cat", "dog"]
    with pytest.raises(InvalidParameter, match="the class list is empty"):
        engine.build([])
