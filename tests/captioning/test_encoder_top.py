import pytest
import torch

from capsight.captioning.base import DecodingOptions
from capsight.captioning.encoder_top import EncoderTop
from capsight.captioning.model import build_model
from capsight.errors import InvalidParameter, ModelNotFound


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
    trained = {
        n.split(".")[0] + "." + n.split(".")[1]
        for n, p in top.named_parameters()
        if p.grad is not None
    }
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


def test_the_folded_copy_fuses_its_convolutions_in_inference(encoder, photo, monkeypatch):
    from capsight.vision import fused_convolution

    calls = []
    real = fused_convolution.conv
    monkeypatch.setattr(fused_convolution, "conv", lambda *a, **k: calls.append(1) or real(*a, **k))
    if not fused_convolution._operation_works():
        pytest.skip("this torch has no oneDNN fused convolution")
    top = EncoderTop("efficientnet-lite0", trainable_blocks=2).eval()
    encoded = encoder.encode([photo("coffee")])
    calls.clear()
    with torch.inference_mode():
        grid = top(encoded.hidden)
        assert len(calls) == 4 * 3 + 1  # four blocks' three convolutions and the head
        monkeypatch.setattr(fused_convolution, "_operation_works", lambda: False)
        plain = top(encoded.hidden)  # the same folded copy, convolutions and ReLU6 apart
    assert len(calls) == 4 * 3 + 1
    assert torch.allclose(grid, plain, atol=1e-5)


def test_the_folded_copy_is_kept_until_the_weights_change():
    top = EncoderTop("efficientnet-lite0", trainable_blocks=2).eval()
    hidden = torch.randn(2, 192, 7, 7)
    with torch.inference_mode():
        first = top(hidden)
    copy = top._inference_copy()
    top.eval()
    top.train(False)  # what decoding does around every batch: the copy stays
    assert top._inference_copy() is copy
    with torch.no_grad():
        top.head_conv.weight.mul_(2.0)  # an in-place change in eval mode, as an optimizer step
    assert top._inference_copy() is not copy
    with torch.inference_mode():
        assert not torch.allclose(top(hidden), first)
    copy = top._inference_copy()
    top.to(torch.float64).to(torch.float32)  # new storage: a new copy
    assert top._inference_copy() is not copy


def test_a_fine_tuned_member_joins_an_ensemble_over_two_encoders_through_its_own_grid():
    from capsight.captioning.decoding import decode
    from capsight.captioning.ensemble import CaptionEnsemble

    small = {"architecture": "show-attend-tell", "vocab_size": 20, "projected_dim": 16, "embed_dim": 16,
             "hidden_dim": 16, "attention_dim": 16}  # fmt: skip
    tuned = build_model({**small, "fine_tune_blocks": 1}).eval()  # reads Lite0's hidden map
    lite2 = build_model({**small, "encoder": "efficientnet-lite2"}).eval()  # reads a 9x9 grid
    with pytest.raises(ModelNotFound, match="same encoder output"):
        CaptionEnsemble([tuned, lite2])  # one encoder for both: they would read one tensor
    pair = CaptionEnsemble([tuned, lite2], positions=[49, 81]).eval()
    assert pair.feature_input == "grid"
    hidden, grid2 = torch.randn(2, 192, 7, 7), torch.randn(2, 81, 1280)
    with torch.inference_mode():
        own = CaptionEnsemble.member_grid(tuned, torch.zeros(2, 49, 1280), hidden)
        assert torch.allclose(own, tuned.encoder_top(hidden))  # its top's grid, not the shared one
        assert torch.equal(CaptionEnsemble.member_grid(lite2, grid2, None), grid2)
        # Started from that grid, the member decodes as it does from the hidden map itself.
        assert torch.allclose(tuned.start(own)["feats"], tuned.start(hidden)["feats"], atol=1e-5)
        results = decode(
            pair,
            torch.cat([own, grid2], dim=1),
            DecodingOptions(method="beam", beam_width=2, max_length=4),
        )
    assert len(results) == 2
