"""The encoder's last blocks, owned by a captioner so it can fine-tune them.

    >>> top = EncoderTop("efficientnet-lite0", trainable_blocks=2)
    >>> grid = top(encoded.hidden)            # (B, 192, 7, 7) -> (B, 49, 1280)

The shared image encoder stays frozen: video novelty, classification and every other captioner
read its output unchanged. A captioner trained with ``--fine-tune-blocks N`` carries its own copy
of the encoder's top stage (the blocks after the last stride-2 block, 4 in Lite0, and the 1x1
head) and recomputes its grid from the encoder's *hidden* map (``EncodedImages.hidden``, the
input of that stage). Its last ``N`` blocks (and the head) train with the decoder; earlier
blocks of the copy stay frozen. BatchNorm statistics are always frozen (batches of a few dozen
photos would only make them noisier), so the copy starts out computing exactly the shared
encoder's grid. Training caches the hidden maps once (7x7x192, a seventh of the grid), so
fine-tuning needs no photo decoding per step and runs on a CPU.
"""

from __future__ import annotations

import copy
import functools

import torch
import torch.nn.functional as F
from torch import nn

from capsight.errors import InvalidParameter, ModelNotFound
from capsight.model_loading import keeps_random_state
from capsight.vision.efficientnet_lite import (
    EfficientNetLite,
    conv_relu6,
    fold_batch_norm,
    fold_block,
)
from capsight.vision.fused_convolution import fused_convolutions


def _imagenet_network(encoder: str) -> EfficientNetLite:
    """The encoder with its ImageNet weights when installed, else freshly initialised (a
    checkpoint's own weights replace it on load)."""
    from capsight.vision.encoder import load_efficientnet_lite

    try:
        return load_efficientnet_lite(encoder)
    except ModelNotFound:
        return EfficientNetLite.build(encoder)


@functools.cache
@keeps_random_state
def top_block_count(encoder: str) -> int:
    """How many blocks of ``encoder`` (an EfficientNet-Lite) come after its last stride-2 block:
    the most ``--fine-tune-blocks`` can train (checked before a run opens anything)."""
    net = EfficientNetLite.build(encoder)
    return len(net._blocks) - net.top_start


def check_fine_tune_blocks(encoder: str, blocks: int) -> None:
    """InvalidParameter unless ``blocks`` of ``encoder``'s top can be trained."""
    if not 1 <= blocks <= (most := top_block_count(encoder)):
        raise InvalidParameter(
            f"--fine-tune-blocks must be between 1 and {most} for {encoder} "
            f"(the blocks after its last stride-2 block), got {blocks}"
        )


class EncoderTop(nn.Module):
    """Blocks ``top_start..`` and the head of an EfficientNet-Lite: hidden map -> feature grid."""

    def __init__(self, encoder: str, trainable_blocks: int) -> None:
        super().__init__()
        net = _imagenet_network(encoder)
        blocks = net._blocks[net.top_start :]
        check_fine_tune_blocks(encoder, trainable_blocks)
        self.blocks = copy.deepcopy(blocks)
        self.head_conv = copy.deepcopy(net._conv_head)
        self.head_bn = copy.deepcopy(net._bn1)
        self.first_trainable = len(blocks) - trainable_blocks
        self.requires_grad_(False)
        for block in self.blocks[self.first_trainable :]:
            block.requires_grad_(True)
        self.head_conv.requires_grad_(True)
        for bn in self._batch_norms():
            bn.requires_grad_(False)
        # The inference copy, and the weights it was made from (a list: not a submodule, so never
        # in the state dict).
        self._fused: list[tuple[tuple, nn.Module]] = []
        self.train(False)

    def _batch_norms(self) -> list[nn.BatchNorm2d]:
        return [m for m in self.modules() if isinstance(m, nn.BatchNorm2d)]

    def train(self, mode: bool = True) -> EncoderTop:
        super().train(mode)
        for bn in self._batch_norms():  # frozen statistics, whatever the mode
            bn.eval()
        if mode:
            self._fused.clear()  # weights will change from here on
        return self

    def _weights_key(self) -> tuple:
        """Which weights the module holds now: every tensor's identity, storage and in-place
        version, so an optimizer step, a loaded state dict or a move to another device or dtype
        makes a new key."""
        return tuple(
            (id(t), t.data_ptr(), t._version) for t in (*self.parameters(), *self.buffers())
        )

    def _inference_copy(self) -> nn.Module:
        """A frozen copy with BatchNorm folded into the convolutions, channels-last (as the
        shared encoder runs): about 1.5x faster. Made again whenever the weights have changed
        (not on every ``eval()``: decoding calls it for each batch)."""
        key = self._weights_key()
        if not self._fused or self._fused[0][0] != key:
            self._fused.clear()
            self._fused.append((key, self._folded_copy()))
        return self._fused[0][1]

    @keeps_random_state  # (only when the weights changed: decoding asks for it every batch)
    def _folded_copy(self) -> nn.Module:
        fused = nn.Module()
        fused.blocks = copy.deepcopy(self.blocks).eval()
        fused.head_conv, fused.head_bn = copy.deepcopy(self.head_conv), copy.deepcopy(self.head_bn)
        for block in fused.blocks:
            fold_block(block)
        fold_batch_norm(fused, "head_conv", "head_bn")
        return fused.requires_grad_(False).to(memory_format=torch.channels_last)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """Hidden maps (B, C, h, w) -> grid (B, h*w, 1280), in float32 even under autocast (as
        training computed it; these few blocks on a 7x7 map cost little next to the encoder,
        which captioners run in bfloat16 where the CPU has it)."""
        x = hidden.float().contiguous(memory_format=torch.channels_last)
        with torch.autocast(x.device.type, enabled=False):
            if not self.training and not torch.is_grad_enabled():
                net = self._inference_copy()
                with fused_convolutions():  # one call per convolution and its ReLU6 or sum
                    for block in net.blocks:
                        x = block(x)
                    fmap = conv_relu6(net.head_conv, net.head_bn, x)  # (B, 1280, h, w)
            else:
                with torch.no_grad():
                    for block in self.blocks[: self.first_trainable]:
                        x = block(x)
                for block in self.blocks[self.first_trainable :]:
                    x = block(x)
                fmap = F.relu6(self.head_bn(self.head_conv(x)))  # (B, 1280, h, w)
        return fmap.flatten(2).transpose(1, 2)  # (B, h*w, 1280)
