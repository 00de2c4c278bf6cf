"""Reading a network as notebook 03 does: its layers' output shapes, parameters and multiply-adds (MACs), and
the residual blocks and stages of a ResNet."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from ...counting import count_macs, format_table, layer_table
from ...models import count_params


def summary(model: nn.Module, input_size: tuple = (1, 28, 28)) -> str:
    """Layer table of ``model`` for one input of ``input_size`` (C x H x W): output shapes, params, MACs."""
    return format_table(layer_table(model, input_size), count_params(model))


def cost_table(models: dict[str, nn.Module], input_size: tuple = (1, 28, 28), baseline: str | None = None) -> str:
    """Parameters and MACs per image of each model, and their ratios to ``baseline`` (default: the first)."""
    costs = {name: (count_params(m), sum(r.macs for r in layer_table(m, input_size))) for name, m in models.items()}
    base_params, base_macs = costs[baseline or next(iter(costs))]
    lines = [f"{'model':<30}{'params':>13}{'x':>8}{'MACs / image':>16}{'x':>8}", "-" * 75]
    for name, (params, macs) in costs.items():
        lines.append(f"{name:<30}{params:>13,}{params / base_params:>8.1f}{macs:>16,}{macs / base_macs:>8.1f}")
    return "\n".join(lines)


def top_level_shapes(model: nn.Module, input_size: tuple = (1, 28, 28)) -> list[tuple[str, tuple]]:
    """``(name, output shape per image)`` after each direct child of ``model`` that runs, in order."""
    shapes: list[tuple[str, tuple]] = []
    handles = [child.register_forward_hook(lambda m, i, out, name=name: shapes.append((name, tuple(out.shape[1:]))))
               for name, child in model.named_children()]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_size))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return shapes


def describe_step(label: str, module: nn.Module, x: Tensor) -> str:
    """One line: ``label``, input shape -> output shape (``x``: N x C x H x W), and the module's parameters."""
    with torch.no_grad():
        out = module.eval()(x)
    shape = lambda t: " x ".join(map(str, t.shape))  # noqa: E731
    return f"{label:<34} {shape(x):>16} -> {shape(out):<16} {count_params(module):>9,} params"


def shape_trace_table(models: dict[str, nn.Module], input_size: tuple = (1, 28, 28),
                      layers: Sequence[str] = ("conv1", "maxpool", "layer1", "layer2", "layer3", "layer4")) -> str:
    """Output shape per image after each of ``layers`` (top-level module names), one column per model."""
    traces = {name: dict(top_level_shapes(m, input_size)) for name, m in models.items()}
    fmt = lambda shape: " x ".join(map(str, shape)) if shape else "-"  # noqa: E731
    lines = [f"{'after':<10}" + "".join(f"{name:>28}" for name in models), "-" * (10 + 28 * len(models))]
    for layer in layers:
        lines.append(f"{layer:<10}" + "".join(f"{fmt(t.get(layer)):>28}" for t in traces.values()))
    return "\n".join(lines)


@dataclass
class BlockInfo:
    """One residual block of a ResNet, as :func:`block_list` reads it."""

    name: str  # e.g. "layer2.0"
    kind: str  # class name: BasicBlock, Bottleneck, ProjectionBlock
    c_in: int
    c_out: int
    stride: int
    shortcut: str  # "identity" or "projection"

    def __str__(self) -> str:
        return f"{self.name:<10}{self.kind:<16}{self.c_in:>5} -> {self.c_out:<5} stride {self.stride}   {self.shortcut}"


def block_list(model: nn.Module) -> list[BlockInfo]:
    """Every residual block of a ResNet (ours, grown, or torchvision's), in order."""
    rows = []
    for name, m in model.named_modules():
        if hasattr(m, "conv1") and hasattr(m, "downsample") and isinstance(m.conv1, nn.Conv2d):
            convs = [c for c in m.children() if isinstance(c, nn.Conv2d)]
            rows.append(BlockInfo(name, type(m).__name__, convs[0].in_channels, convs[-1].out_channels,
                                  max(c.stride[0] for c in convs),
                                  "identity" if m.downsample is None else "projection"))
    return rows


def stage_layout(model: nn.Module) -> list[tuple[int, int, int]]:
    """``(blocks, channels, stride)`` of each stage ``layer1, layer2, ...``: ``channels`` is the width of the
    stage's first conv (``planes``; a Bottleneck stage outputs 4 times that), ``stride`` its first block's."""
    layout, i = [], 1
    while hasattr(model, f"layer{i}"):
        stage = getattr(model, f"layer{i}")
        layout.append((len(stage), stage[0].conv1.out_channels, block_list(stage)[0].stride))
        i += 1
    return layout


def v1_stride_macs(depth: int = 50, input_size: tuple = (3, 224, 224)) -> int:
    """MACs per image of torchvision's ResNet-``depth`` with each downsampling stride moved back to the first 1x1
    conv, as in He et al. (2015) ("v1"); torchvision's v1.5 puts it on the 3x3 conv."""
    import torchvision

    model = getattr(torchvision.models, f"resnet{depth}")(weights=None)
    for stage in (model.layer2, model.layer3, model.layer4):
        stage[0].conv1.stride, stage[0].conv2.stride = (2, 2), (1, 1)
    return count_macs(model, input_size)
