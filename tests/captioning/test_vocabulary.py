from capsight.captioning.vocabulary import (
    BOS_ID,
    EOS_ID,
    UNK_ID,
    Vocabulary,
    normalize_caption,
    tokenize,
)


def test_tokenize_normalises_case_punctuation_accents_and_possessives():
    assert tokenize("A black dog's ball , near the Café & bar .") == [
        "a",
        "black",
        "dog",
        "'s",
        "ball",
        "near",
        "the",
        "cafe",
        "and",
        "bar",
    ]
    assert normalize_caption("  'Quoted'   words!! ") == "quoted words"
    assert tokenize("...") == []
    # Typographic apostrophes, invisible separators and the sharp s survive the ASCII fold.
    assert (
        normalize_caption("The ball\u2019s Stra\u00dfe: a dog\u200bruns")
        == "the ball 's strasse a dog runs"
    )
    # Latin letters that have no accent to strip had been dropped ("rsted ble odz uong").
    assert normalize_caption("Ørsted æble Łódź đường Œuvre") == "orsted aeble lodz duong oeuvre"


def test_vocabulary_min_count_order_and_unknown_words():
    vocab = Vocabulary.build([["a", "dog"], ["a", "cat"], ["a", "dog"]], min_count=2)
    assert vocab.itos[4:] == ["a", "dog"]  # by count, "cat" (1) dropped
    assert vocab.encode(["a", "cat"], add_bos_eos=True) == [BOS_ID, 4, UNK_ID, EOS_ID]
    assert vocab.decode([BOS_ID, 5, 4, EOS_ID, 5]) == ["dog", "a"]


def test_vocabulary_json_round_trip(tmp_path):
    vocab = Vocabulary.build([["b", "a", "a"]], min_count=1)
    vocab.save(tmp_path / "vocab.json")
    again = Vocabulary.load(tmp_path / "vocab.json")
    assert again.itos == vocab.itos and again.stoi["a"] == vocab.stoi["a"]


def test_a_damaged_vocabulary_file_is_a_clear_error(tmp_path):
    import pytest

    from capsight.errors import ModelNotFound

    (tmp_path / "vocab.json").write_text('{"itos": ["<pad>", "<bos>"')
    with pytest.raises(ModelNotFound, match="damaged"):
        Vocabulary.load(tmp_path / "vocab.json")


def test_a_checkpoint_whose_vocabulary_does_not_fit_its_model_is_refused(tmp_path):
    import json
    import shutil
    from pathlib import Path

    import pytest

    import capsight
    from capsight.captioning.checkpoint import load_checkpoint
    from capsight.errors import ModelNotFound

    folder = tmp_path / "show-and-tell"
    shutil.copytree(Path(capsight.__file__).parent / "models" / "show-and-tell", folder)
    vocab = json.loads((folder / "vocab.json").read_text())
    vocab["itos"] = vocab["itos"][:100]
    (folder / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(ModelNotFound, match="has 100 words but the model was trained with"):
        load_checkpoint(folder)
