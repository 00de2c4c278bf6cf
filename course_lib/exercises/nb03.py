"""Checks for notebook 03: the student's bottleneck block, alone and as torchvision's ResNet-50 built from it
(``ResNet(MyBottleneck, [3, 4, 6, 3])``, with torchvision's weights copied in)."""
from __future__ import annotations

import inspect

import torch
from torch import Tensor, nn

from ..errors import ConfigError
from ..lessons.building_resnets import copy_weights, randomize_batchnorm
from ..models import Bottleneck, ResNet, count_params, shortcut
from . import Report, StudentCodeError, student_call

# (inplanes, planes, stride): a stage's first block with its projection, a later block, a stride-2 first block
BLOCK_CASES = ((64, 64, 1), (256, 64, 1), (256, 128, 2))
BATCH, SIZE = 2, 8
RESNET50_LAYERS = [3, 4, 6, 3]


def _name(inplanes: int, planes: int, stride: int) -> str:
    return f"MyBottleneck({inplanes}, {planes}, stride={stride})"


def _usable(block_cls, report: Report) -> bool:
    if not (inspect.isclass(block_cls) and issubclass(block_cls, nn.Module)):
        report.error(f"MyBottleneck must be a class derived from nn.Module; got {block_cls!r}.")
        return False
    if getattr(block_cls, "expansion", None) != 4:
        report.error(f"MyBottleneck.expansion must be the class attribute 4 (a bottleneck's output has 4 x planes "
                     f"channels; ResNet reads it to size the next stage); got {getattr(block_cls, 'expansion', None)!r}.")
        return False
    return True


def _block_checks(block_cls, report: Report) -> bool:
    """Shapes and parameter counts of single blocks; False when the block is not written yet."""
    torch.manual_seed(0)
    for inplanes, planes, stride in BLOCK_CASES:
        name = _name(inplanes, planes, stride)
        downsample = shortcut(inplanes, 4 * planes, stride)  # the course's rule: a projection where needed
        try:
            block = student_call(f"building {name}", block_cls, inplanes, planes, stride, downsample)
            out = student_call("running its forward", block, torch.randn(BATCH, inplanes, SIZE, SIZE))
        except StudentCodeError as err:
            if "NotImplementedError" in str(err):
                report.error(f"MyBottleneck is not implemented yet: {err}. Replace each `raise NotImplementedError` "
                             f"by your code, then run this cell again.")
                return False
            report.error(f"{name}: {err}.")
            continue
        expected = (BATCH, 4 * planes, (SIZE - 1) // stride + 1, (SIZE - 1) // stride + 1)
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        shortcut_kind = "identity" if downsample is None else "projection"
        report.check(got == expected, f"shape: {name}, {shortcut_kind} shortcut, maps "
                                      f"{(BATCH, inplanes, SIZE, SIZE)} -> {expected}",
                     f"shape: {name}, {shortcut_kind} shortcut, returned {got}, expected {expected}. Hint: 1x1 conv "
                     f"to planes, 3x3 conv with the stride, 1x1 conv to 4 x planes; add downsample(x) if given, else x.")
        theirs, want = count_params(block), count_params(Bottleneck(inplanes, planes, stride, downsample))
        hint = (" Hint: the convs have no bias (BatchNorm follows each)." if theirs - want in (planes * 2 + 4 * planes,)
                else " Hint: three convs (1x1, 3x3, 1x1), each followed by BatchNorm, plus the downsample you are given.")
        report.check(theirs == want, f"parameters: {name} has {theirs:,}, as torchvision's Bottleneck",
                     f"parameters: {name} has {theirs:,}, torchvision's Bottleneck has {want:,}.{hint}")
    return True


def _network_checks(block_cls, report: Report) -> None:
    """ResNet(MyBottleneck, [3, 4, 6, 3]) against torchvision's ResNet-50."""
    import torchvision

    try:
        ours = student_call("building ResNet(MyBottleneck, [3, 4, 6, 3])", ResNet, block_cls, RESNET50_LAYERS)
    except StudentCodeError as err:
        report.error(f"the network: {err}.")
        return
    torch.manual_seed(0)
    theirs = torchvision.models.resnet50(weights=None)
    want = count_params(theirs)
    if not report.check(count_params(ours) == want,
                        f"ResNet(MyBottleneck, [3, 4, 6, 3]) has {want:,} parameters, as torchvision's resnet50",
                        f"ResNet(MyBottleneck, [3, 4, 6, 3]) has {count_params(ours):,} parameters, torchvision's "
                        f"resnet50 has {want:,}."):
        return
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    randomize_batchnorm(theirs)  # fresh BNs are near the identity and would hide a BN in the wrong place
    try:
        copied = copy_weights(theirs, ours)
    except ConfigError as err:
        report.error(f"torchvision's weights do not load into your network: {err} Name the layers as torchvision "
                     f"does: conv1, bn1, conv2, bn2, conv3, bn3, relu, downsample.")
        return
    for mode in ("eval", "train"):
        if not _compare_mode(theirs, ours, x, mode, copied, report):
            return


def _compare_mode(theirs: nn.Module, ours: nn.Module, x: Tensor, mode: str, copied: int, report: Report) -> bool:
    """Run both networks in ``mode`` on ``x``; one PASS/FAIL line; False when the check cannot go on."""
    theirs.train(mode == "train"), ours.train(mode == "train")
    stats = "running statistics" if mode == "eval" else "batch statistics"
    with torch.no_grad():
        want_out = theirs(x)
        try:
            got = student_call(f"running your ResNet-50 on a 2 x 3 x 64 x 64 input in {mode} mode", ours, x)
        except StudentCodeError as err:
            report.student_error(err)
            return False
    if not report.check(isinstance(got, Tensor) and got.shape == want_out.shape,
                        f"output shape {tuple(want_out.shape)} for a 2 x 3 x 64 x 64 input ({mode} mode), as "
                        f"torchvision's",
                        f"output {tuple(got.shape) if isinstance(got, Tensor) else type(got).__name__}, "
                        f"torchvision's is {tuple(want_out.shape)}"):
        return False
    diff = (got - want_out).abs().max().item()
    return report.check(
        torch.allclose(got, want_out, rtol=1e-5, atol=1e-6),
        f"{mode} mode ({stats}): with torchvision's weights copied in ({copied} tensors, BatchNorm weights and "
        f"statistics randomised), the outputs match (max |diff| {diff:.1g})",
        f"{mode} mode ({stats}): with torchvision's weights copied in (BatchNorm randomised), the outputs differ "
        f"(max |diff| {diff:.2g}). Hint: each conv is followed by its BatchNorm, then the relu (conv -> BN -> relu); "
        f"torchvision puts the stride on the 3x3 conv (ResNet v1.5), not on the first 1x1; and the last relu comes "
        f"after the addition.")


def check_bottleneck(block_cls) -> Report:
    """Test the student's bottleneck class and return a :class:`Report` (PASS/FAIL lines)."""
    report = Report("check_bottleneck: your bottleneck block, and ResNet-50 built from it")
    if not _usable(block_cls, report) or not _block_checks(block_cls, report):
        return report
    if report.passed:
        _network_checks(block_cls, report)
    return report


class SolutionBottleneck(nn.Module):
    """1x1 conv to ``planes``, 3x3 conv (with the stride), 1x1 conv to ``4 * planes``, each with BatchNorm;
    relu between, and after adding the shortcut. Layer names as torchvision's, so its weights load."""

    expansion = 4

    def __init__(self, inplanes, planes, stride=1, downsample=None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample  # None (identity) or the projection ResNet hands over

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)
