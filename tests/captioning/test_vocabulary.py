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
        "a", "black", "dog", "'s", "ball", "near", "the", "cafe", "and", "bar",
    ]
    assert normalize_caption("  'Quoted'   words!! ") == "quoted words"
    assert tokenize("...") == []


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
