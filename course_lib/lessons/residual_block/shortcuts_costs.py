"""Shortcuts when the shape changes (He et al.'s options A and B) and the cost of blocks by formula (notebook 02)."""
from __future__ import annotations

from typing import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from ...counting import count_macs
from ...errors import ConfigError
from ...models import BasicBlock, Bottleneck, count_params, needs_projection, shortcut


class ZeroPadShortcut(nn.Module):
    """He et al.'s option A, without parameters: subsample by ``stride`` and pad the new channels with zeros."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 2):
        super().__init__()
        if out_channels < in_channels:
            raise ConfigError(f"option A can only add channels (got {in_channels} -> {out_channels}). "
                              f"Fix: use a projection (option B) where the channel count shrinks.")
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

    def forward(self, x: Tensor) -> Tensor:
        x = x[:, :, ::self.stride, ::self.stride]
        return F.pad(x, (0, 0, 0, 0, 0, self.out_channels - self.in_channels))


def shortcut_macs(shortcut: nn.Module, input_size: tuple) -> int:
    """MACs per image of a shortcut for one ``C x H x W`` input; 0 for one without parameters."""
    if next(shortcut.parameters(), None) is None:
        return 0
    return count_macs(shortcut, input_size)


def projection_params(model: nn.Module) -> tuple[int, int]:
    """(number of projection shortcuts, their parameters) in a :class:`course_lib.models.ResNet`."""
    projections = [m.downsample for m in model.modules()
                   if isinstance(m, (BasicBlock, Bottleneck)) and m.downsample is not None]
    return len(projections), sum(count_params(p) for p in projections)


def conv_cost(c_in: int, c_out: int, k: int, h_out: int, w_out: int, bias: bool = False) -> tuple[int, int]:
    """(params, MACs per image) of a ``k x k`` conv ``c_in -> c_out`` producing ``h_out x w_out``."""
    weights = c_out * c_in * k * k
    return weights + (c_out if bias else 0), weights * h_out * w_out


def _out_size(size: int, stride: int) -> int:
    return (size - 1) // stride + 1  # a 3x3 pad-1 or 1x1 pad-0 conv with this stride


def basic_block_cost(c_in: int, c_out: int, h: int, w: int, stride: int = 1) -> tuple[int, int]:
    """(params, MACs per image) of a :class:`BasicBlock` by formula, with its projection where the shape changes."""
    ho, wo = _out_size(h, stride), _out_size(w, stride)
    parts = [conv_cost(c_in, c_out, 3, ho, wo), conv_cost(c_out, c_out, 3, ho, wo), (4 * c_out, 0)]
    if needs_projection(c_in, c_out, stride):
        parts += [conv_cost(c_in, c_out, 1, ho, wo), (2 * c_out, 0)]
    return sum(p for p, _ in parts), sum(m for _, m in parts)


def bottleneck_cost(c_in: int, planes: int, h: int, w: int, stride: int = 1) -> tuple[int, int]:
    """(params, MACs per image) of a :class:`Bottleneck` (output ``4 * planes``) by formula, with its projection."""
    c_out, ho, wo = 4 * planes, _out_size(h, stride), _out_size(w, stride)
    parts = [conv_cost(c_in, planes, 1, h, w), conv_cost(planes, planes, 3, ho, wo),
             conv_cost(planes, c_out, 1, ho, wo), (2 * (planes + planes + c_out), 0)]
    if needs_projection(c_in, c_out, stride):
        parts += [conv_cost(c_in, c_out, 1, ho, wo), (2 * c_out, 0)]
    return sum(p for p, _ in parts), sum(m for _, m in parts)


def build_block(kind: str, c_in: int, c_out: int, stride: int = 1) -> nn.Module:
    """A reference block, ``kind`` "basic" or "bottleneck" (``planes = c_out // 4``), with its projection if needed."""
    block_cls = BasicBlock if kind == "basic" else Bottleneck
    return block_cls(c_in, c_out // block_cls.expansion, stride, shortcut(c_in, c_out, stride))


def block_cost_table(configs: Sequence[tuple[str, int, int, int]], size: int = 56) -> list[dict]:
    """Params and MACs by formula and counted, for each ``(kind, c_in, c_out, stride)`` on ``c_in x size x size``."""
    rows = []
    for kind, c_in, c_out, stride in configs:
        if kind == "basic":
            params, macs = basic_block_cost(c_in, c_out, size, size, stride)
            label = f"basic {c_in}->{c_out}"
        else:
            params, macs = bottleneck_cost(c_in, c_out // 4, size, size, stride)
            label = f"bottleneck {c_in}->{c_out // 4}->{c_out}"
        block = build_block(kind, c_in, c_out, stride)
        rows.append({"block": label + (f", stride {stride}" if stride != 1 else ""),
                     "params_formula": params, "params_counted": count_params(block),
                     "macs_formula": macs, "macs_counted": count_macs(block, (c_in, size, size))})
    return rows


def format_cost_table(rows: Sequence[dict]) -> str:
    """The rows of :func:`block_cost_table` as fixed-width text (MACs in millions)."""
    lines = [f"{'block':<34}{'params (formula)':>17}{'params (count)':>16}{'MMACs (formula)':>17}{'MMACs (count)':>15}",
             "-" * 99]
    for r in rows:
        lines.append(f"{r['block']:<34}{r['params_formula']:>17,}{r['params_counted']:>16,}"
                     f"{r['macs_formula'] / 1e6:>17,.1f}{r['macs_counted'] / 1e6:>15,.1f}")
    return "\n".join(lines)
