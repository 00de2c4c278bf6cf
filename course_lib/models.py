"""Every network of the course and the one name of each. Digit models map ``N x 1 x 28 x 28`` images in [0, 1]
to ``N x 10`` logits."""
from __future__ import annotations

import functools
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
    """The shortcut rule: a projection where the block changes the shape (f(x) + x cannot be added), else identity."""
    return stride != 1 or in_planes != out_planes


def projection_shortcut(in_planes: int, out_planes: int, stride: int = 1) -> nn.Sequential:
    """He et al.'s option B, torchvision's ``downsample``: 1x1 conv with ``stride`` + BatchNorm.
    ``N x in_planes x H x W -> N x out_planes x ceil(H/stride) x ceil(W/stride)``."""
    return nn.Sequential(conv1x1(in_planes, out_planes, stride), nn.BatchNorm2d(out_planes))


def shortcut(in_planes: int, out_planes: int, stride: int = 1) -> nn.Sequential | None:
    """Every block's shortcut: None (the identity) where the shape is kept, else a :func:`projection_shortcut`."""
    needed = needs_projection(in_planes, out_planes, stride)
    return projection_shortcut(in_planes, out_planes, stride) if needed else None


class BasicBranch(nn.Module):
    """Base of the blocks whose residual branch is conv1, bn1, relu, conv2, bn2: its :meth:`f`, written once."""

    last_bn_name = "bn2"  # the BatchNorm that zero_init_last_bn zeroes

    def f(self, x: Tensor) -> Tensor:
        """The residual branch ``bn2(conv2(relu(bn1(conv1(x)))))``: the block without its shortcut and last relu."""
        # torchvision's blocks call their ReLU module; so do ours that have one, so layer tables match theirs
        relu = self.relu if "relu" in self._modules else F.relu
        return self.bn2(self.conv2(relu(self.bn1(self.conv1(x)))))


def zero_init_last_bn(block: nn.Module) -> nn.Module:
    """Zero gamma of the last BatchNorm of ``block``'s branch (its ``last_bn_name``), in place; returns ``block``.
    Then f(x) = 0 and the block is the identity on x >= 0 (torchvision's ``zero_init_residual``)."""
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
    """The blog's residual block ``relu(x + f(x))``, f = conv2 (30->channels, 3x3) of relu(conv1 (channels->30,
    5x5)), shapes kept. ``skip=False``: the plain twin ``relu(f(x))``."""

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
    """The blog's ResNet for MNIST, exactly: 221,810 parameters. Shapes for a ``N x 1 x 28 x 28`` input::

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
    """The blog's "traditional CNN" (for 3x32x32 images, 20 classes) on 1x28x28 digits: its channel plan, padded
    3x3 convs so that only the max-pools shrink the map (28 -> 14 -> 7 -> 3), then 3x3 -> 1x1, 10 classes.
    He init by default: from PyTorch's (``init="pytorch"``) it sits at the chance loss for thousands of steps."""

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
    """Initialise ``model``'s conv and linear layers in place and return it: ``pytorch`` keeps PyTorch's default
    (U(+-1/sqrt(fan_in)): each ReLU layer shrinks the signal), ``he`` draws N(0, 2/fan_in) with zero biases."""
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
    """Two 3x3 convs: ``relu(f(x) + x)`` when ``residual``, else ``relu(f(x))``; without BatchNorm, biased convs."""

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
    """A plain or residual net of ``depth`` layers as He et al. count them: a stem conv (4x4 stride 4, to
    ``N x width x 7 x 7``), (depth - 2) / 2 ConvPairs and the head (global average pool, linear to 10 logits)."""

    def __init__(self, depth: int, width: int = 16, batch_norm: bool = True,
                 residual: bool = False, zero_init_residual: bool = False):
        super().__init__()
        if depth < 2 or depth % 2:
            raise ConfigError(f"depth must be an even number >= 2 (1 stem conv + pairs of 3x3 convs + 1 linear), "
                              f"got {depth}")
        self.depth, self.width, self.residual = depth, width, residual
        self.stem = nn.Sequential(nn.Conv2d(1, width, 4, stride=4, bias=not batch_norm),
                                  nn.BatchNorm2d(width) if batch_norm else nn.Identity(), nn.ReLU())
        self.body = nn.Sequential(*[ConvPair(width, batch_norm, residual) for _ in range((depth - 2) // 2)])
        self.head = nn.Linear(width, 10)
        if zero_init_residual and batch_norm:
            for pair in self.body:
                zero_init_last_bn(pair)

    @staticmethod
    def pool(h: Tensor) -> Tensor:
        """Global average pooling, the head's input: ``N x C x H x W -> N x C``."""
        return torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)

    def classify(self, h: Tensor) -> Tensor:
        """The head on the body's output: ``N x width x H x W -> N x 10`` logits."""
        return self.head(self.pool(h))

    def forward(self, x: Tensor) -> Tensor:
        return self.classify(self.body(self.stem(x)))


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
    """Two 3x3 convs and a shortcut: ``relu(f(x) + x)``, x through ``downsample`` (:func:`shortcut`) if not None."""

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
        """The residual branch: 1x1 reduce, 3x3 (with the stride), 1x1 expand, each with BN; relu between."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.bn3(self.conv3(out))

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(self.f(x) + identity)


Block = type[BasicBlock] | type[Bottleneck]


class ResNet(nn.Module):
    """He et al.'s ResNet with torchvision's module names, so state dicts are interchangeable.
    ``small_input=True``: for 28x28 digits, a 3x3 stride-1 stem and no initial max-pool. ``widths``: one per stage
    (He et al.'s CIFAR nets: three stages of 16, 32, 64). ``init="pytorch"`` keeps PyTorch's default init instead
    of torchvision's He init."""

    def __init__(self, block: Block, layers: list[int], num_classes: int = 1000, in_channels: int = 3,
                 small_input: bool = False, zero_init_residual: bool = False,
                 widths: tuple[int, ...] = (64, 128, 256, 512), init: str = "he"):
        super().__init__()
        if len(widths) != len(layers) or init not in ("he", "pytorch"):
            raise ConfigError(f"ResNet needs one width per stage ({len(layers)} stages, got widths {widths}) and "
                              f"init 'he' or 'pytorch' (got {init!r})")
        self.inplanes, self.stages = widths[0], len(layers)
        self.conv1 = (nn.Conv2d(in_channels, widths[0], kernel_size=3, stride=1, padding=1, bias=False) if small_input
                      else nn.Conv2d(in_channels, widths[0], kernel_size=7, stride=2, padding=3, bias=False))
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity() if small_input else nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        for i, (width, blocks) in enumerate(zip(widths, layers)):  # layer1, layer2, ... as torchvision names them
            setattr(self, f"layer{i + 1}", self._make_layer(block, width, blocks, stride=1 if i == 0 else 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1] * block.expansion, num_classes)

        for m in self.modules() if init == "he" else ():  # torchvision's initialisation
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
        for i in range(self.stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))


# He et al.'s Table 1; ResNet(*RESNET_LAYOUTS[152]) or build_model("resnet152") builds the deepest
RESNET_LAYOUTS: dict[int, tuple[Block, list[int]]] = {
    18: (BasicBlock, [2, 2, 2, 2]),
    34: (BasicBlock, [3, 4, 6, 3]),
    50: (Bottleneck, [3, 4, 6, 3]),
    101: (Bottleneck, [3, 4, 23, 3]),
    152: (Bottleneck, [3, 8, 36, 3]),
}


# torchvision's builders, parameter for parameter: resnet18(num_classes=10, zero_init_residual=True) and so on
resnet18 = functools.partial(ResNet, *RESNET_LAYOUTS[18])
resnet34 = functools.partial(ResNet, *RESNET_LAYOUTS[34])
resnet50 = functools.partial(ResNet, *RESNET_LAYOUTS[50])


# He et al.'s CIFAR-10 nets (section 4.2): 6n + 2 layers, three stages of n basic blocks, 16, 32 and 64 channels
CIFAR_DEPTHS = (20, 32, 44, 56, 110)


def digit_resnet(depth: int = 18, num_classes: int = 10, **kwargs) -> ResNet:
    """A ResNet-``depth`` for 1x28x28 images: 3x3 stem, no initial max-pool; the ImageNet layouts of
    :data:`RESNET_LAYOUTS`, or He et al.'s CIFAR nets (:data:`CIFAR_DEPTHS`, e.g. ResNet-20: 0.27 M parameters)."""
    if depth in CIFAR_DEPTHS:
        block, layers = BasicBlock, [(depth - 2) // 6] * 3
        kwargs = {"widths": (16, 32, 64), **kwargs}
    elif depth in RESNET_LAYOUTS:
        block, layers = RESNET_LAYOUTS[depth]
    else:
        raise ConfigError(f"no ResNet-{depth}; valid depths are {sorted((*RESNET_LAYOUTS, *CIFAR_DEPTHS))}")
    kwargs = {"in_channels": 1, "small_input": True, **kwargs}
    return _with_spec(ResNet(block, layers, num_classes=num_classes, **kwargs), f"resnet{depth}",
                      num_classes=num_classes, **kwargs)


# --------------------------------------------------------------------------- names


def _with_spec(model: nn.Module, name: str, **kwargs) -> nn.Module:
    model.spec = {"name": name, "kwargs": kwargs}
    return model


# Each model's one name, used by the CLI, checkpoints, results, figures and tables. Besides these:
# plain-N, residual-N and resnetN. The init variants are notebook 04's.
BLOG_MODELS: dict[str, Callable[..., nn.Module]] = {
    "blog-cnn": BlogCNN,
    "blog-plain": BlogPlain,
    "blog-resnet": BlogResNet,
    "blog-cnn-pytorch-init": functools.partial(BlogCNN, init="pytorch"),
    "blog-plain-he-init": functools.partial(BlogPlain, init="he"),
}
MODEL_NAMES = (*BLOG_MODELS, "plain-N", "residual-N", *(f"resnet{d}" for d in sorted((*RESNET_LAYOUTS, *CIFAR_DEPTHS))))
# The blog models' names before each model had one; results saved then are read under today's names.
OLD_NAMES = {"BlogCNN": "blog-cnn", "BlogPlain": "blog-plain", "BlogResNet": "blog-resnet",
             "BlogCNN (PyTorch init)": "blog-cnn-pytorch-init", "BlogPlain (He init)": "blog-plain-he-init"}


def unknown_model(name: str, valid: str) -> ConfigError:
    """The error for a model name that is not one of ``valid``; an old name is told its new one."""
    new = {old.lower(): new for old, new in OLD_NAMES.items()}.get(str(name).strip().lower())
    hint = f" ({name!r} is now called {new!r})" if new else ""
    return ConfigError(f"unknown model {name!r}{hint}; valid names are: {valid}")


def build_model(name: str, **kwargs) -> nn.Module:
    """A digit model by its name (:data:`MODEL_NAMES`, any case), with ``model.spec`` for checkpoints. The blog's
    models take ``init`` (``pytorch`` or ``he``); ``plain-N`` and ``residual-N`` take ``width`` and ``batch_norm``."""
    key = str(name).strip().lower()
    family, _, depth = key.rpartition("-")
    if key in BLOG_MODELS:
        if set(kwargs) - {"init"}:
            raise ConfigError(f"{key} takes only init= ({', '.join(INITS)}), got {sorted(kwargs)}")
        # init is not architecture: it is not recorded, so any weights load into either
        return _with_spec(BLOG_MODELS[key](**kwargs), key)
    if family in ("plain", "residual") and depth.isdecimal():
        return (plain_net if family == "plain" else residual_net)(int(depth), **kwargs)
    if key.startswith("resnet") and key[6:].isdecimal() and int(key[6:]) in (*RESNET_LAYOUTS, *CIFAR_DEPTHS):
        return digit_resnet(int(key[6:]), **kwargs)
    raise unknown_model(name, f"{', '.join(MODEL_NAMES)} (N an even depth such as 8, 20 or 56)")


def count_params(model: nn.Module) -> int:
    """Number of parameters of ``model``."""
    return sum(p.numel() for p in model.parameters())
