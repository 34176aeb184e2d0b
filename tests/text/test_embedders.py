"""Text embedders: unit rows, meaning-aware distances, clean loading, errors by name."""

from __future__ import annotations

import numpy as np
import pytest

from capsight.errors import ModelNotFound
from capsight.text.embedders import create_text_embedder

DOG_BEACH = "a dog runs along the beach"
DOG_SHORE = "a puppy is running on the sand by the sea"
SOUP = "a bowl of tomato soup on a kitchen table"

pytestmark = pytest.mark.slow  # loading MiniLM's weights takes a fraction of a second


@pytest.fixture(scope="module")
def minilm():
    return create_text_embedder("minilm")


@pytest.fixture(scope="module")
def word_mean():
    return create_text_embedder("word-mean")


def test_minilm_paraphrases_closer_than_unrelated(minilm):
    a, b, c = minilm.embed([DOG_BEACH, DOG_SHORE, SOUP])  # (384,) each
    assert a @ b > 0.5
    assert a @ b > a @ c + 0.3


def test_minilm_rows_are_unit_float32(minilm):
    rows = minilm.embed([DOG_BEACH, SOUP, "x", "word " * 400])
    assert rows.shape == (4, 384) and rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)


def test_minilm_batches_agree(minilm):
    texts = [DOG_BEACH, DOG_SHORE, SOUP]
    assert np.allclose(minilm.embed(texts, batch_size=1), minilm.embed(texts), atol=1e-5)


def test_minilm_reads_past_128_tokens(minilm):
    """sentence-transformers truncates MiniLM at 256 word pieces; so must we (was 128)."""
    prefix = "the cat sat on the mat. " * 25  # about 175 word pieces
    a, b = minilm.embed([prefix + "dogs", prefix + "a bowl of soup with bread and butter"])
    assert a @ b < 0.9999


def test_minilm_matches_transformers_bert(minilm):
    """The project's own BERT gives what transformers' BertModel + mean pooling gives."""
    transformers = pytest.importorskip("transformers")
    import torch

    from capsight.text.embedders import minilm_path

    texts = [DOG_BEACH, SOUP, "A man's red-shirted friend climbs; others watch!", "word " * 300]
    path = minilm_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModel.from_pretrained(path).eval()
    with torch.no_grad():
        batch = tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        hidden = model(**batch).last_hidden_state  # (B, T, 384)
    mask = batch["attention_mask"].unsqueeze(-1).float()  # (B, T, 1)
    pooled = ((hidden * mask).sum(1) / mask.sum(1)).numpy()  # (B, 384)
    expected = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
    assert np.abs(minilm.embed(texts) - expected).max() < 1e-5
    pieces, _ = minilm.word_vectors(texts[2])
    ids = tokenizer(texts[2], add_special_tokens=False)["input_ids"]
    assert pieces == tokenizer.convert_ids_to_tokens(ids)


def test_empty_captions_give_zero_rows(minilm, word_mean):
    for embedder in (minilm, word_mean):
        rows = embedder.embed(["", "  ", SOUP])
        assert not rows[:2].any(), embedder.name
        assert np.linalg.norm(rows[2]) == pytest.approx(1.0, abs=1e-5)
    assert minilm.embed([]).shape == (0, 384)


def test_word_mean_shape_norm_and_similarity(word_mean):
    rows = word_mean.embed([DOG_BEACH, "a dog runs along the beach today", SOUP])
    assert rows.shape == (3, 384) and rows.dtype == np.float32
    assert np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    assert rows[0] @ rows[1] > rows[0] @ rows[2]
    pieces, vectors = word_mean.word_vectors(DOG_BEACH)
    assert pieces[:2] == ["a", "dog"] and vectors.shape == (len(pieces), 384)


def test_word_mean_is_the_mean_of_word_vectors(word_mean):
    _, vectors = word_mean.word_vectors(SOUP)  # (T, 384)
    mean = vectors.mean(axis=0)
    assert np.allclose(word_mean.embed([SOUP])[0], mean / np.linalg.norm(mean), atol=1e-6)


def test_loading_prints_nothing(capfd):
    from capsight.text.embedders import MiniLMEmbedder

    MiniLMEmbedder()  # a fresh load, past the factory's cache
    out, err = capfd.readouterr()
    assert "Loading weights" not in out + err
    assert err.strip() == "" and out.strip() == ""


def test_unknown_name_raises_model_not_found():
    with pytest.raises(ModelNotFound, match="'glove'.*minilm, word-mean"):
        create_text_embedder("glove")


def test_a_text_embedder_named_in_capitals_gets_the_name_it_meant():
    """ "MiniLM" was refused where --metric EUCLIDEAN is taken, with no word of why."""
    import pytest

    from capsight.errors import ModelNotFound
    from capsight.text.embedders import create_text_embedder

    with pytest.raises(ModelNotFound, match=r"^unknown text embedder 'MiniLM' \(names are lower "
                                            r"case: did you mean 'minilm'\?\); choose one of"):  # fmt: skip
        create_text_embedder("MiniLM")
    with pytest.raises(ModelNotFound, match=r"^unknown text embedder 'bert'; choose one of"):
        create_text_embedder("bert")
