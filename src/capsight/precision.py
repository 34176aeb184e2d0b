"""Inference precision of the captioners: bfloat16 on CPUs that compute it natively, else float32.

    >>> with inference_precision(device):      # around a captioner's decoding
    ...     decoded = decode(model, grid, options)

On a CPU with AVX512-BF16 or AMX (AMD Zen 4 and later, Intel Sapphire Rapids and later) oneDNN
runs the decoder's matrix products in bfloat16 about twice as fast as in float32, and caption
scores do not move (shipped model, beam 3: Flickr8k test BLEU-4 0.237 vs 0.236, CIDEr 0.590 both;
val CIDEr 0.552 vs 0.549). On other CPUs bfloat16 would be emulated, and slower, so they stay in
float32, as do GPUs (training has its own AMP switch).

Captioners also encode their photos this way (``ImageEncoder(reduced_precision=True)``, as
``captioning.facade.cached_encoder`` builds them): EfficientNet-Lite runs 2.1-2.4x faster in
bfloat16 here, and the photo default's scores stay within noise (Flickr8k test BLEU-4 0.247 vs
0.250, CIDEr 0.626 vs 0.627; val CIDEr 0.580 vs 0.582; COCO CIDEr 0.359 vs 0.350). The novelty
signals' encoder stays in float32: its features (within cosine 0.997 of float32's on 128
Flickr8k photos) drive the novelty selection, which was tuned on float32 features, and on a
3-second real clip the change moved one score across the threshold (a new false alarm in
``benchmarks/novelty_quality.py``). Training caches float32 features too.

``CAPSIGHT_PRECISION`` overrides the choice: ``auto`` (default), ``bf16`` or ``fp32``. Outputs
are float32 either way; only the arithmetic inside changes.
"""

from __future__ import annotations

import contextlib
import functools
import os
from typing import TYPE_CHECKING

from capsight.errors import InvalidParameter

if TYPE_CHECKING:
    import torch

CHOICES = ("auto", "bf16", "fp32")


@functools.cache
def cpu_computes_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX) that oneDNN uses."""
    import torch

    try:
        native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
        return bool(native and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # an older or differently built torch
        return False


def precision_setting() -> str:
    value = os.environ.get("CAPSIGHT_PRECISION", "auto").strip().lower() or "auto"
    if value not in CHOICES:
        raise InvalidParameter(
            f"CAPSIGHT_PRECISION must be one of {', '.join(CHOICES)}, got {value!r}"
        )
    return value


def uses_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether inference on ``device`` runs in bfloat16 (CPU only; see the module doc)."""
    import torch

    if torch.device(device).type != "cpu":
        return False
    setting = precision_setting()
    return setting == "bf16" or (setting == "auto" and cpu_computes_bf16())


def inference_precision(device: str | torch.device = "cpu") -> contextlib.AbstractContextManager:
    """bfloat16 autocast on a CPU that computes it natively (or when asked), else nothing."""
    if uses_bf16(device):
        import torch

        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
