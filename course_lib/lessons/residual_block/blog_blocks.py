"""The course's block with the blog's first block's two defects, the fix, and which kind of block meets which kind
of shortcut in real ResNets (notebook 02)."""
from __future__ import annotations

import inspect
from collections import Counter

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...models import BasicBlock, Bottleneck, conv3x3, shortcut


class BlogFirstBlock(nn.Module):
    """The course's block with the blog's first block's two defects: ``forward`` calls ``conv1``/``conv2``, never
    defined (the layers are in ``main_path``, built with ``stride``), and x is added unchanged, with no projection.
    Which conv takes the stride, where the relus sit and no BatchNorm are the course's reading of the blog."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.main_path = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1),
            nn.ReLU(),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1),
        )

    def forward(self, x):
        out = F.relu(self.conv1(x))
        out = self.conv2(out)
        return F.relu(x + out)


class BlogFirstBlockNamesFixed(BlogFirstBlock):
    """The names fixed minimally (``forward`` runs ``main_path``); the shortcut still adds x unchanged, so
    ``x + out`` fails wherever the stride or the channel count changes the shape."""

    def forward(self, x):
        out = self.main_path(x)
        return F.relu(x + out)


def try_forward(block: nn.Module, x: Tensor) -> str:
    """Run ``block(x)`` and say in one line what happened: the shapes, or the error."""
    try:
        with torch.no_grad():
            out = block(x)
    except Exception as err:  # noqa: BLE001 - showing the error is the point
        return f"{type(err).__name__}: {str(err).splitlines()[0]}"
    return f"ok: {tuple(x.shape)} -> {tuple(out.shape)}"


class FixedBlock(nn.Module):
    """The blog's block fixed in He et al.'s form, :class:`course_lib.models.BasicBlock`: ``relu(main_path(x) +
    shortcut(x))``, the shortcut rule, bias-free convs each with BN. ``N x C_in x H x W -> N x C_out x H/s x W/s``."""

    last_bn_name = "main_path.4"  # what zero_init_last_bn zeroes

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.main_path = nn.Sequential(
            conv3x3(in_channels, out_channels, stride),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
            conv3x3(out_channels, out_channels),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = shortcut(in_channels, out_channels, stride)  # a projection only if the shape changes

    def f(self, x: Tensor) -> Tensor:
        """The residual branch: the main path."""
        return self.main_path(x)

    def forward(self, x: Tensor) -> Tensor:
        out = self.f(x)
        identity = x if self.shortcut is None else self.shortcut(x)
        return F.relu(out + identity)


def as_basic_block(block: FixedBlock) -> BasicBlock:
    """The reference :class:`BasicBlock` (torchvision's names) holding ``block``'s weights."""
    first, second = block.main_path[0], block.main_path[3]
    stride = first.stride[0]
    downsample = shortcut(first.in_channels, second.out_channels, stride)
    reference = BasicBlock(first.in_channels, second.out_channels, stride, downsample)
    renames = {"main_path.0": "conv1", "main_path.1": "bn1", "main_path.3": "conv2", "main_path.4": "bn2",
               "shortcut.0": "downsample.0", "shortcut.1": "downsample.1"}
    state = {}
    for key, value in block.state_dict().items():
        module, _, tensor = key.rpartition(".")
        state[f"{renames[module]}.{tensor}"] = value
    reference.load_state_dict(state)
    return reference.train(block.training)


def source_of(obj) -> str:
    """The source code of a class or function without its docstring, to print in a notebook."""
    lines = inspect.getsource(obj).splitlines()
    doc = inspect.getdoc(obj)
    if doc:
        start = next(i for i, line in enumerate(lines) if '"""' in line)
        end = start if lines[start].count('"""') == 2 else next(
            i for i in range(start + 1, len(lines)) if '"""' in lines[i])
        lines = lines[:start] + lines[end + 1:]
        if start < len(lines) and not lines[start].strip():
            del lines[start]
    return "\n".join(lines).rstrip()


def block_kinds(models: dict[str, nn.Module]) -> str:
    """A table of each model's blocks by kind (basic, bottleneck) and shortcut (identity, projection)."""
    columns = [(kind, sc) for kind in ("basic", "bottleneck") for sc in ("identity", "projection")]
    lines = [f"{'model':<12}" + "".join(f"{k + ' + ' + s:>24}" for k, s in columns), "-" * (12 + 24 * 4)]
    for name, model in models.items():
        counts = Counter(("basic" if isinstance(m, BasicBlock) else "bottleneck",
                          "identity" if m.downsample is None else "projection")
                         for m in model.modules() if isinstance(m, (BasicBlock, Bottleneck)))
        lines.append(f"{name:<12}" + "".join(f"{counts[c]:>24}" for c in columns))
    return "\n".join(lines)
