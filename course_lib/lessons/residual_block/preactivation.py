"""He et al. (2016)'s pre-activation residual block, y = x + f(x) with nothing after the sum, and a net of them,
for notebook 02's comparison with the original block."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ConfigError
from ...models import DepthNet, conv1x1, conv3x3, needs_projection
from .gradients import PLAIN_VS_RESIDUAL


class PreActBlock(nn.Module):
    """``f(x) + shortcut`` with ``f(x) = conv2(relu(bn2(conv1(relu(bn1(x))))))``; the shortcut is x, or a 1x1 conv
    of ``relu(bn1(x))`` where the shape changes. ``zero_init``: conv2 = 0, so the block starts as the identity."""

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
    """:class:`course_lib.models.DepthNet` with ``(depth - 2) / 2`` PreActBlocks, and ``post`` (the final BN and
    relu of a pre-activation net) before the head. ``N x 1 x 28 x 28 -> N x 10``."""

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

    def classify(self, h: Tensor) -> Tensor:
        """The final BN and relu, then :class:`DepthNet`'s head: ``N x width x H x W -> N x 10`` logits."""
        return self.head(DepthNet.pool(self.post(h)))

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(self.body(self.stem(x)))


def preact_net(depth: int, width: int = 16, batch_norm: bool = True) -> PreActNet:
    """A :class:`PreActNet` of ``depth`` layers (He et al.'s count). Pre-activation needs its BatchNorm."""
    if not batch_norm:
        raise ConfigError("a pre-activation block is built around BatchNorm (BN, relu, conv); "
                          "Fix: compare without BatchNorm using plain_net and residual_net only.")
    return PreActNet(depth, width)


# original vs pre-activation, for gradient_vs_depth(nets=...)
ORIGINAL_VS_PREACT = {"residual": PLAIN_VS_RESIDUAL["residual"],
                      "preact": (preact_net, "y = x + f(x), BN and relu inside f")}
