"""What a network costs, layer by layer: parameters and multiply-adds (MACs) per image. Only conv and linear layers
count MACs, as papers count a ResNet's FLOPs; element-wise work (BatchNorm, ReLU, pooling, additions) counts 0."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class LayerRow:
    name: str  # dotted module name, e.g. "rblock1.conv1"
    kind: str  # class name, e.g. "Conv2d"
    output_shape: tuple  # per image, without the batch dimension
    params: int
    macs: int  # multiply-adds for one image


def _macs(module: nn.Module, out: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):  # C_out * H * W outputs, each (C_in / groups) * k * k multiply-adds
        kh, kw = module.kernel_size
        return out[0].numel() * (module.in_channels // module.groups) * kh * kw
    if isinstance(module, nn.Linear):
        return module.in_features * module.out_features
    return 0


@torch.no_grad()
def layer_table(model: nn.Module, input_size: tuple = (1, 28, 28)) -> list[LayerRow]:
    """One row per leaf module run, in order, for one input of ``input_size`` (C x H x W); a module run twice
    appears twice, its parameters counted once."""
    rows: list[LayerRow] = []
    seen: set[int] = set()
    names = {m: n for n, m in model.named_modules()}

    def hook(module, _inputs, out):
        if not isinstance(out, torch.Tensor):
            return
        params = 0 if id(module) in seen else sum(p.numel() for p in module.parameters(recurse=False))
        seen.add(id(module))
        rows.append(LayerRow(names[module], type(module).__name__, tuple(out.shape[1:]), params, _macs(module, out)))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]  # the leaves
    was_training = model.training
    try:
        model.eval()
        first = next(model.parameters(), None)  # a parameter-free module (option A's shortcut) runs on CPU
        device = first.device if first is not None else torch.device("cpu")
        model(torch.zeros(1, *input_size, device=device))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return rows


def count_macs(model: nn.Module, input_size: tuple = (1, 28, 28)) -> int:
    """Multiply-adds of conv and linear layers for one image of ``input_size`` (C x H x W)."""
    return sum(r.macs for r in layer_table(model, input_size))


def format_table(rows: list[LayerRow], total_params: int | None = None) -> str:
    """The rows as a fixed-width text table with totals (parameters, MACs)."""
    lines = [f"{'layer':<24}{'type':<13}{'output shape':<18}{'params':>10}{'MACs':>14}", "-" * 79]
    for r in rows:
        shape = " x ".join(map(str, r.output_shape))
        lines.append(f"{r.name:<24}{r.kind:<13}{shape:<18}{r.params:>10,}{r.macs:>14,}")
    params = total_params if total_params is not None else sum(r.params for r in rows)
    lines += ["-" * 79, f"{'total':<55}{params:>10,}{sum(r.macs for r in rows):>14,}"]
    return "\n".join(lines)
