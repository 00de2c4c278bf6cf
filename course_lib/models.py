"""Every network in the course, and what all its residual blocks share.

* The blog's digit models: :class:`BlogResNet` (exactly its ResNet), :class:`BlogPlain` (without the two
  skips) and :class:`BlogCNN` (its "traditional CNN", adapted to digits; see its docstring).
* The depth family of the degradation study: :func:`plain_net` and :func:`residual_net`.
* The reference ResNets, parameter-for-parameter torchvision's: :class:`BasicBlock`, :class:`Bottleneck`,
  :class:`ResNet`, ``resnet18`` ... ``resnet152``.
* One home for what every block shares (the teaching blocks of notebooks 02 and 03 too): the shortcut rule
  (:func:`needs_projection`, :func:`shortcut`), the residual branch (each block's ``f``; :class:`BasicBranch`)
  and the identity at initialisation (:func:`zero_init_last_bn`).
* :data:`MODEL_REGISTRY`: each model's CLI name (``blog-resnet``) and display name (``BlogResNet``, used by
  results, figures and tables). :func:`build_model` takes either and records ``model.spec`` for checkpoints.

Digit models take ``N x 1 x 28 x 28`` images in [0, 1] (as :func:`course_lib.data.load_data` returns them)
and return ``N x 10`` logits.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import ConfigError

# --------------------------------------------------------------------------- what every block shares


def conv3x3(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding, no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False)


def conv1x1(in_planes: int, out_planes: int, stride: int = 1) -> nn.Conv2d:
    """1x1 convolution, no bias."""
    return nn.Conv2d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


def needs_projection(in_planes: int, out_planes: int, stride: int = 1) -> bool:
    """The shortcut rule: a projection exactly where the block changes the shape (a stride other than 1, or
    new channels), since f(x) + x cannot be added there; everywhere else the free identity."""
    return stride != 1 or in_planes != out_planes


def projection_shortcut(in_planes: int, out_planes: int, stride: int = 1) -> nn.Sequential:
    """He et al.'s option B, torchvision's ``downsample``: 1x1 conv with ``stride`` + BatchNorm.
    ``N x in_planes x H x W -> N x out_planes x ceil(H/stride) x ceil(W/stride)``."""
    return nn.Sequential(conv1x1(in_planes, out_planes, stride), nn.BatchNorm2d(out_planes))


def shortcut(in_planes: int, out_planes: int, stride: int = 1) -> nn.Sequential | None:
    """Every block's shortcut: None (the identity) where the shape is kept, else a :func:`projection_shortcut`."""
    return projection_shortcut(in_planes, out_planes, stride) if needs_projection(in_planes, out_planes, stride) else None


class BasicBranch(nn.Module):
    """Base of the blocks with a basic block's residual branch (they create conv1, bn1, conv2, bn2): its
    :meth:`f`, written once for :class:`BasicBlock`, :class:`ConvPair` and notebook 03's grown blocks."""

    last_bn_name = "bn2"  # the BatchNorm that zero_init_last_bn zeroes

    def f(self, x: Tensor) -> Tensor:
        """The residual branch ``bn2(conv2(relu(bn1(conv1(x)))))``: the block without its shortcut and last relu."""
        # torchvision's blocks call their ReLU module; so do ours that have one, so layer tables match theirs
        relu = self.relu if "relu" in self._modules else F.relu
        return self.bn2(self.conv2(relu(self.bn1(self.conv1(x)))))


def zero_init_last_bn(block: nn.Module) -> nn.Module:
    """Set gamma of the last BatchNorm of ``block``'s residual branch (named by its ``last_bn_name``) to 0.

    In place; returns ``block``. Then f(x) = 0 exactly and the block computes ``relu(x + 0)``, the identity
    on x >= 0, so a deep net starts as a shallow one (torchvision's ``zero_init_residual``).
    """
    name = getattr(block, "last_bn_name", None)
    last = block.get_submodule(name) if name else None
    if not isinstance(last, nn.BatchNorm2d):
        raise ConfigError(f"{type(block).__name__} has no BatchNorm at the end of its residual branch to zero "
                          f"(last_bn_name = {name!r}). Fix: build the block with BatchNorm, or zero its last conv.")
    with torch.no_grad():
        last.weight.zero_()
    return block


# --------------------------------------------------------------------------- the blog's models


class ResBlock(nn.Module):
    """The blog's residual block: ``relu(x + f(x))``, f = conv2(relu(conv1(x))), conv1 ``channels -> 30`` 5x5 and
    conv2 ``30 -> channels`` 3x3, both padded to keep x's shape. ``skip=False``: the plain twin ``relu(f(x))``."""

    def __init__(self, channels: int, skip: bool = True):
        super().__init__()
        self.channels, self.skip = channels, skip
        self.conv1 = nn.Conv2d(channels, 30, kernel_size=5, padding=2)
        self.conv2 = nn.Conv2d(30, channels, kernel_size=3, padding=1)

    def f(self, x: Tensor) -> Tensor:
        """The residual branch ``conv2(relu(conv1(x)))``, the shape of x."""
        return self.conv2(F.relu(self.conv1(x)))

    def forward(self, x: Tensor) -> Tensor:
        out = self.f(x)
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
        x = self.rblock1(self.pool(F.relu(self.conv1(x))))
        x = self.rblock2(self.pool(F.relu(self.conv2(x))))
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


class BlogPlain(BlogResNet):
    """:class:`BlogResNet` without its two skips, the same layers: any difference is due to the skips alone."""

    skip = False


class BlogCNN(nn.Module):
    """The blog's "traditional CNN", adapted to 1x28x28 digits and 10 classes.

    The blog wrote it for 3x32x32 images and 20 classes. We keep its channel plan (3->8->8, 8->16->32->32,
    32->16->32->32, 32->256->256, then a linear layer) and change only what the input forces: 1 input
    channel; 3x3 convs padded so only the three 2x2 max-pools shrink the map (28 -> 14 -> 7 -> 3); the
    32->256 conv 3x3 without padding (3x3 -> 1x1; the blog's 4x4 map needed 4x4), 256->256 a 1x1 conv;
    10 classes instead of 20.

    One more departure, for a measured reason: **He initialisation** (``init="he"``, the default here).
    With PyTorch's default init this stack of ten ReLU convs without BatchNorm passes almost no signal at
    the start (its logits vary across images by ~1e-5). Under the blog's protocol (SGD lr 0.1, no
    momentum) it sat at the chance loss ln 10 for all 1,890 steps of 30 epochs on the 4,000-digit sample,
    and for the first 4,690 steps (5 epochs) on Fashion-MNIST before it started to learn (notebook 04).
    He init keeps the signal's size through the ReLUs, and the same net trains from the first epoch.
    ``BlogCNN(init="pytorch")`` builds the stalling version.
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

    ``pytorch``: leave PyTorch's default (weights ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)): each ReLU layer
    shrinks the signal). ``he``: He et al. (2015), weights ~ N(0, 2/fan_in), biases 0: the size is kept.
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


class ConvPair(BasicBranch):
    """Two 3x3 convs of the body: ``relu(f(x) + x)`` when ``residual``, else ``relu(f(x))``; the same parameters.

    Without BatchNorm the convs carry a bias instead (and bn1, bn2 are identities).
    """

    def __init__(self, width: int, batch_norm: bool = True, residual: bool = False):
        super().__init__()
        self.residual = residual
        self.conv1 = nn.Conv2d(width, width, 3, padding=1, bias=not batch_norm)
        self.bn1 = nn.BatchNorm2d(width) if batch_norm else nn.Identity()
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=not batch_norm)
        self.bn2 = nn.BatchNorm2d(width) if batch_norm else nn.Identity()

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
        self.stem = nn.Sequential(nn.Conv2d(1, width, 4, stride=4, bias=not batch_norm),
                                  nn.BatchNorm2d(width) if batch_norm else nn.Identity(), nn.ReLU())
        self.body = nn.Sequential(*[ConvPair(width, batch_norm, residual) for _ in range((depth - 2) // 2)])
        self.head = nn.Linear(width, 10)
        if zero_init_residual and batch_norm:
            for pair in self.body:
                zero_init_last_bn(pair)

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


class BasicBlock(BasicBranch):
    """Two 3x3 convs and a shortcut: ``relu(f(x) + shortcut(x))``, f = ``bn2(conv2(relu(bn1(conv1(x)))))``.

    ``downsample``: None (the identity) or a projection where the shape changes, from :func:`shortcut`.
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
        return self.relu(self.f(x) + identity)


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3, 1x1 expand (x4), plus the shortcut; stride on the 3x3 as torchvision does."""

    expansion = 4
    last_bn_name = "bn3"

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = conv1x1(inplanes, planes)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = conv3x3(planes, planes, stride)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = conv1x1(planes, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def f(self, x: Tensor) -> Tensor:
        """The residual branch: 1x1 reduce, 3x3 (with the stride), 1x1 expand, each followed by BN; relu between."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.f(x) + identity)


Block = type[BasicBlock] | type[Bottleneck]


class ResNet(nn.Module):
    """He et al.'s ResNet, with torchvision's module names so state dicts are interchangeable.

    ``small_input=True``: the variant for 28x28 digits, a 3x3 stride-1 stem and no initial max-pool
    (the map is not cut to 7x7 before the first stage).
    """

    def __init__(self, block: Block, layers: list[int], num_classes: int = 1000, in_channels: int = 3,
                 small_input: bool = False, zero_init_residual: bool = False):
        super().__init__()
        self.inplanes = 64
        self.conv1 = (nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False) if small_input
                      else nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False))
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
                if isinstance(m, (BasicBlock, Bottleneck)):
                    zero_init_last_bn(m)

    def _make_layer(self, block: Block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        # only the first block of a stage can change the shape, so only it may need a projection
        downsample = shortcut(self.inplanes, planes * block.expansion, stride)
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


@dataclass(frozen=True)
class ModelEntry:
    """One model of the course under its two names, and how to build it."""

    cli: str  # the command line's and the checkpoints' name, e.g. "blog-resnet"
    display: str  # the name results (JSON), figures and tables show, e.g. "BlogResNet"
    builder: Callable[..., nn.Module]
    kwargs: dict = field(default_factory=dict)  # fixed arguments, e.g. {"init": "pytorch"}


# The one registry of named models (display names as in the committed results; the init variants: notebook 04).
MODEL_REGISTRY: tuple[ModelEntry, ...] = (
    ModelEntry("blog-cnn", "BlogCNN", BlogCNN),
    ModelEntry("blog-plain", "BlogPlain", BlogPlain),
    ModelEntry("blog-resnet", "BlogResNet", BlogResNet),
    ModelEntry("blog-cnn-pytorch-init", "BlogCNN (PyTorch init)", BlogCNN, {"init": "pytorch"}),
    ModelEntry("blog-plain-he-init", "BlogPlain (He init)", BlogPlain, {"init": "he"}),
)
MODEL_NAMES = (*(e.cli for e in MODEL_REGISTRY), "plain-N", "residual-N", *(f"resnet{d}" for d in RESNET_LAYOUTS))


def model_entry(name: str) -> ModelEntry:
    """The entry of ``name``, a CLI or display name in any case; ``plain-N``, ``residual-N`` and ``resnetN`` get
    one made on the spot, their display name being their CLI name. Unknown names: :class:`ConfigError`."""
    key = str(name).strip().lower()
    entry = next((e for e in MODEL_REGISTRY if key in (e.cli, e.display.lower())), None)
    family = re.fullmatch(r"(plain|residual)-(\d+)|resnet(\d+)", key)
    if entry is None and family and family[1]:
        entry = ModelEntry(key, key, functools.partial(plain_net if family[1] == "plain" else residual_net, int(family[2])))
    elif entry is None and family and int(family[3]) in RESNET_LAYOUTS:
        entry = ModelEntry(key, key, functools.partial(digit_resnet, int(family[3])))
    if entry is None:
        raise ConfigError(f"unknown model {name!r}; valid names are: {', '.join(MODEL_NAMES)} (N an even depth "
                          f"such as 8, 20 or 56), or a display name: {', '.join(e.display for e in MODEL_REGISTRY)}")
    return entry


def cli_name(name: str) -> str:
    """The CLI name of a model given either of its names: ``cli_name("BlogResNet") == "blog-resnet"``."""
    return model_entry(name).cli


def display_name(name: str) -> str:
    """The name results, figures and tables show, given either name: ``display_name("blog-resnet") == "BlogResNet"``."""
    return model_entry(name).display


def build_model(name: str, **kwargs) -> nn.Module:
    """Build a digit model by its CLI or display name; records ``model.spec`` (the CLI name) for checkpoints.

    Names: those of :data:`MODEL_REGISTRY` (kwarg ``init``: ``pytorch`` or ``he``), ``plain-N`` and
    ``residual-N`` (N even, >= 2; kwargs ``width``, ``batch_norm``), ``resnet18`` ... ``resnet152`` (for digits).
    """
    entry = model_entry(name)
    if entry not in MODEL_REGISTRY:
        return entry.builder(**kwargs)  # the family builders record their own spec
    if set(kwargs) - {"init"}:
        raise ConfigError(f"{entry.cli} takes only init= ({', '.join(INITS)}), got {sorted(kwargs)}")
    # init is not architecture: it is not recorded, so any weights load into either
    return _with_spec(entry.builder(**{**entry.kwargs, **kwargs}), entry.cli)


def count_params(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (all, or only those with ``requires_grad``)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
