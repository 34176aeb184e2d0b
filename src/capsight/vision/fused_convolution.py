"""A convolution and what follows it (ReLU6, or a residual sum) in one oneDNN call.

    >>> with fused_convolutions():              # only where a caller asks for it
    ...     grid, hidden = net.features_and_hidden(x)

For float32 inference on a CPU, in networks whose BatchNorms were folded into their
convolutions (``efficientnet_lite.fused_for_inference``, ``captioning.encoder_top``).
``torch.ops.mkldnn._convolution_pointwise`` (the kernel torch.compile's CPU backend emits)
applies the ReLU6 or adds the residual while each piece of the output is still in cache,
where separate operations make another pass over the whole map. On a 2-core AMD EPYC without
native bfloat16 (2026-12-05, ``ImageEncoder.encode_tensor`` on 32 Flickr8k photos, median of 8
runs alternating with the separate operations): EfficientNet-Lite0 19.6 -> 17.6 ms per photo
and Lite2 38.4 -> 34.0 on one thread, 9.3 -> 8.8 and 18.9 -> 18.0 on two. The outputs are
those of the separate operations to float rounding (``tests/vision/test_encoder.py``), except
for NaN: oneDNN's clip turns a NaN into 0 where ``F.relu6`` keeps it (pixels decoded from a
photo are never NaN).

It is opt-in: only ``ImageEncoder.encode_tensor`` and ``EncoderTop``'s inference copy turn it
on, so an ONNX or ``torch.export`` export, training and anything else that runs these networks
keep plain operations. Where the operation is missing (a torch built without oneDNN) or fails
its check against the separate operations (``_operation_works``), those run instead.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from functools import lru_cache

import torch
import torch.nn.functional as F

_state = threading.local()


@contextlib.contextmanager
def fused_convolutions() -> Iterator[None]:
    """Let ``conv`` fuse while this block runs (in this thread)."""
    before = getattr(_state, "on", False)
    _state.on = True
    try:
        yield
    finally:
        _state.on = before


def fuses(x: torch.Tensor) -> bool:
    """Whether ``conv`` on ``x`` takes the fused path: asked for, float32 on a CPU, no
    gradients, no autocast, no tracing or export, and the operation works in this torch."""
    return (
        getattr(_state, "on", False)
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_grad_enabled()
        and not torch.is_autocast_enabled("cpu")
        and not torch.jit.is_tracing()
        and not torch.compiler.is_compiling()
        and _operation_works()
    )


def conv(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    padding: tuple[int, int],
    stride: tuple[int, int],
    groups: int,
    *,
    relu6: bool = False,
    plus: torch.Tensor | None = None,
) -> torch.Tensor:
    """``F.conv2d`` (symmetric ``padding``), then ReLU6 where ``relu6``, or ``+ plus`` (the
    residual) where given, in one call. Only where ``fuses(x)``: callers check it (once per
    convolution, on the encoders' hot path), and run the separate operations otherwise."""
    padding, stride = list(padding), list(stride)
    op = torch.ops.mkldnn._convolution_pointwise
    if plus is not None:
        return op.binary(
            x, plus, weight, bias, padding, stride, [1, 1], groups, "add", None, None, [], None
        )
    if relu6:
        return op(x, weight, bias, padding, stride, [1, 1], groups, "hardtanh", [0.0, 6.0], "")
    return op(x, weight, bias, padding, stride, [1, 1], groups, "none", [], "")


@lru_cache(maxsize=1)
def _operation_works() -> bool:
    """Both fused forms exist in this torch and agree with the separate operations on a small
    case (float32 whatever torch's default dtype)."""
    try:
        op = torch.ops.mkldnn._convolution_pointwise
        generator = torch.Generator().manual_seed(0)

        def tensor(*shape: int) -> torch.Tensor:
            t = torch.randn(*shape, generator=generator, dtype=torch.float32)
            return t.contiguous(memory_format=torch.channels_last) if t.dim() == 4 else t

        x, weight, bias, other = (
            tensor(1, 4, 5, 5),
            tensor(4, 1, 3, 3),
            tensor(4),
            tensor(1, 4, 5, 5),
        )
        with torch.no_grad():
            relu6 = op(x, weight, bias, [1, 1], [1, 1], [1, 1], 4, "hardtanh", [0.0, 6.0], "")
            plus = op.binary(
                x, other, weight, bias, [1, 1], [1, 1], [1, 1], 4, "add", None, None, [], None
            )
            plain = F.conv2d(x, weight, bias, 1, 1, 1, 4)
        return bool(
            torch.allclose(relu6, F.relu6(plain), atol=1e-5)
            and torch.allclose(plus, plain + other, atol=1e-5)
        )
    except (AttributeError, RuntimeError, NotImplementedError):
        return False
