import pytest
import torch

from capsight.captioning.model import build_model
from capsight.captioning.vocabulary import Vocabulary
from capsight.training.cider import CiderD
from capsight.training.scst import sample_with_log_probs, scst_loss

REFS = [["a dog runs on grass", "a brown dog runs"], ["a man rides a bike", "a man on a bicycle"]]


def test_cider_d_matches_pycocoevalcap_with_the_same_document_frequencies():
    cider_module = pytest.importorskip("pycocoevalcap.cider.cider")
    candidates = ["a dog runs on the grass", "a man on a bike"]
    _, expected = cider_module.Cider().compute_score(
        {i: r for i, r in enumerate(REFS)}, {i: [c] for i, c in enumerate(candidates)}
    )
    ours = CiderD(REFS).scores(candidates, REFS)
    assert ours == pytest.approx(list(expected), rel=1e-6)


def test_scst_loss_samples_rewards_and_gradients():
    vocab = Vocabulary.build([r.split() for refs in REFS for r in refs], min_count=1)
    torch.manual_seed(0)
    model = build_model(
        {
            "architecture": "show-and-tell",
            "vocab_size": len(vocab),
            "embed_dim": 16,
            "hidden_dim": 16,
        }
    )
    grid = torch.randn(2, 49, 1280)
    gen = torch.Generator().manual_seed(0)
    ids, logp, mask = sample_with_log_probs(
        model, grid, samples=3, max_length=6, generator=gen, top_k=3
    )
    assert ids.shape == logp.shape == mask.shape and ids.shape[0] == 6
    assert bool((logp[mask.bool()] <= 0).all())
    loss, reward = scst_loss(
        model, grid, REFS, vocab, CiderD(REFS), samples=3, max_length=6, top_k=3
    )
    assert 0.0 <= reward <= 10.0 and torch.isfinite(loss)
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_end_word_makes_a_dangling_ending_score_lower():
    """With an end word, "... on the <eos>" loses the credit a complete sentence earns."""
    from capsight.training.train import END_WORD, _with_end

    refs = _with_end(REFS, True)
    assert refs[0][0] == f"a dog runs on grass {END_WORD}" and _with_end(REFS, False) is REFS
    cider = CiderD(refs)
    complete, dangling = cider.scores(
        [f"a dog runs on grass {END_WORD}", f"a dog runs on {END_WORD}"], [refs[0], refs[0]]
    )
    plain = CiderD(REFS).scores(["a dog runs on grass", "a dog runs on"], [REFS[0], REFS[0]])
    assert complete > dangling
    assert complete - dangling > plain[0] - plain[1]  # the end word widens the gap


def test_scst_loss_with_an_end_word_runs():
    vocab = Vocabulary.build([r.split() for refs in REFS for r in refs], min_count=1)
    torch.manual_seed(0)
    model = build_model(
        {
            "architecture": "show-and-tell",
            "vocab_size": len(vocab),
            "embed_dim": 16,
            "hidden_dim": 16,
        }
    )
    refs = [[f"{r} <eos>" for r in rs] for rs in REFS]
    loss, reward = scst_loss(
        model,
        torch.randn(2, 49, 1280),
        refs,
        vocab,
        CiderD(refs),
        samples=3,
        max_length=6,
        top_k=3,
        end_word="<eos>",
    )
    assert torch.isfinite(loss) and 0.0 <= reward <= 10.0
