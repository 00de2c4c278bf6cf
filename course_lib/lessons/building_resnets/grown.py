"""Growing a plain CNN into ResNet-18 in front of the student, as fastbook chapter 14 does: plain block, identity
skip, projection shortcut, stage, network. Names follow torchvision, so its weights load straight in; the branch
f, the shortcut rule and zero-init are those of :mod:`course_lib.models`."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ConfigError
from ...models import BasicBranch, conv3x3, needs_projection, shortcut


class PlainBlock(BasicBranch):
    """Step 1: ``relu(f(x))`` with ``f = bn2(conv2(relu(bn1(conv1(x)))))``, :class:`course_lib.models.BasicBranch`'s.

    ``x``: N x c_in x H x W -> N x c_out x H/stride x W/stride; the stride sits on the first conv.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.f(x))


class SkipBlock(PlainBlock):
    """Step 2: the same layers plus the identity skip, ``relu(f(x) + x)``: no new parameters, and a shape that
    cannot change (``x + f(x)`` needs both the same shape)."""

    def __init__(self, channels: int, c_out: int | None = None, stride: int = 1):
        c_out = channels if c_out is None else c_out
        if needs_projection(channels, c_out, stride):
            raise ConfigError(
                f"an identity skip needs f(x) and x to have the same shape, but {channels}->{c_out} channels "
                f"with stride {stride} makes f(x) {c_out} x H/{stride} x W/{stride} while x stays "
                f"{channels} x H x W. Fix: use ProjectionBlock, whose 1x1-conv shortcut changes x's shape too.")
        super().__init__(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.f(x) + x)


class ProjectionBlock(PlainBlock):
    """Step 3: ``relu(f(x) + shortcut(x))``, torchvision's ``BasicBlock`` with its names and parameters.

    The shortcut is the identity unless the shape changes; then ``downsample`` = 1x1 conv (stride ``stride``)
    + BatchNorm, He et al.'s option B, by :func:`course_lib.models.shortcut`'s rule.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__(c_in, c_out, stride)
        self.downsample = shortcut(c_in, c_out, stride)  # None (the identity) unless the shape changes

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(self.f(x) + shortcut)


def make_stage(c_in: int, c_out: int, blocks: int, stride: int = 1) -> nn.Sequential:
    """Step 4: ``blocks`` ProjectionBlocks, only the first changing the shape (N x c_in x H x W ->
    N x c_out x H/stride x W/stride)."""
    if blocks < 1:
        raise ConfigError(f"a stage needs at least 1 block, got {blocks}")
    return nn.Sequential(ProjectionBlock(c_in, c_out, stride), *[ProjectionBlock(c_out, c_out) for _ in range(blocks - 1)])


Layout = Sequence[tuple[int, int, int]]  # one (blocks, channels, stride of the first block) per stage

RESNET18_LAYOUT: list[tuple[int, int, int]] = [(2, 64, 1), (2, 128, 2), (2, 256, 2), (2, 512, 2)]


class GrownResNet(nn.Module):
    """Step 5: a stem, stages of :class:`ProjectionBlock` from a ``layout``, global average pool, a linear layer.

    ``small_input=True``: a 3x3 stride-1 stem and no max-pool (28x28 digits); else torchvision's 7x7 stride-2
    stem and max-pool. With :data:`RESNET18_LAYOUT` it takes the weights of ``course_lib.models.resnet18`` (or
    ``digit_resnet(18)`` when ``small_input``) unchanged. ``x``: N x in_channels x H x W -> N x num_classes.
    """

    def __init__(self, layout: Layout, in_channels: int = 1, num_classes: int = 10, small_input: bool = True):
        super().__init__()
        layout = [tuple(int(v) for v in stage) for stage in layout]
        if not layout or any(len(stage) != 3 or min(stage) < 1 for stage in layout):
            raise ConfigError(f"layout must be a list of (blocks, channels, stride) with positive numbers, got {layout}")
        self.layout = layout
        width = layout[0][1]
        if small_input:
            self.conv1 = conv3x3(in_channels, width)
        else:
            self.conv1 = nn.Conv2d(in_channels, width, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU()
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for i, (blocks, channels, stride) in enumerate(layout, start=1):
            self.add_module(f"layer{i}", make_stage(width, channels, blocks, stride))
            width = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, len(self.layout) + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


def scaled_layout(layout: Layout, width_divisor: int) -> list[tuple[int, int, int]]:
    """The same layout with every stage's channels divided by ``width_divisor`` (a narrower network)."""
    return [(blocks, max(1, channels // width_divisor), stride) for blocks, channels, stride in layout]
