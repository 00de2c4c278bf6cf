"""Notebook 03's exercise: write ResNet-34's stage layout from its block list, checked against torchvision.

The student writes a function returning one ``(blocks, channels, stride)`` per
stage. :func:`check_resnet34_layout` compares it with torchvision's ResNet-34
stage by stage, then builds the network from it (``GrownResNet``, the blocks grown
in the notebook), copies torchvision's weights in and compares the outputs.
"""
from __future__ import annotations

from typing import Callable

import torch

from ..lessons.building_resnets import GrownResNet, compare_outputs, stage_layout
from ..errors import ConfigError
from ..models import count_params
from . import Report, StudentCodeError, student_call


def resnet34_layout_solution() -> list[tuple[int, int, int]]:
    """ResNet-34's stages as (blocks, channels, stride of the first block), read off its block list.

    layer1.0-2: 3 blocks of 64 channels; stride 1, since the stem's max-pool already halved the map.
    layer2.0-3: 4 blocks of 128; the first has stride 2 (and the projection shortcut).
    layer3.0-5: 6 blocks of 256, stride 2.   layer4.0-2: 3 blocks of 512, stride 2.
    """
    return [(3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2)]


def _torchvision_resnet34() -> torch.nn.Module:
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.resnet34(weights=None)


def _as_layout(value) -> list[tuple[int, int, int]] | None:
    """The student's value as a list of int triples, or None if it is not one."""
    try:
        layout = [tuple(stage) for stage in value]
    except TypeError:
        return None
    ok = all(len(stage) == 3 and all(isinstance(v, int) and not isinstance(v, bool) for v in stage) for stage in layout)
    return layout if ok else None


def check_resnet34_layout(layout_fn: Callable[[], list], input_size: tuple = (3, 64, 64)) -> Report:
    """Check ``layout_fn()`` (the student's ResNet-34 layout) against torchvision's ResNet-34.

    Prints PASS/FAIL lines: the format, each stage's blocks / channels / stride, and finally
    whether the network built from the layout takes torchvision's weights and gives the same
    outputs on a random ``1 x input_size`` image.
    """
    report = Report("ResNet-34 stage layout")
    try:
        value = student_call("computing your layout", layout_fn)
    except StudentCodeError as err:
        if "NotImplementedError" in str(err):
            report.error("not implemented yet: replace `raise NotImplementedError` by your list of four "
                         "(blocks, channels, stride) tuples, then run this cell again")
        else:
            report.error(str(err))
        return report
    layout = _as_layout(value)
    if not report.check(layout is not None and len(layout) == 4,
                        "a list of 4 stages, each (blocks, channels, stride)",
                        f"expected a list of 4 tuples (blocks, channels, stride) of whole numbers, got {value!r}"):
        return report

    theirs = _torchvision_resnet34()
    truth = stage_layout(theirs)
    for i, ((blocks, channels, stride), (t_blocks, t_channels, t_stride)) in enumerate(zip(layout, truth), start=1):
        report.check(blocks == t_blocks, f"stage {i}: {blocks} blocks",
                     f"stage {i}: {blocks} blocks is too {'few' if blocks < t_blocks else 'many'}; "
                     f"count the blocks named layer{i}.* in the block list")
        report.check(channels == t_channels, f"stage {i}: {channels} channels",
                     f"stage {i}: {channels} channels; read the output channels of layer{i}.0")
        hint = ("stage 1 keeps the map size: the stem's max-pool has already halved it" if i == 1 else
                "a stage that doubles the channels halves the map, in its first block")
        report.check(stride == t_stride, f"stage {i}: first block has stride {stride}",
                     f"stage {i}: stride {stride} is wrong; {hint}")
    if not report.passed:
        return report

    try:
        ours = GrownResNet(layout, in_channels=3, num_classes=1000, small_input=False)
        x = torch.randn(1, *input_size, generator=torch.Generator().manual_seed(0))
        parity = compare_outputs(theirs, ours, x, name="ResNet-34")
    except ConfigError as err:
        report.error(f"the network built from your layout does not take torchvision's weights: {err}")
        return report
    report.check(parity.params_source == parity.params_target,
                 f"built from your layout: {count_params(ours):,} parameters, as torchvision's ResNet-34",
                 f"built from your layout: {count_params(ours):,} parameters, torchvision's ResNet-34 has "
                 f"{parity.params_source:,}")
    report.check(parity.allclose, "with torchvision's weights copied in, the outputs match (allclose)",
                 f"with torchvision's weights copied in, the outputs differ (max |diff| {parity.max_abs_diff:.2g})")
    return report
