"""Notebook 02's exercise: write a basic residual block with a projection shortcut.

The student writes ``MyBlock(in_channels, out_channels, stride=1, zero_init=False)``;
:func:`check_basic_block` tests it and prints one PASS/FAIL line per check:

* it can be built as ``MyBlock(c_in, c_out, stride=s, zero_init=z)`` and is an ``nn.Module``;
* output shapes for stride 1 and 2, with and without a change of channel count;
* with ``zero_init=True`` the block is the identity (on x >= 0, as after a relu);
* its parameter count equals the reference :class:`course_lib.models.BasicBlock`
  (with torchvision's 1x1 conv + BN ``downsample`` where the shape changes).

If the student's code raises, the report names their error and their line
(:func:`course_lib.exercises.student_call`), never a traceback from inside course_lib.
:class:`SolutionBasicBlock` is the worked solution (``show_solution(SolutionBasicBlock)``).
"""
from __future__ import annotations

import inspect

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models import BasicBlock, conv1x1, count_params
from . import Report, StudentCodeError, student_call

# (in_channels, out_channels, stride) cases and the input each gets: N x C x 8 x 8
CASES = ((16, 16, 1), (16, 16, 2), (16, 32, 1), (16, 32, 2))
BATCH, SIZE = 2, 8


def reference_block(in_channels: int, out_channels: int, stride: int = 1) -> BasicBlock:
    """The reference :class:`BasicBlock`, with the projection shortcut where the shape changes."""
    downsample = None
    if stride != 1 or in_channels != out_channels:
        downsample = nn.Sequential(conv1x1(in_channels, out_channels, stride), nn.BatchNorm2d(out_channels))
    return BasicBlock(in_channels, out_channels, stride, downsample)


def _name(c_in: int, c_out: int, stride: int, zero_init: bool = False) -> str:
    return f"MyBlock({c_in}, {c_out}, stride={stride}" + (", zero_init=True)" if zero_init else ")")


def _build(block_cls, c_in: int, c_out: int, stride: int, zero_init: bool = False) -> nn.Module:
    return student_call(f"building {_name(c_in, c_out, stride, zero_init)}", block_cls,
                        c_in, c_out, stride=stride, zero_init=zero_init)


def _not_implemented(err: StudentCodeError) -> bool:
    return "NotImplementedError" in str(err)


def _param_hint(theirs: int, expected: int, c_in: int, c_out: int) -> str:
    diff = theirs - expected
    if diff in (c_out, 2 * c_out, 3 * c_out):
        return " Hint: a conv followed by BatchNorm needs no bias (bias=False); BN's beta plays that role."
    if diff == -(c_in * c_out + 2 * c_out):
        return " Hint: the projection shortcut (1x1 conv with the block's stride + BN) is missing."
    if diff == 8 * c_in * c_out:
        return " Hint: the projection is a 1x1 conv, not a 3x3 one."
    return (" Hint: conv3x3(stride) -> BN -> relu -> conv3x3 -> BN on the main path; "
            "a 1x1 conv (stride) + BN on the shortcut only when the shape changes.")


def check_basic_block(block_cls) -> Report:
    """Test the student's block class and return a :class:`Report` (shown as PASS/FAIL lines).

    ``block_cls(in_channels, out_channels, stride=1, zero_init=False)`` must map
    ``N x in_channels x H x W`` to ``N x out_channels x H/stride x W/stride``.
    """
    report = Report("check_basic_block: your residual block with a projection shortcut")
    if not (inspect.isclass(block_cls) and issubclass(block_cls, nn.Module)):
        report.error(f"MyBlock must be a class derived from nn.Module; got {block_cls!r}.")
        return report
    try:
        inspect.signature(block_cls).bind(16, 16, stride=1, zero_init=False)
    except TypeError as err:
        report.error(f"MyBlock must accept MyBlock(in_channels, out_channels, stride=1, zero_init=False) "
                     f"but calling it that way fails: {err}. Fix the __init__ arguments.")
        return report
    except ValueError:
        pass  # no signature to inspect: let the calls below tell

    torch.manual_seed(0)
    blocks, errors_seen = {}, set()
    for c_in, c_out, stride in CASES:  # 1. shapes
        name = _name(c_in, c_out, stride)
        try:
            block = _build(block_cls, c_in, c_out, stride)
            x = torch.relu(torch.randn(BATCH, c_in, SIZE, SIZE))
            out = student_call("running its forward", block, x)
        except StudentCodeError as err:
            if _not_implemented(err):
                report.error(f"MyBlock is not implemented yet: {err}. Replace each `raise NotImplementedError` "
                             f"by your code.")
                return report
            if str(err) not in errors_seen:  # the same error in every case is reported once
                errors_seen.add(str(err))
                hint = (" Hint: x and f(x) differ in shape here, so x must go through the projection "
                        "(1x1 conv with the block's stride + BN) before the addition."
                        if "must match the size" in str(err) else "")
                report.error(f"{name}: {err}.{hint}")
            continue
        expected = (BATCH, c_out, (SIZE - 1) // stride + 1, (SIZE - 1) // stride + 1)
        got = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        what = ("stride 1, same channels" if (stride, c_in) == (1, c_out) else
                ", ".join(w for w in (f"stride {stride}" if stride != 1 else "", f"channels {c_in}->{c_out}"
                                      if c_in != c_out else "") if w))
        hint = "" if (stride, c_in) == (1, c_out) else (
            " Hint: when the stride or the channel count changes, x must go through a 1x1 conv with that "
            "stride (+ BN) before it is added.")
        if report.check(got == expected, f"shape ({what}): {name} maps {(BATCH, c_in, SIZE, SIZE)} -> {expected}",
                        f"shape ({what}): {name} returned {got}, expected {expected}.{hint}"):
            blocks[(c_in, c_out, stride)] = block

    try:  # 2. identity at zero-init
        block = _build(block_cls, 16, 16, 1, zero_init=True)
        x = torch.relu(torch.randn(BATCH, 16, SIZE, SIZE))
        for mode in ("train", "eval"):
            getattr(block, mode)()
            out = student_call("running its forward", block, x)
            gap = (out - x).abs().max().item() if isinstance(out, Tensor) and out.shape == x.shape else float("inf")
            report.check(gap <= 1e-6,
                         f"identity at zero-init ({mode} mode): {_name(16, 16, 1, True)} returns its input x >= 0",
                         f"identity at zero-init ({mode} mode): {_name(16, 16, 1, True)} should return its input "
                         f"x >= 0 unchanged, but max |y - x| = {gap:.3g}. Hint: zero the weight of the LAST "
                         f"BatchNorm of the main path, add x after it, and apply relu last.")
    except StudentCodeError as err:
        if str(err) not in errors_seen:
            report.error(f"identity at zero-init, {_name(16, 16, 1, True)}: {err}.")
        else:
            report.error("identity at zero-init: not tested, the error above stops it.")

    for (c_in, c_out, stride), block in blocks.items():  # 3. parameters
        theirs, expected = count_params(block), count_params(reference_block(c_in, c_out, stride))
        report.check(theirs == expected,
                     f"parameters: {_name(c_in, c_out, stride)} has {theirs:,}, as the reference BasicBlock",
                     f"parameters: {_name(c_in, c_out, stride)} has {theirs:,}, the reference BasicBlock has "
                     f"{expected:,} ({theirs - expected:+,}).{_param_hint(theirs, expected, c_in, c_out)}")
    return report


class SolutionBasicBlock(nn.Module):
    """A basic residual block with a projection shortcut: relu(f(x) + shortcut(x))."""

    def __init__(self, in_channels, out_channels, stride=1, zero_init=False):
        super().__init__()
        # f: conv3x3 (stride) -> BN -> relu -> conv3x3 -> BN; no conv bias, BN follows
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        # the shortcut: identity when the shape is kept, else 1x1 conv with the stride + BN
        self.shortcut = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        if zero_init:  # f(x) = 0 at the start: the block begins as the identity
            nn.init.zeros_(self.bn2.weight)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))
