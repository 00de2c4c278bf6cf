"""Every network in the course.

* The blog's three digit models: :class:`BlogResNet` (its ResNet, exactly),
  :class:`BlogPlain` (the same layers with the two skips removed) and
  :class:`BlogCNN` (its "traditional CNN", adapted to 1x28x28 digits and started
  from He initialisation, without which it never learns; see its docstring).
* The depth family for the degradation study: :func:`plain_net` and
  :func:`residual_net`, identical layers that differ only in the identity skips.
* The reference ResNets, written like torchvision's ``models/resnet.py`` and
  parameter-for-parameter equal to it: :class:`BasicBlock`, :class:`Bottleneck`,
  :class:`ResNet` and ``resnet18`` ... ``resnet152``.

Every digit model takes images exactly as :func:`course_lib.data.load_data`
returns them: ``N x 1 x 28 x 28`` in [0, 1], and returns ``N x 10`` logits.
:func:`build_model` builds any of them by its CLI name and records that name and
its arguments in ``model.spec`` so that a checkpoint can rebuild it.
"""
from __future__ import annotations

import re
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import ConfigError

# --------------------------------------------------------------------------- the blog's models


class ResBlock(nn.Module):
    """The blog's residual block: ``relu(x + conv2(relu(conv1(x))))``.

    conv1: ``channels -> 30``, 5x5; conv2: ``30 -> channels``, 3x3; both padded so
    f(x) has the shape of x. ``skip=False`` gives the plain twin ``relu(f(x))``.
    """

    def __init__(self, channels: int, skip: bool = True):
        super().__init__()
        self.channels, self.skip = channels, skip
        self.conv1 = nn.Conv2d(channels, 30, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(30, channels, kernel_size=3, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv2(F.relu(self.conv1(x)))
        return F.relu(x + out) if self.skip else F.relu(out)


class BlogResNet(nn.Module):
    """The blog's ResNet for MNIST, exactly: 221,810 parameters.

    Shapes for a ``N x 1 x 28 x 28`` input::

        conv 1->20 5x5 pad 2, relu, max-pool  -> N x 20 x 14 x 14
        ResBlock(20)                           -> N x 20 x 14 x 14
        conv 20->15 3x3 pad 1, relu, max-pool -> N x 15 x 7 x 7
        ResBlock(15)                           -> N x 15 x 7 x 7
        flatten (15*7*7 = 735), Linear 735->245, relu, Linear 245->10
    """

    skip = True

    def __init__(self, init: str = "pytorch"):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 20, kernel_size=5, padding=2)
        self.rblock1 = ResBlock(20, skip=self.skip)
        self.conv2 = nn.Conv2d(20, 15, kernel_size=3, padding=1)
        self.rblock2 = ResBlock(15, skip=self.skip)
        self.pool = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(15 * 7 * 7, 245)
        self.fc2 = nn.Linear(245, 10)
        apply_init(self, init)  # the blog's: PyTorch's default

    def forward(self, x: Tensor) -> Tensor:
        x = self.pool(F.relu(self.conv1(x)))
        x = self.rblock1(x)
        x = self.pool(F.relu(self.conv2(x)))
        x = self.rblock2(x)
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


class BlogPlain(BlogResNet):
    """:class:`BlogResNet` with its two skips removed: the same layers and parameters.

    The controlled comparison: any difference from BlogResNet is due to the skips alone.
    """

    skip = False


class BlogCNN(nn.Module):
    """The blog's "traditional CNN", adapted to 1x28x28 digits and 10 classes.

    The blog wrote it for 3x32x32 images and 20 classes, so it cannot run on MNIST
    as printed. We keep its channel plan (3->8->8, 8->16->32->32, 32->16->32->32,
    32->256->256, then a linear layer) and change only what the input forces:

    * the first conv takes 1 channel instead of 3 (grey digits, not RGB);
    * all 3x3 convs are padded (``padding=1``) so only the three 2x2 max-pools
      shrink the map: 28 -> 14 -> 7 -> 3 (32x32 input would give 16 -> 8 -> 4);
    * the 32->256 conv uses a 3x3 kernel without padding so the 3x3 map becomes
      1x1 (the blog's 4x4 map needed 4x4), and 256->256 is a 1x1 conv;
    * the final linear layer maps 256 features to 10 classes instead of 20.

    One more departure, for a measured reason: the weights start from **He
    initialisation** (``init="he"``, the default here), not PyTorch's default. With
    PyTorch's default init this stack of ten ReLU convs without BatchNorm passes almost
    no signal at the start (its logits vary across images by ~1e-5), and under the
    blog's protocol (SGD lr 0.1, no momentum) it sits at the chance loss ln 10 for all
    30 epochs: it never learns, so it could not produce the blog's 97%. He init keeps
    the signal's size through the ReLUs, and the same net then trains from epoch 1.
    ``BlogCNN(init="pytorch")`` builds the stalling version (notebook 04 shows both).
    """

    def __init__(self, init: str = "he"):
        super().__init__()

        def convs(*channels: int) -> list[nn.Module]:
            layers: list[nn.Module] = []
            for c_in, c_out in zip(channels, channels[1:]):
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.ReLU()]
            return layers

        self.features = nn.Sequential(
            *convs(1, 8, 8), nn.MaxPool2d(2),  # 28 -> 14
            *convs(8, 16, 32, 32), nn.MaxPool2d(2),  # 14 -> 7
            *convs(32, 16, 32, 32), nn.MaxPool2d(2),  # 7 -> 3
            nn.Conv2d(32, 256, 3), nn.ReLU(),  # 3 -> 1
            nn.Conv2d(256, 256, 1), nn.ReLU(),
        )
        self.classifier = nn.Linear(256, 10)
        apply_init(self, init)

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


INITS = ("pytorch", "he")


def apply_init(model: nn.Module, init: str) -> nn.Module:
    """Initialise ``model``'s conv and linear layers in place; returns it.

    ``pytorch``: leave PyTorch's default (Kaiming-uniform with a = sqrt(5), i.e. weights
    ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)): each ReLU layer shrinks the signal).
    ``he``: He et al. (2015) for ReLU nets, weights ~ N(0, 2/fan_in), biases 0: the
    signal keeps its size from layer to layer.
    """
    if init not in INITS:
        raise ConfigError(f"unknown init {init!r}; valid: {', '.join(INITS)}")
    if init == "he":
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return model


# --------------------------------------------------------------------------- the depth family


class ConvPair(nn.Module):
    """Two 3x3 conv layers of the body, with or without an identity skip around them.

    ``conv-bn-relu-conv-bn``, then ``+ x`` when ``residual``, then relu. Without
    BatchNorm the convs carry a bias instead. The plain and residual versions
    have exactly the same layers and parameters.
    """

    def __init__(self, width: int, batch_norm: bool = True, residual: bool = False):
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=not batch_norm)
        self.bn1 = nn.BatchNorm2d(width) if batch_norm else nn.Identity()
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=not batch_norm)
        self.bn2 = nn.BatchNorm2d(width) if batch_norm else nn.Identity()

    def f(self, x: Tensor) -> Tensor:
        """The residual function f(x), before the skip and the last relu."""
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))

    def forward(self, x: Tensor) -> Tensor:
        out = self.f(x)
        return F.relu(out + x) if self.residual else F.relu(out)


class DepthNet(nn.Module):
    """A plain or residual net of a given depth, counted as He et al. count it.

    depth = 1 stem conv + (depth - 2) body convs + 1 linear layer. Shapes::

        stem: conv 1->width 4x4 stride 4 (+BN), relu   N x 1 x 28 x 28 -> N x width x 7 x 7
        body: (depth - 2) / 2 ConvPairs                  N x width x 7 x 7
        head: global average pool, Linear width->10      N x 10
    """

    def __init__(self, depth: int, width: int = 16, batch_norm: bool = True,
                 residual: bool = False, zero_init_residual: bool = False):
        super().__init__()
        if depth < 2 or depth % 2:
            raise ConfigError(f"depth must be an even number >= 2 (1 stem conv + pairs of 3x3 convs + 1 linear), got {depth}")
        self.depth, self.width, self.residual = depth, width, residual
        self.stem = nn.Sequential(
            nn.Conv2d(1, width, 4, stride=4, bias=not batch_norm),
            nn.BatchNorm2d(width) if batch_norm else nn.Identity(),
            nn.ReLU(),
        )
        self.body = nn.Sequential(*[ConvPair(width, batch_norm, residual) for _ in range((depth - 2) // 2)])
        self.head = nn.Linear(width, 10)
        if zero_init_residual and batch_norm:
            for pair in self.body:
                nn.init.zeros_(pair.bn2.weight)

    def forward(self, x: Tensor) -> Tensor:
        x = self.body(self.stem(x))
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def plain_net(depth: int, width: int = 16, batch_norm: bool = True) -> DepthNet:
    """A plain net of ``depth`` layers (He et al.'s count): no skips."""
    return _with_spec(DepthNet(depth, width, batch_norm, residual=False),
                      f"plain-{depth}", width=width, batch_norm=batch_norm)


def residual_net(depth: int, width: int = 16, batch_norm: bool = True,
                 zero_init_residual: bool = False) -> DepthNet:
    """The same layers as :func:`plain_net`, with an identity skip around every pair of convs."""
    return _with_spec(DepthNet(depth, width, batch_norm, residual=True, zero_init_residual=zero_init_residual),
                      f"residual-{depth}", width=width, batch_norm=batch_norm, zero_init_residual=zero_init_residual)


# --------------------------------------------------------------------------- reference ResNets


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding, no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convs and a shortcut: ``relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x))``.

    ``downsample`` (a 1x1 conv + BN, He et al.'s option B) is given only where the
    shape changes; otherwise the shortcut is the identity.
    """

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), plus the shortcut; stride on the 3x3 as torchvision does."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        width = planes
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = conv3x3(width, width, stride)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


Block = type[BasicBlock] | type[Bottleneck]


class ResNet(nn.Module):
    """He et al.'s ResNet, with torchvision's module names so state dicts are interchangeable.

    ``small_input=True`` gives the variant for 28x28 digits: a 3x3 stride-1 stem
    and no initial max-pool, so the 28x28 map is not cut to 7x7 before the first stage.
    """

    def __init__(self, block: Block, layers: list[int], num_classes: int = 1000, in_channels: int = 3,
                 small_input: bool = False, zero_init_residual: bool = False):
        super().__init__()
        self.inplanes = 64
        if small_input:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
        else:
            self.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)
        if zero_init_residual:  # each block starts as the identity
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.constant_(m.bn3.weight, 0)
                elif isinstance(m, BasicBlock):
                    nn.init.constant_(m.bn2.weight, 0)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        # The one place that decides the shortcut: a projection only where the shape changes.
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        layers = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


RESNET_LAYOUTS: dict[int, tuple[Block, list[int]]] = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}


def _resnet(depth: int, **kwargs) -> ResNet:
    block, layers = RESNET_LAYOUTS[depth]
    return ResNet(block, layers, **kwargs)


def resnet18(num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-18 (BasicBlock, [2, 2, 2, 2]); same parameters as ``torchvision.models.resnet18``."""
    return _resnet(18, num_classes=num_classes, **kwargs)


def resnet34(num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-34 (BasicBlock, [3, 4, 6, 3])."""
    return _resnet(34, num_classes=num_classes, **kwargs)


def resnet50(num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-50 (Bottleneck, [3, 4, 6, 3])."""
    return _resnet(50, num_classes=num_classes, **kwargs)


def resnet101(num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-101 (Bottleneck, [3, 4, 23, 3])."""
    return _resnet(101, num_classes=num_classes, **kwargs)


def resnet152(num_classes: int = 1000, **kwargs) -> ResNet:
    """ResNet-152 (Bottleneck, [3, 8, 36, 3])."""
    return _resnet(152, num_classes=num_classes, **kwargs)


def digit_resnet(depth: int = 18, num_classes: int = 10, **kwargs) -> ResNet:
    """A ResNet-``depth`` for 1x28x28 digits: 3x3 stem, no initial max-pool."""
    if depth not in RESNET_LAYOUTS:
        raise ConfigError(f"no ResNet-{depth}; valid depths are {sorted(RESNET_LAYOUTS)}")
    kwargs = {"in_channels": 1, "small_input": True, **kwargs}
    return _with_spec(_resnet(depth, num_classes=num_classes, **kwargs), f"resnet{depth}",
                      num_classes=num_classes, **kwargs)


# --------------------------------------------------------------------------- names and counting


def _with_spec(model: nn.Module, name: str, **kwargs) -> nn.Module:
    model.spec = {"name": name, "kwargs": kwargs}
    return model


_FIXED: dict[str, Callable[[], nn.Module]] = {
    "blog-resnet": BlogResNet,
    "blog-cnn": BlogCNN,
    "blog-plain": BlogPlain,
}
MODEL_NAMES = ("blog-resnet", "blog-cnn", "blog-plain", "plain-N", "residual-N",
               "resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


def build_model(name: str, **kwargs) -> nn.Module:
    """Build a digit model by its CLI name; records ``model.spec`` for checkpoints.

    Names: ``blog-resnet``, ``blog-cnn``, ``blog-plain`` (kwarg ``init``: ``pytorch``,
    the default of the ResNet and its plain twin, or ``he``, BlogCNN's default), ``plain-N`` and
    ``residual-N`` (N even, >= 2; kwargs ``width``, ``batch_norm``), and
    ``resnet18`` ... ``resnet152`` (the 28x28 single-channel variant, 10 classes).
    """
    key = str(name).strip().lower()
    if key in _FIXED:
        if set(kwargs) - {"init"}:
            raise ConfigError(f"{key} takes only init= ({', '.join(INITS)}), got {sorted(kwargs)}")
        return _with_spec(_FIXED[key](**kwargs), key)  # init is not architecture: any weights load
    match = re.fullmatch(r"(plain|residual)-(\d+)", key)
    if match:
        builder = plain_net if match[1] == "plain" else residual_net
        return builder(int(match[2]), **kwargs)
    match = re.fullmatch(r"resnet(\d+)", key)
    if match and int(match[1]) in RESNET_LAYOUTS:
        return digit_resnet(int(match[1]), **kwargs)
    raise ConfigError(f"unknown model {name!r}; valid names are: {', '.join(MODEL_NAMES)} "
                      f"(N an even depth such as 8, 20 or 56)")


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
