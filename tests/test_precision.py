"""Inference precision: captioners decode in bfloat16 where it pays, with the same captions."""

from __future__ import annotations

import pytest
import torch

from capsight.errors import InvalidParameter
from capsight.precision import inference_precision, precision_setting, uses_bf16


def test_setting_is_read_from_the_environment(monkeypatch):
    monkeypatch.delenv("CAPSIGHT_PRECISION", raising=False)
    assert precision_setting() == "auto"
    monkeypatch.setenv("CAPSIGHT_PRECISION", "FP32")
    assert precision_setting() == "fp32" and not uses_bf16("cpu")
    with inference_precision("cpu"):
        assert not torch.is_autocast_enabled("cpu")
    monkeypatch.setenv("CAPSIGHT_PRECISION", "bf16")
    assert uses_bf16("cpu") and not uses_bf16("meta")  # only CPUs ever autocast
    with inference_precision("cpu"):
        assert torch.is_autocast_enabled("cpu")
    monkeypatch.setenv("CAPSIGHT_PRECISION", "half")
    with pytest.raises(InvalidParameter, match="CAPSIGHT_PRECISION"):
        precision_setting()


@pytest.mark.slow
def test_bf16_captions_match_fp32(encoder, photo, monkeypatch):
    from capsight.captioning.base import create_captioner

    captioner = create_captioner("default")
    encoded = encoder.encode([photo("chelsea"), photo("astronaut"), photo("coffee")])
    monkeypatch.setenv("CAPSIGHT_PRECISION", "fp32")
    full = captioner.caption(encoded)
    monkeypatch.setenv("CAPSIGHT_PRECISION", "bf16")
    half = captioner.caption(encoded)
    assert all(len(r.text.split()) >= 3 for r in half)
    for a, b in zip(full, half, strict=True):  # near-ties may pick another word, not worse ones
        assert abs(a.score - b.score) < 0.15, (a.text, a.score, b.text, b.score)
    assert sum(a.text == b.text for a, b in zip(full, half, strict=True)) >= 2


def test_reduced_precision_encoder_gives_float32_features_close_to_full(photo, monkeypatch):
    from capsight.vision.encoder import ImageEncoder

    photos = [photo("chelsea"), photo("coffee")]
    full = ImageEncoder().encode(photos)
    monkeypatch.setenv("CAPSIGHT_PRECISION", "bf16")  # whatever this CPU computes natively
    reduced = ImageEncoder(reduced_precision=True).encode(photos)
    for a, b in (
        (full.grid, reduced.grid),
        (full.hidden, reduced.hidden),
        (full.pooled, reduced.pooled),
    ):
        assert b.dtype == torch.float32 and b.shape == a.shape
    cosine = torch.nn.functional.cosine_similarity(full.pooled, reduced.pooled, dim=-1)
    assert (cosine > 0.98).all(), cosine
    assert not torch.equal(full.grid, reduced.grid)  # the arithmetic did change
    assert full.probs.argmax(-1).tolist() == reduced.probs.argmax(-1).tolist()
    monkeypatch.setenv("CAPSIGHT_PRECISION", "fp32")  # the switch turns it off again
    assert torch.equal(ImageEncoder(reduced_precision=True).encode(photos).grid, full.grid)


def test_captioning_encoder_reduces_precision_and_novelty_encoder_does_not():
    from capsight.captioning.facade import cached_encoder
    from capsight.novelty.pipeline import _torch_encoder

    assert cached_encoder().reduced_precision
    assert not _torch_encoder("efficientnet-lite0")().reduced_precision
