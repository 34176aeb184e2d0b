import pytest
import torch

from capsight.captioning.encoder_top import EncoderTop
from capsight.captioning.model import build_model
from capsight.errors import InvalidParameter


def test_the_copy_recomputes_the_shared_encoders_grid(encoder, photo):
    encoded = encoder.encode([photo("chelsea"), photo("coffee")])
    assert encoded.hidden.shape == (2, 192, 7, 7)
    top = EncoderTop("efficientnet-lite0", trainable_blocks=2)
    grid = top(encoded.hidden)  # (2, 49, 1280)
    assert torch.allclose(grid, encoded.grid, atol=1e-3)
    # Only the hidden map of the images asked for is kept by select().
    assert torch.equal(encoded.select([1]).hidden, encoded.hidden[1:])


def test_only_the_last_blocks_and_the_head_train_and_batchnorm_stays_frozen(encoder, photo):
    top = EncoderTop("efficientnet-lite0", trainable_blocks=1)
    top.train()
    assert all(not m.training for m in top.modules() if isinstance(m, torch.nn.BatchNorm2d))
    hidden = encoder.encode([photo("astronaut")]).hidden
    top(hidden).square().mean().backward()
    trained = {n.split(".")[0] + "." + n.split(".")[1] for n, p in top.named_parameters() if p.grad is not None}
    assert trained == {"blocks.3", "head_conv.weight"}
    assert all(p.grad is None for n, p in top.named_parameters() if "_bn" in n or "head_bn" in n)


def test_block_count_is_checked():
    with pytest.raises(InvalidParameter, match="between 1 and 4"):
        EncoderTop("efficientnet-lite0", trainable_blocks=5)


def test_show_attend_tell_with_fine_tuned_blocks_reads_hidden_maps():
    model = build_model({"architecture": "show-attend-tell", "vocab_size": 20, "fine_tune_blocks": 2,
                         "projected_dim": 16, "embed_dim": 16, "hidden_dim": 16, "attention_dim": 16})  # fmt: skip
    assert model.feature_input == "hidden"
    logits, extras = model(torch.randn(2, 192, 7, 7), torch.randint(0, 20, (4, 6)))
    assert logits.shape == (4, 5, 20) and extras["alphas"].shape == (4, 5, 49)
    plain = build_model({"architecture": "show-attend-tell", "vocab_size": 20})
    assert plain.feature_input == "grid" and plain.encoder_top is None


def test_inference_runs_a_folded_copy_that_is_never_saved(encoder, photo):
    top = EncoderTop("efficientnet-lite0", trainable_blocks=2).eval()
    hidden = encoder.encode([photo("rocket")]).hidden
    with torch.inference_mode():
        folded = top(hidden)
    assert len(top._fused) == 1
    assert torch.allclose(folded, top(hidden), atol=1e-3)  # grad enabled: the BatchNorm path
    assert not any("_fused" in k for k in top.state_dict())
    top.train()
    assert not top._fused  # rebuilt after training changed the weights
