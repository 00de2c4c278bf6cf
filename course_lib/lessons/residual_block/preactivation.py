"""The pre-activation residual block (He et al. 2016, "Identity Mappings in Deep Residual Networks") and a net of
them, for notebook 02's comparison with the original block.

Original block (2015):        y = relu(x + f(x)),  f(x) = bn2(conv2(relu(bn1(conv1(x)))))
Pre-activation block (2016):  y = x + f(x),        f(x) = conv2(relu(bn2(conv1(relu(bn1(x))))))

Nothing follows the sum, so the shortcuts of a stack of such blocks form one clean identity path from the last
block to the first; the net ends with the BatchNorm and relu that the last block no longer applies.
"""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ConfigError
from ...models import conv1x1, conv3x3, needs_projection
from .gradients import PLAIN_VS_RESIDUAL


class PreActBlock(nn.Module):
    """He et al. (2016)'s pre-activation basic block, ``N x in_channels x H x W -> N x out_channels x H/s x W/s``.

    ``f(x) = conv2(relu(bn2(conv1(relu(bn1(x))))))``; the output is ``f(x) + shortcut``, with no relu after the
    sum. The shortcut is ``x`` where the shape is kept, else a 1x1 conv with the stride applied to the
    pre-activated input ``relu(bn1(x))`` (as in the paper's code; no BatchNorm on it). ``zero_init=True`` sets
    conv2's weights to 0: then f(x) = 0 and a shape-keeping block returns x exactly, negative entries included.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, zero_init: bool = False):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.shortcut = (conv1x1(in_channels, out_channels, stride)
                         if needs_projection(in_channels, out_channels, stride) else None)
        if zero_init:
            nn.init.zeros_(self.conv2.weight)

    def f(self, x: Tensor) -> Tensor:
        """The residual branch, BN and relu before each conv."""
        return self.conv2(F.relu(self.bn2(self.conv1(F.relu(self.bn1(x))))))

    def forward(self, x: Tensor) -> Tensor:
        pre = F.relu(self.bn1(x))
        identity = x if self.shortcut is None else self.shortcut(pre)
        out = self.conv2(F.relu(self.bn2(self.conv1(pre))))
        return out + identity


class PreActNet(nn.Module):
    """The depth family of :class:`course_lib.models.DepthNet` with pre-activation blocks: the same stem
    (4x4 stride-4 conv, BN, relu: ``N x 1 x 28 x 28 -> N x width x 7 x 7``), ``(depth - 2) / 2`` PreActBlocks
    of ``width`` channels, then ``post`` (the final BN and relu of a pre-activation net), global average pooling
    and a linear layer to 10 classes."""

    def __init__(self, depth: int, width: int = 16):
        super().__init__()
        if depth < 2 or depth % 2:
            raise ConfigError(f"depth must be an even number >= 2 (1 stem conv + pairs of 3x3 convs + 1 linear), "
                              f"got {depth}")
        self.depth, self.width = depth, width
        self.stem = nn.Sequential(nn.Conv2d(1, width, 4, stride=4, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        self.body = nn.Sequential(*[PreActBlock(width, width) for _ in range((depth - 2) // 2)])
        self.post = nn.Sequential(nn.BatchNorm2d(width), nn.ReLU())
        self.head = nn.Linear(width, 10)

    def forward(self, x: Tensor) -> Tensor:
        h = self.post(self.body(self.stem(x)))
        return self.head(F.adaptive_avg_pool2d(h, 1).flatten(1))


def preact_net(depth: int, width: int = 16, batch_norm: bool = True) -> PreActNet:
    """A :class:`PreActNet` of ``depth`` layers (He et al.'s count). Pre-activation needs its BatchNorm."""
    if not batch_norm:
        raise ConfigError("a pre-activation block is built around BatchNorm (BN, relu, conv); "
                          "Fix: compare without BatchNorm using plain_net and residual_net only.")
    return PreActNet(depth, width)


# original vs pre-activation, for gradient_vs_depth(nets=...)
ORIGINAL_VS_PREACT = {"residual": PLAIN_VS_RESIDUAL["residual"],
                      "preact": (preact_net, "y = x + f(x), BN and relu inside f")}
